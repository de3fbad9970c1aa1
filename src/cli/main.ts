#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { BpfLoadError } from '../base/errors.js';
import { EXIT, parseCli, usage, UsageError, type CliOptions, type Verb } from './args.js';

/**
 * `bpf-load <verb> …`: one module per verb (src/cli/<verb>.ts); args.ts lists the verbs and their flags. Imported on
 * use, so start-up loads only what the command needs.
 */
const VERB_HANDLERS: Record<Verb, (options: CliOptions) => Promise<number>> = {
  prog: async (options) => (await import('./prog.js')).progVerb(options),
  map: async (options) => (await import('./map.js')).mapVerb(options),
  link: async (options) => (await import('./link.js')).linkVerb(options),
  gen: async (options) => (await import('./gen.js')).runGen(options),
  detach: async (options) => (await import('./detach.js')).runDetach(options),
};

/** The CLI: argv in, exit status out. Everything real happens in the library. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const options = parseCli(argv);
    if (options.help) {
      process.stdout.write(`${usage()}\n`);
      return EXIT.ok;
    }
    if (options.version) {
      process.stdout.write(`bpf-load ${packageVersion()}\n`);
      return EXIT.ok;
    }
    if (options.mode === 'filter') return await (await import('./filter.js')).runClassicFilter(options);
    if (options.mode === 'test-run') {
      if (options.file === undefined) throw new UsageError('missing the object FILE whose program --test-run runs');
      return (await import('./test-run.js')).runTestRun(options);
    }
    if (options.mode !== 'load' && options.mode !== 'dump') {
      const verb: (options: CliOptions) => Promise<number> = VERB_HANDLERS[options.mode];
      return await verb(options);
    }
    if (options.file === undefined) throw new UsageError('missing the object FILE to load');
    // Each mode imports what it needs when it runs: --filter never loads the object layer, --dump never the loader.
    if (options.mode === 'dump') return await (await import('./dump.js')).runDump(options.file, options);
    // Imported here so that --dump never loads the loader, the attach kinds or the FFI.
    const { runObject } = await import('./run.js');
    return await runObject(options);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bpf-load: ${e.message}\nTry 'bpf-load --help'.\n`);
      return EXIT.usage;
    }
    if (e instanceof BpfLoadError) {
      process.stderr.write(`bpf-load: ${e.message}\n`);
      return EXIT.failure;
    }
    throw e;
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// Not a top-level await: the bundled bin is CommonJS (rolldown.config.mjs).
void main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
