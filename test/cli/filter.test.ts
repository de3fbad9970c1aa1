/**
 * `bpf-load --filter`: --dump output is tcpdump -d's, byte for byte, whatever form the filter comes in; --json and
 * --ebpf; mistakes are one line with the right exit status.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeClassicProgram, parseClassicDecimal } from '../../src/cbpf/index.js';
import { writePcap } from '../../src/pcap/index.js';
import { runCli } from '../helpers/cli.js';
import { TCPDUMP, tcpdumpCompile } from '../cbpf/oracle.js';
import { syntheticCapture } from '../pcap/frames.js';

const SEED = 'ip and tcp dst port 8080';
const dir = mkdtempSync(join(tmpdir(), 'bpf-load-filter-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(TCPDUMP !== undefined)('bpf-load --dump --filter', () => {
  it('prints what tcpdump -d prints, from an expression, -ddd text, its comma form, -dd text and raw bytes', () => {
    const expected = tcpdumpCompile(SEED, '-d');
    const decimal = tcpdumpCompile(SEED, '-ddd');
    const program = parseClassicDecimal(decimal);
    writeFileSync(join(dir, 'seed.ddd'), decimal);
    writeFileSync(join(dir, 'seed.dd'), tcpdumpCompile(SEED, '-dd'));
    writeFileSync(join(dir, 'seed.bin'), encodeClassicProgram(program));
    writeFileSync(join(dir, 'seed.expr'), `${SEED}\n`);
    const runs = [
      ['--filter', SEED], ['--filter', decimal.trim().split('\n').join(',')], ['--filter-file', join(dir, 'seed.ddd')],
      ['--filter-file', join(dir, 'seed.dd')], ['--filter-file', join(dir, 'seed.bin')], ['--filter-file', join(dir, 'seed.expr')],
    ];
    for (const args of runs) {
      const r = runCli(['--dump', ...args]);
      expect({ args, status: r.status, stderr: r.stderr }).toEqual({ args, status: 0, stderr: '' });
      expect(r.stdout).toBe(expected);
    }
  });

  it('--json lists the instructions; --ebpf adds the translation', () => {
    const r = runCli(['--dump', '--json', '--ebpf', '--filter', SEED]);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { form: string; kernel: string; instructions: Array<{ code: number; text: string }>; ebpf: Array<{ text: string }> };
    expect(doc.form).toBe('expression');
    expect(doc.kernel).toBe('accepted');
    expect(doc.instructions.map((i) => i.text)).toEqual(tcpdumpCompile(SEED, '-d').trimEnd().split('\n').map((l) => l.slice(6)));
    expect(doc.ebpf[0]!.text).toBe('r6 = r1');
    expect(doc.ebpf.at(-1)!.text).toBe('exit');
    const text = runCli(['--dump', '--ebpf', '--filter', SEED]).stdout;
    expect(text).toMatch(/\neBPF translation \(\d+ instructions, as the kernel's bpf_convert_filter would run it\):\n {3}0: r6 = r1\n/);
  });

  it('shows a program the kernel would refuse, saying why on stderr', () => {
    const r = runCli(['--dump', '--filter', 'ip protochain 17']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(tcpdumpCompile('ip protochain 17', '-d'));
    expect(r.stderr).toMatch(/^bpf-load: the kernel would refuse this program: filter: insn \d+: ja: jumps backwards to \d+/);
  });
});

describe('bpf-load --filter mistakes', () => {
  writeFileSync(join(dir, 'short.pcap'), writePcap(syntheticCapture(3)).subarray(0, 40));
  writeFileSync(join(dir, 'good.pcap'), writePcap(syntheticCapture(3)));
  const cases: Array<[string, string[], number, RegExp]> = [
    ['bad expression', ['--dump', '--filter', 'ip and bogus'], 1, /^bpf-load: filter "ip and bogus": syntax error in filter expression\n$/],
    ['bad bytecode', ['--dump', '--filter', '2,6 0 0 0'], 1, /^bpf-load: filter: the count says 2 instructions but 1 follow\n$/],
    ['empty capture', ['--filter', '1,6 0 0 0', '--pcap', '/dev/null'], 1, /^bpf-load: \/dev\/null: offset 0: 0 bytes is too short for a capture file\n$/],
    ['kernel rule over a capture', ['--filter', '2,21 0 5 0,6 0 0 0', '--pcap', join(dir, 'good.pcap')], 1, /^bpf-load: filter: insn 0: jeq: jump target 6 is outside the program \(2 instructions\)\n$/],
    ['kernel rule shown by --dump', ['--filter', '2,21 0 5 0,6 0 0 0', '--dump'], 0, /kernel would refuse this program: filter: insn 0: jeq: jump target 6/],
    ['truncated capture', ['--filter', 'ip', '--pcap', join(dir, 'short.pcap')], 1, /^bpf-load: .*short\.pcap: packet 1: offset 24: truncated: \d+ bytes of packet data, 0 left in the file\n$/],
    ['missing filter file', ['--filter-file', join(dir, 'nope')], 1, /^bpf-load: .*nope: no such file\n$/],
    ['both filters', ['--filter', 'ip', '--filter-file', 'x'], 2, /--filter and --filter-file: give one filter/],
    ['--pcap alone', ['--pcap', 'x.pcap'], 2, /--pcap does not apply to loading a FILE \(only to --filter, --test-run\)/],
    ['object file too', ['--filter', 'ip', 'c-samples/sockex1_kern.o'], 2, /--filter runs on its own/],
    ['engine', ['--filter', 'ip', '--engine', 'gpu'], 2, /--engine must be js or kernel/],
  ];
  for (const [what, args, status, message] of cases) {
    it(what, () => {
      const r = runCli(args);
      expect(r.stderr).toMatch(message);
      expect(r.status).toBe(status);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }
});
