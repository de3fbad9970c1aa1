/**
 * Oracles for classic BPF: Debian's tcpdump (`-d`, `-ddd`, `-r`) and libpcap's own bpf_image(), reached through a
 * tiny C program compiled here and linked against the installed libpcap (no headers needed: the one prototype is
 * declared in the source).
 */
import { spawnSync } from 'node:child_process'; // runs tcpdump and cc as oracles, with argument arrays: no shell
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isExecutable, oracleTool, oracleUnavailable } from '../helpers/kernel.js';

export const TCPDUMP = oracleTool('tcpdump', ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'], 'apt-get install tcpdump');

/** The installed libpcap shared object (tcpdump's dependency), or undefined with `oracleUnavailable`'s rule. */
export function libpcapPath(): string | undefined {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib']) {
    if (!existsSync(dir)) continue;
    const name = readdirSync(dir).filter((f) => /^libpcap\.so\.\d/.test(f)).sort()[0];
    if (name !== undefined) return join(dir, name);
  }
  oracleUnavailable('libpcap is not installed (apt-get install libpcap0.8)');
  return undefined;
}

/** tcpdump's output for an expression with one of -d, -dd, -ddd (Ethernet unless `linkType` names another DLT). */
export function tcpdumpCompile(expression: string, flag: '-d' | '-dd' | '-ddd', optimize = true, linkType?: string): string {
  const args = [flag, ...(optimize ? [] : ['-O']), ...(linkType === undefined ? [] : ['-y', linkType]), expression];
  const r = spawnSync(TCPDUMP!, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tcpdump ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const IMAGE_SOURCE = `#include <stdio.h>
struct bpf_insn { unsigned short code; unsigned char jt, jf; unsigned int k; };
char *bpf_image(const struct bpf_insn *, int);
int main(void) {
  unsigned c, jt, jf, k; int n = 0; struct bpf_insn i;
  while (scanf("%u %u %u %u", &c, &jt, &jf, &k) == 4) { i.code = c; i.jt = jt; i.jf = jf; i.k = k; puts(bpf_image(&i, n++)); }
  return 0;
}
`;

/** A function running libpcap's bpf_image over `code jt jf k` lines, or a reason it cannot be built here. */
export function bpfImageOracle(): ((input: string) => string) | string {
  const lib = libpcapPath();
  if (lib === undefined) return 'libpcap is not installed';
  if (!isExecutable('/usr/bin/cc')) return 'no C compiler (cc)';
  const dir = mkdtempSync(join(tmpdir(), 'bpf-load-image-'));
  try {
    writeFileSync(join(dir, 'image.c'), IMAGE_SOURCE);
    const build = spawnSync('/usr/bin/cc', ['-o', join(dir, 'image'), join(dir, 'image.c'), lib], { encoding: 'utf8' });
    if (build.status !== 0) return `cc failed: ${build.stderr}`;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const binary = join(dir, 'image');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return (input) => {
    const r = spawnSync(binary, [], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`bpf_image oracle failed: ${r.stderr}`);
    return r.stdout;
  };
}
