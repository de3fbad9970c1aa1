#!/usr/bin/env node
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { BpfLoadError } from '../base/errors.js';
import { readUserFile } from '../base/file.js';
import { ELF_HEADER_CHECK } from '../elf/index.js';
import { parseObject } from '../object/index.js';
import { describeObject } from '../object/describe.js';
import { EXIT, parseCli, usage, UsageError, type CliOptions, type Verb } from './args.js';
import { dumpChunks } from './dump.js';

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
    if (options.mode === 'dump') {
      // `bpf-load --dump x.o | head`: a closed pipe is the reader's choice, not an error. (Run mode handles it itself,
      // detaching first.)
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(EXIT.ok);
      });
      const spec = parseObject(readUserFile(options.file, { head: ELF_HEADER_CHECK }), { name: options.file, programTypes: options.programTypes });
      if (options.json) {
        process.stdout.write(`${JSON.stringify(describeObject(spec), null, 2)}\n`);
      } else {
        for (const chunk of dumpChunks(spec, { helpers: options.helpers, raw: options.raw })) {
          // Paced by the reader: a slow pipe is waited for rather than buffered, and one that closed (EPIPE, above)
          // ends the process here instead of after the whole listing was formatted.
          if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
        }
      }
      return EXIT.ok;
    }
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

process.exitCode = await main(process.argv.slice(2));
