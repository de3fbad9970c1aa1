import { writeFileSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { FileError, readUserFile } from '../base/file.js';
import { generateTypes } from '../gen/generate.js';
import { parseObject } from '../object/index.js';
import { UsageError } from './args.js';

export const GEN_USAGE = `Usage:
  bpf-load gen FILE [--out PATH] [--name NAME] [--embed]

Writes a TypeScript module for the object FILE: its maps' keys and values, its global variables and its .rodata
constants as TypeScript types with generated codecs, its programs' names, and open() to load it.

Options:
      --out PATH     write the module to PATH (default: standard output)
      --name NAME    base of the skeleton's class name (default: from FILE's name)
      --embed        embed the object in the module instead of reading FILE (by its path relative to the module)
  -h, --help         show this help`;

/** `bpf-load gen`: the object's skeleton, to stdout or --out. */
export function runGen(argv: readonly string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: 'string', short: 'o' },
        name: { type: 'string' },
        embed: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new UsageError(`gen: ${(e as Error).message}`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${GEN_USAGE}\n`);
    return 0;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined) throw new UsageError('gen: missing the object FILE');
  if (extra.length > 0) throw new UsageError(`gen: expected one object file, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  if (v.name !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.name)) throw new UsageError(`gen: --name must be an identifier, not "${v.name}"`);
  const bytes = readUserFile(file);
  const spec = parseObject(bytes, { name: file });
  const objectName = basename(file);
  const code = generateTypes(spec, {
    objectName,
    ...(v.name === undefined ? {} : { name: v.name }),
    ...(v.embed ? { embed: bytes } : { objectPath: objectPathFrom(v.out, file) }),
  });
  if (v.out === undefined) {
    process.stdout.write(code);
    return 0;
  }
  try {
    writeFileSync(v.out, code);
  } catch (e) {
    throw new FileError(v.out, `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return 0;
}

/** The object's path as the generated module finds it: relative to where the module is written (stdout: the cwd). */
function objectPathFrom(out: string | undefined, file: string): string {
  const from = out === undefined ? process.cwd() : dirname(resolve(out));
  const rel = relative(from, resolve(file)).split(sep).join('/');
  return rel.startsWith('../') ? rel : `./${rel}`;
}
