#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { BpfLoadError } from '../base/errors.js';
import { readUserFile } from '../base/file.js';
import { parseObject } from '../object/index.js';
import { describeObject } from '../object/describe.js';
import { EXIT, parseCli, usage, UsageError, type CliOptions, type Verb } from './args.js';
import { renderDump } from './dump.js';
import { linkVerb } from './link.js';
import { mapVerb } from './map.js';
import { progVerb } from './prog.js';
import { runObject } from './run.js';

/** `bpf-load <verb> …`: one module per verb (src/cli/<verb>.ts); args.ts lists the verbs and their flags. */
const VERB_HANDLERS: Record<Verb, (options: CliOptions) => Promise<number>> = {
  prog: progVerb,
  map: mapVerb,
  link: linkVerb,
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
      const spec = parseObject(readUserFile(options.file), { name: options.file });
      const dump = describeObject(spec);
      process.stdout.write(options.json ? `${JSON.stringify(dump, null, 2)}\n` : renderDump(dump, { helpers: options.helpers, raw: options.raw }));
      return EXIT.ok;
    }
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
