import { writeFileSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { FileError, readUserFile } from '../base/file.js';
import { generateTypes } from '../gen/generate.js';
import { parseObject } from '../object/index.js';
import { EXIT, UsageError, type CliOptions } from './args.js';

/** `bpf-load gen FILE [--out PATH] [--name NAME] [--embed]`: the object's typed skeleton, to stdout or --out. */
export function runGen(options: CliOptions): number {
  const [file, ...extra] = options.args;
  if (file === undefined) throw new UsageError('gen: missing the object FILE');
  if (extra.length > 0) throw new UsageError(`gen: expected one object file, got ${options.args.length}: ${options.args.join(' ')}`);
  if (options.name !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.name)) {
    throw new UsageError(`gen: --name must be an identifier, not "${options.name}"`);
  }
  const bytes = readUserFile(file);
  const spec = parseObject(bytes, { name: file });
  const code = generateTypes(spec, {
    objectName: basename(file),
    ...(options.name === undefined ? {} : { name: options.name }),
    eventTypes: options.eventTypes,
    ...(options.embed ? { embed: bytes } : { objectPath: objectPathFrom(options.out, file) }),
  });
  if (options.out === undefined) {
    // `bpf-load gen x.o | head`: a closed pipe is the reader's choice, not an error.
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT.ok);
    });
    process.stdout.write(code);
    return EXIT.ok;
  }
  try {
    writeFileSync(options.out, code);
  } catch (e) {
    throw new FileError(options.out, `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return EXIT.ok;
}

/** The object's path as the generated module finds it: relative to where the module is written (stdout: the cwd). */
function objectPathFrom(out: string | undefined, file: string): string {
  const from = out === undefined ? process.cwd() : dirname(resolve(out));
  const rel = relative(from, resolve(file)).split(sep).join('/');
  return rel.startsWith('../') ? rel : `./${rel}`;
}
