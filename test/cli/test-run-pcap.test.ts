/**
 * `bpf-load FILE --test-run PROG --pcap CAPTURE`: every packet of a capture through an XDP, a tc and a socket filter
 * program of c-samples/verdicts_kern.o with BPF_PROG_TEST_RUN. The three programs implement tcpdump's `udp`, so
 * `tcpdump -r CAPTURE udp` says which packets each must drop (XDP, tc) or keep (socket filter); mistakes are one
 * line, exit 1, before anything runs.
 */
import { spawnSync } from 'node:child_process'; // runs tcpdump -r as the oracle, argument array: no shell
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { readCapture, writePcap } from '../../src/pcap/index.js';
import { TCPDUMP } from '../cbpf/oracle.js';
import { runCli } from '../helpers/cli.js';
import { kernelTest } from '../helpers/kernel.js';
import { syntheticCapture } from '../pcap/frames.js';

const OBJECT = 'c-samples/verdicts_kern.o';
const PACKETS = 800;
const dir = mkdtempSync(join(tmpdir(), 'bpf-load-test-run-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const capture = join(dir, 'mixed.pcap');
const captureBytes = writePcap(syntheticCapture(PACKETS));
writeFileSync(capture, captureBytes);
const frames = [...readCapture(captureBytes)].map((p) => p.data);

/** The 1-based indices `tcpdump -r` prints for an expression (each synthetic packet's timestamp is its index). */
function tcpdumpIndices(expression: string): number[] {
  const r = spawnSync(TCPDUMP!, ['-r', capture, '-n', '-tt', expression], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tcpdump -r failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => /^\d+\.\d{6} /.test(l)).map((l) => Number(l.slice(0, l.indexOf('.'))));
}

interface PacketVerdict { index: number; retval: number; verdict: string; captured: number; protocol?: string }

describe.runIf(TCPDUMP !== undefined)('--test-run PROG --pcap CAPTURE', () => {
  const programs: Array<[string, string, string, string]> = [
    ['xdp_drop_udp', 'xdp', 'XDP_DROP', 'XDP_PASS'],
    ['tc_drop_udp', 'sched_cls', 'TC_ACT_SHOT', 'TC_ACT_OK'],
    ['socket_keep_udp', 'socket_filter', 'keep', 'drop'],
  ];
  for (const [name, type, udpVerdict, otherVerdict] of programs) {
    kernelTest(`${name} (${type}): the packets tcpdump -r calls udp get ${udpVerdict}, the rest ${otherVerdict}`, () => {
      const udp = tcpdumpIndices('udp');
      expect(udp.length).toBeGreaterThan(50);
      expect(udp.length).toBeLessThan(PACKETS - 50);
      const r = runCli([OBJECT, '--test-run', name, '--pcap', capture, '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const perPacket = lines.slice(0, -1) as unknown as PacketVerdict[];
      expect(perPacket.map((p) => p.index)).toEqual(Array.from({ length: PACKETS }, (_, i) => i + 1));
      expect(perPacket.filter((p) => p.verdict === udpVerdict).map((p) => p.index)).toEqual(udp);
      expect(perPacket.filter((p) => p.verdict !== udpVerdict).every((p) => p.verdict === otherVerdict)).toBe(true);
      if (type === 'socket_filter') {
        // A kept packet keeps all of itself: skb->len, which under test run starts at the network header.
        for (const p of perPacket) expect(p.retval).toBe(p.verdict === 'keep' ? frames[p.index - 1]!.byteLength - 14 : 0);
      }
      expect(lines.at(-1)).toEqual({ program: name, type, packets: PACKETS, verdicts: { [otherVerdict]: PACKETS - udp.length, [udpVerdict]: udp.length } });

      const text = runCli([OBJECT, '--test-run', name, '--pcap', capture]);
      expect(text.status, text.stderr).toBe(0);
      const textLines = text.stdout.trimEnd().split('\n');
      expect(textLines).toHaveLength(PACKETS + 1);
      expect(textLines.at(-1)).toBe(`${PACKETS} packets through ${name} (${type}): ${PACKETS - udp.length} ${otherVerdict}, ${udp.length} ${udpVerdict}`);
      const first = perPacket[udp[0]! - 1]!;
      const meaning = type === 'socket_filter' ? `keep ${first.retval} bytes` : `${udpVerdict} \\(${first.retval}\\)`;
      expect(textLines[udp[0]! - 1]).toMatch(new RegExp(`^${udp[0]} \\d\\d:\\d\\d:\\d\\d\\.000000 IP6? \\S+ > \\S+: udp, length \\d+ → ${meaning}$`));
    }, 60_000);
  }
});

describe('--test-run --pcap mistakes: one line, nothing run', () => {
  writeFileSync(join(dir, 'short.pcap'), captureBytes.subarray(0, 60));
  writeFileSync(join(dir, 'sll.pcap'), writePcap(syntheticCapture(2), { linkType: 113 }));
  writeFileSync(join(dir, 'tiny.pcap'), writePcap([{ seconds: 1, nanos: 0, data: new Uint8Array(64) }, { seconds: 2, nanos: 0, data: new Uint8Array(6) }]));
  const cases: Array<[string, string[], number, RegExp]> = [
    ['a program type that takes no packets', ['c-samples/trace_hello_kern.o', '--test-run', 'trace_getpid', '--pcap', capture], 1,
      /^bpf-load: c-samples\/trace_hello_kern\.o: program trace_getpid: tracepoint programs do not take packets: --pcap runs socket_filter, sched_cls, .* programs\n$/],
    ['an unknown program', [OBJECT, '--test-run', 'nope', '--pcap', capture], 1, /^bpf-load: c-samples\/verdicts_kern\.o: no loaded program named nope \(programs: xdp_drop_udp, tc_drop_udp, socket_keep_udp\)\n$/],
    ['a truncated capture', [OBJECT, '--test-run', 'xdp_drop_udp', '--pcap', join(dir, 'short.pcap')], 1, /^bpf-load: .*short\.pcap: packet 1: offset 24: truncated: \d+ bytes of packet data, 20 left in the file\n$/],
    ['not a capture', [OBJECT, '--test-run', 'xdp_drop_udp', '--pcap', OBJECT], 1, /^bpf-load: c-samples\/verdicts_kern\.o: offset 0: not a pcap or pcapng file \(magic 0x464c457f\)\n$/],
    ['a capture that is not Ethernet', [OBJECT, '--test-run', 'xdp_drop_udp', '--pcap', join(dir, 'sll.pcap')], 1, /^bpf-load: .*sll\.pcap: packet 1: link type 113, but BPF_PROG_TEST_RUN takes Ethernet frames \(link type 1\)\n$/],
    ['--data-in beside --pcap', [OBJECT, '--test-run', 'xdp_drop_udp', '--pcap', capture, '--data-in', capture], 2, /^bpf-load: --pcap and --data-in: --pcap runs the program once on each packet of the capture/],
  ];
  for (const [what, args, status, message] of cases) {
    kernelTest(what, () => {
      const r = runCli(args);
      expect(r.stderr).toMatch(message);
      expect(r.status).toBe(status);
      expect(r.stdout).toBe('');
    });
  }
  kernelTest('a frame the kernel refuses names the packet, after the lines before it', () => {
    const r = runCli([OBJECT, '--test-run', 'xdp_drop_udp', '--pcap', join(dir, 'tiny.pcap')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^bpf-load: c-samples\/verdicts_kern\.o: .*tiny\.pcap: packet 2: program xdp_drop_udp \(xdp\): test run: the kernel refused the input \(data 6 B, ctx 0 B\): .*\(EINVAL\)\n$/);
    expect(r.stdout).toMatch(/^1 \d\d:\d\d:\d\d\.000000 ethertype 0x0000, length 64 → XDP_PASS \(2\)\n$/);
  });
});
