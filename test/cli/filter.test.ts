/**
 * `bpf-load --filter`: --dump output is tcpdump -d's, byte for byte, whatever form the filter comes in; --json and
 * --ebpf; mistakes are one line with the right exit status.
 */
import { spawnSync } from 'node:child_process'; // our CLI with a chosen environment, argument array: no shell
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeClassicProgram, parseClassicDecimal } from '../../src/cbpf/index.js';
import { writePcap } from '../../src/pcap/index.js';
import { CLI, runCli } from '../helpers/cli.js';
import { kernelTest, PROJECT_ROOT } from '../helpers/kernel.js';
import { libpcapPath, TCPDUMP, tcpdumpCompile } from '../cbpf/oracle.js';
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

describe.runIf(TCPDUMP !== undefined)('--link-type: expressions compiled for other link layers, as tcpdump -y TYPE -d does', () => {
  const LINK_TYPES = ['EN10MB', 'LINUX_SLL', 'LINUX_SLL2', 'RAW', 'NULL', 'LOOP', 'IPV4', 'PPP', 'IEEE802_11'];
  for (const type of LINK_TYPES) {
    it(type, () => {
      const r = runCli(['--dump', '--filter', SEED, '--link-type', type]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(tcpdumpCompile(SEED, '-d', true, type));
    });
  }
  it('a number is the link type capture files give it (113, 101); the programs differ by link type; an unknown name is a usage error', () => {
    expect(runCli(['--dump', '--filter', SEED, '--link-type', '113']).stdout).toBe(tcpdumpCompile(SEED, '-d', true, 'LINUX_SLL'));
    // LINKTYPE_RAW is 101 in files, DLT_RAW 12 to libpcap on Linux.
    expect(runCli(['--dump', '--filter', SEED, '--link-type', '101']).stdout).toBe(tcpdumpCompile(SEED, '-d', true, 'RAW'));
    expect(new Set(LINK_TYPES.map((t) => tcpdumpCompile(SEED, '-d', true, t))).size).toBe(LINK_TYPES.length);
    const r = runCli(['--dump', '--filter', SEED, '--link-type', 'NOSUCHLINK']);
    expect(r.stderr).toMatch(/^bpf-load: --link-type NOSUCHLINK: unknown link type \(EN10MB, LINUX_SLL, RAW, … or a link type number\)\n/);
    expect(r.status).toBe(2);
  });
});

describe('without libpcap (BPF_LOAD_LIBPCAP names one that does not load)', () => {
  const withLibpcap = (path: string, args: readonly string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: PROJECT_ROOT, env: { ...process.env, BPF_LOAD_LIBPCAP: path } });
  it('an expression is one line saying how to install libpcap or what to pass instead, exit 1', () => {
    const r = withLibpcap('/nonexistent/libpcap.so.1', ['--dump', '--filter', SEED]);
    expect(r.stderr).toBe('bpf-load: compiling a pcap-filter expression needs libpcap, and BPF_LOAD_LIBPCAP names one that does not load ' +
      '(/nonexistent/libpcap.so.1: Failed to load shared library: cannot open shared object file: No such file or directory): install it ' +
      '(apt-get install libpcap0.8, dnf install libpcap, apk add libpcap), or pass the program itself: --filter "$(tcpdump -ddd \'EXPR\')"\n');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
  });
  it('tcpdump -ddd output needs no libpcap', () => {
    const r = withLibpcap('/nonexistent/libpcap.so.1', ['--dump', '--filter', '4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n');
  });
  it.runIf(libpcapPath() !== undefined)('BPF_LOAD_LIBPCAP naming the installed libpcap by path works', () => {
    const r = withLibpcap(libpcapPath()!, ['--dump', '--filter', 'ip']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0\n');
  });
});

describe.runIf(TCPDUMP !== undefined)('--pcap CAPTURE --write OUT: the matches saved as tcpdump -w saves them', () => {
  const capture = join(dir, 'write-input.pcap');
  writeFileSync(capture, writePcap(syntheticCapture(800)));
  const tcpdumpText = (file: string, expression?: string) =>
    spawnSync(TCPDUMP!, ['-r', file, '-n', '-tt', ...(expression === undefined ? [] : [expression])], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
  for (const expression of [SEED, 'udp or icmp', 'vlan and tcp', 'ip6']) {
    it(expression, () => {
      const ours = join(dir, 'ours.pcap');
      const theirs = join(dir, 'theirs.pcap');
      const r = runCli(['--filter', expression, '--pcap', capture, '--write', ours]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const expected = tcpdumpText(capture, expression).trimEnd().split('\n').filter((l) => l !== '');
      expect(expected.length).toBeGreaterThan(0);
      expect(r.stdout).toBe(`${expected.length} of 800 packets matched (compiled JavaScript), written to ${ours}\n`);
      expect(spawnSync(TCPDUMP!, ['-r', capture, '-w', theirs, expression]).status).toBe(0);
      // Byte for byte what tcpdump -w writes, and tcpdump -r reads back the packets it picked itself.
      expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
      expect(tcpdumpText(ours)).toBe(tcpdumpText(capture, expression));
    });
  }
  it('--json says where; --count stops the writing; the kernel engine writes the same bytes', () => {
    const out = join(dir, 'counted.pcap');
    const r = runCli(['--filter', 'udp', '--pcap', capture, '--write', out, '--count', '5', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ matched: 5, engine: 'js', written: out });
    expect(tcpdumpText(out).trimEnd().split('\n')).toEqual(tcpdumpText(capture, 'udp').trimEnd().split('\n').slice(0, 5));
  });
  const mistakes: Array<[string, string[], number, RegExp]> = [
    ['--write without --pcap', ['--filter', 'udp', '--write', join(dir, 'x.pcap')], 2, /^bpf-load: --write saves the packets a filter matches in a capture: it needs --pcap CAPTURE \(and no --dump\)\n/],
    ['--write over the capture being read', ['--filter', 'udp', '--pcap', capture, '--write', capture], 2, /^bpf-load: --write .*write-input\.pcap: that is the capture being read/],
    ['--write into a missing directory', ['--filter', 'udp', '--pcap', capture, '--write', join(dir, 'no', 'x.pcap')], 1, /^bpf-load: .*no\/x\.pcap: no such file\n$/],
  ];
  for (const [what, args, status, message] of mistakes) {
    it(what, () => {
      const r = runCli(args);
      expect(r.stderr).toMatch(message);
      expect(r.status).toBe(status);
      expect(readFileSync(capture).byteLength).toBeGreaterThan(800 * 16);
    });
  }
  kernelTest('a program the kernel must run (an ancillary load) writes through the kernel engine', () => {
    const out = join(dir, 'kernel.pcap');
    // ld [proto]: the skb's protocol, which only the kernel knows; 0x800 for the IPv4 frames.
    const r = runCli(['--filter', '4,40 0 0 4294963200,21 0 1 2048,6 0 0 262144,6 0 0 0', '--pcap', capture, '--write', out]);
    expect(r.stderr).toBe('');
    expect(existsSync(out)).toBe(true);
    expect(r.stdout).toMatch(/ of 800 packets matched \(kernel BPF_PROG_TEST_RUN\), written to /);
    expect(tcpdumpText(out)).toBe(tcpdumpText(capture, 'ether proto 0x800'));
  });
});
