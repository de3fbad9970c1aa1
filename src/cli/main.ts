#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { BpfLoadError } from '../base/errors.js';
import { readUserFile } from '../base/file.js';
import { ELF_HEADER_CHECK } from '../elf/index.js';
import { parseObject } from '../object/index.js';
import { describeObject } from '../object/describe.js';
import { parseCli, USAGE, UsageError } from './args.js';
import { renderDump } from './dump.js';
import { runObject } from './run.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The CLI: argv in, exit status out. Everything real happens in the library. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const options = parseCli(argv);
    if (options.help) {
      process.stdout.write(`${USAGE}\n`);
      return EXIT_OK;
    }
    if (options.version) {
      process.stdout.write(`bpf-load ${packageVersion()}\n`);
      return EXIT_OK;
    }
    if (options.file === undefined) throw new UsageError('missing the object FILE to load');
    if (options.dump) {
      // `bpf-load --dump x.o | head`: a closed pipe is the reader's choice, not an error. (Run mode handles it itself,
      // detaching first.)
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(0);
      });
      const spec = parseObject(readUserFile(options.file, { head: ELF_HEADER_CHECK }), { name: options.file });
      const dump = describeObject(spec);
      process.stdout.write(options.json ? `${JSON.stringify(dump, null, 2)}\n` : renderDump(dump));
      return EXIT_OK;
    }
    return await runObject(options);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bpf-load: ${e.message}\nTry 'bpf-load --help'.\n`);
      return EXIT_USAGE;
    }
    if (e instanceof BpfLoadError) {
      process.stderr.write(`bpf-load: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    throw e;
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

process.exitCode = await main(process.argv.slice(2));
