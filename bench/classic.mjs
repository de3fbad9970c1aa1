/**
 * (i) Filtering a capture with a classic filter, whole processes over a 1M-packet capture written here: the same job
 * on both sides — `bpf-load --filter EXPR --pcap FILE --write /dev/null` against `tcpdump -r FILE EXPR -w /dev/null`
 * (after checking that --write writes tcpdump -w's very file), and a line per match against `tcpdump -n -r`. Also
 * the kernel engine (one BPF_PROG_TEST_RUN per packet) for scale.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CAPTURE_PACKETS = 1_000_000;
export const FILTER = 'ip and tcp dst port 8080';

/** A 14-byte Ethernet header, then an IPv4 or IPv6 packet; a few shapes with varying ports and sizes. */
function frames() {
  const eth = (type) => [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, type >> 8, type & 0xff];
  const ipv4 = (proto, body) => [0x45, 0, (20 + body.length) >> 8, (20 + body.length) & 0xff, 0, 1, 0x40, 0, 64, proto, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, ...body];
  const tcp = (sport, dport, flags, payload) => [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0, ...new Array(payload).fill(0x61)];
  const udp = (sport, dport, payload) => [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 8 + payload, 0, 0, ...new Array(payload).fill(0x62)];
  const ipv6 = (proto, body) => [0x60, 0, 0, 0, body.length >> 8, body.length & 0xff, proto, 64, ...new Array(15).fill(0), 1, ...new Array(15).fill(0), 1, ...body];
  return [
    [...eth(0x0800), ...ipv4(6, tcp(40000, 8080, 0x02, 0))],
    [...eth(0x0800), ...ipv4(6, tcp(40000, 8080, 0x18, 300))],
    [...eth(0x0800), ...ipv4(6, tcp(8080, 40000, 0x18, 1200))],
    [...eth(0x0800), ...ipv4(6, tcp(40001, 443, 0x10, 0))],
    [...eth(0x0800), ...ipv4(17, udp(5353, 53, 40))],
    [...eth(0x0800), ...ipv4(1, [8, 0, 0, 0, 0, 1, 0, 1, ...new Array(56).fill(0)])],
    [...eth(0x86dd), ...ipv6(6, tcp(40002, 8080, 0x02, 0))],
    [...eth(0x0806), 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2],
  ].map((f) => Uint8Array.from(f));
}

/** Writes the capture with the library's own pcap writer; returns its path and a cleanup. */
export function writeBenchCapture(writePcap) {
  const shapes = frames();
  const packets = new Array(CAPTURE_PACKETS);
  for (let i = 0; i < CAPTURE_PACKETS; i++) packets[i] = { seconds: 1_700_000_000 + Math.floor(i / 1000), nanos: (i % 1000) * 1000, data: shapes[(i * 7 + (i >> 3)) % shapes.length] };
  const dir = mkdtempSync(join(tmpdir(), 'bpf-load-bench-'));
  const path = join(dir, 'capture.pcap');
  writeFileSync(path, writePcap(packets));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The (i) rows. `tools` are run.mjs's helpers (run, Skip, nowNs, median, addRow, msFigure, requireRoot); `cli` the built CLI.
 * Each side runs `runs` times, stdout to /dev/null; the medians of whole-process wall time are compared.
 */
export function benchClassicFilter({ run, Skip, nowNs, median, addRow, msFigure, requireRoot, writePcap, cli, devNull, runs = 5 }) {
  run('tcpdump', ['--version']);
  const capture = writeBenchCapture(writePcap);
  try {
    const time = (cmd, args) => {
      const start = nowNs();
      const r = run(cmd, args, { stdio: ['ignore', devNull, 'pipe'] });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      return (nowNs() - start) / 1e6;
    };
    // The sides must do the same job before their times mean anything: --write must produce tcpdump -w's very file,
    // and the line-per-match mode must match as many packets as tcpdump prints.
    const oursFile = `${capture.path}.ours`;
    const theirsFile = `${capture.path}.theirs`;
    const ours = run(process.execPath, [cli, '--filter', FILTER, '--pcap', capture.path, '--write', oursFile]);
    const oursMatched = Number(/^(\d+) of (\d+) packets matched/m.exec(ours.stdout)?.[1]);
    run('tcpdump', ['-r', capture.path, '-w', theirsFile, FILTER]);
    if (!readFileSync(oursFile).equals(readFileSync(theirsFile))) throw new Error('--write and tcpdump -w wrote different files');
    const tcpdumpMatched = run('tcpdump', ['-n', '-r', capture.path, FILTER], { maxBuffer: 1 << 30 }).stdout.split('\n').filter((l) => l !== '').length;
    if (oursMatched !== tcpdumpMatched) throw new Error(`bpf-load matched ${oursMatched} packets, tcpdump ${tcpdumpMatched}`);
    const write = [];
    const binary = [];
    const lines = [];
    const text = [];
    // Interleaved rounds: on a shared machine, the load drifts alike for both sides.
    for (let i = 0; i < runs; i++) {
      write.push(time(process.execPath, [cli, '--filter', FILTER, '--pcap', capture.path, '--write', '/dev/null']));
      binary.push(time('tcpdump', ['-r', capture.path, FILTER, '-w', '/dev/null']));
      lines.push(time(process.execPath, [cli, '--filter', FILTER, '--pcap', capture.path]));
      text.push(time('tcpdump', ['-n', '-r', capture.path, FILTER]));
    }
    const label = `1M-packet capture, ${FILTER}, ${oursMatched} matches`;
    addRow(`(i) --filter --pcap --write /dev/null, ${label} [vs tcpdump -r FILE EXPR -w /dev/null]`, msFigure(median(write)),
      msFigure(median(binary)), { kind: 'ratio', max: 1.0, label: '≤ 1.0×' });
    addRow('(i) the same, one line per match [vs tcpdump -n -r FILE EXPR, one line per match too]', msFigure(median(lines)), msFigure(median(text)));
    try {
      requireRoot();
      const kernel = time(process.execPath, [cli, '--filter', FILTER, '--pcap', capture.path, '--engine', 'kernel', '--write', '/dev/null']);
      addRow('(i) the same with --engine kernel --write /dev/null, one BPF_PROG_TEST_RUN per packet [vs tcpdump -w /dev/null]', msFigure(kernel),
        msFigure(median(binary)));
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
    }
  } finally {
    capture.cleanup();
  }
}
