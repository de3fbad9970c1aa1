import { parseArgs } from 'node:util';

export const USAGE = `Usage:
  bpf-load [options] FILE        load every program and map of FILE, attach each program where its section says,
                                 show the maps live until Ctrl-C, then detach everything
  bpf-load --dump [--json] FILE  inspect FILE without root or a kernel: sections, maps, programs, relocations,
                                 disassembly
  bpf-load --filter EXPR [--dump | --pcap CAPTURE | -i IFACE]
                                 a classic (tcpdump) filter: show it, run it over a capture, or attach it to a
                                 packet socket and print the packets it passes

Options:
      --dump             inspect the object instead of loading it
      --json             machine-readable output (one document for --dump; a report then one line per round)
  -i, --iface NAME       interface for socket, XDP and tc programs (default: lo)
      --interval SEC     seconds between map reports (default: 1)
  -c, --count N          stop after N reports (0: load, report, exit)
      --per-cpu          show per-CPU map values separately instead of summed
      --no-attach        load programs and maps without attaching anything
      --skip KIND        do not attach programs of this kind (repeatable: socket, xdp, tc, tracepoint,
                         raw_tracepoint, tracing, lsm, kprobe, kretprobe, perf_event, cgroup, sockmap)
      --cgroup PATH      cgroup v2 directory for cgroup programs (default: the cgroup2 mount)
      --xdp-mode MODE    skb (default), drv or hw
      --force            replace an XDP program already attached to the interface
      --sample-freq HZ   perf_event sampling frequency (default: 99)
      --trace-pipe       stream trace_pipe lines beside the live maps
      --pin DIR          pin programs and maps under DIR (a bpffs directory) so they outlive this process
      --pin-root DIR     where maps with pinning "by name" live (default: /sys/fs/bpf)
  -v, --verbose          show verifier logs
      --filter TEXT      classic filter: a pcap-filter expression (compiled by the system's libpcap), tcpdump -ddd
                         output, its comma form (iptables/tc bytecode) or tcpdump -dd's C array
      --filter-file F    the same, read from F (raw struct sock_filter bytes too)
      --pcap CAPTURE     run the filter over a pcap/pcapng file: one line per matching packet, then a count
      --ebpf             --dump --filter: also show the eBPF translation
      --lock             attach the filter with SO_LOCK_FILTER
      --link-type DLT    link type an expression is compiled for (default: the capture's, else EN10MB)
      --engine js|kernel --pcap: compiled JavaScript (default) or one BPF_PROG_TEST_RUN per packet
  -h, --help             show this help
  -V, --version          show the version

Exit status: 0 on success, 1 when loading or attaching fails, 2 on a usage error.`;

export interface CliOptions {
  file: string | undefined;
  dump: boolean;
  json: boolean;
  iface: string;
  interval: number;
  count: number | undefined;
  perCpu: boolean;
  attach: boolean;
  skip: string[];
  cgroup: string | undefined;
  xdpMode: 'skb' | 'drv' | 'hw';
  force: boolean;
  sampleFreq: number;
  tracePipe: boolean;
  pin: string | undefined;
  pinRoot: string;
  verbose: boolean;
  /** Classic filter mode (src/cli/filter.ts). */
  filter: string | undefined;
  filterFile: string | undefined;
  pcap: string | undefined;
  ebpf: boolean;
  lock: boolean;
  linkType: string | undefined;
  engine: 'js' | 'kernel';
  help: boolean;
  version: boolean;
}

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const SKIP_KINDS = ['socket', 'xdp', 'tc', 'tracepoint', 'raw_tracepoint', 'tracing', 'lsm', 'kprobe', 'kretprobe', 'perf_event', 'cgroup', 'sockmap'];

export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        dump: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        iface: { type: 'string', short: 'i', default: 'lo' },
        interval: { type: 'string', default: '1' },
        count: { type: 'string', short: 'c' },
        'per-cpu': { type: 'boolean', default: false },
        'no-attach': { type: 'boolean', default: false },
        skip: { type: 'string', multiple: true, default: [] },
        cgroup: { type: 'string' },
        'xdp-mode': { type: 'string', default: 'skb' },
        force: { type: 'boolean', default: false },
        'sample-freq': { type: 'string', default: '99' },
        'trace-pipe': { type: 'boolean', default: false },
        pin: { type: 'string' },
        'pin-root': { type: 'string', default: '/sys/fs/bpf' },
        verbose: { type: 'boolean', short: 'v', default: false },
        filter: { type: 'string' },
        'filter-file': { type: 'string' },
        pcap: { type: 'string' },
        ebpf: { type: 'boolean', default: false },
        lock: { type: 'boolean', default: false },
        'link-type': { type: 'string' },
        engine: { type: 'string', default: 'js' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'V', default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length > 1) throw new UsageError(`expected one object file, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}`);
  const xdpMode = v['xdp-mode'];
  if (xdpMode !== 'skb' && xdpMode !== 'drv' && xdpMode !== 'hw') throw new UsageError(`--xdp-mode must be skb, drv or hw, not "${xdpMode}"`);
  const engine = v.engine;
  if (engine !== 'js' && engine !== 'kernel') throw new UsageError(`--engine must be js or kernel, not "${engine}"`);
  if (v.filter !== undefined && v['filter-file'] !== undefined) throw new UsageError('--filter and --filter-file: give one filter');
  if (v.pcap !== undefined && v.filter === undefined && v['filter-file'] === undefined) throw new UsageError('--pcap needs --filter or --filter-file');
  for (const k of v.skip) if (!SKIP_KINDS.includes(k)) throw new UsageError(`--skip ${k}: unknown kind (one of ${SKIP_KINDS.join(', ')})`);
  return {
    file: parsed.positionals[0],
    dump: v.dump,
    json: v.json,
    iface: v.iface,
    interval: number('--interval', v.interval, { min: 0.01 }),
    count: v.count === undefined ? undefined : number('--count', v.count, { min: 0, integer: true }),
    perCpu: v['per-cpu'],
    attach: !v['no-attach'],
    skip: v.skip,
    cgroup: v.cgroup,
    xdpMode,
    force: v.force,
    sampleFreq: number('--sample-freq', v['sample-freq'], { min: 1, integer: true }),
    tracePipe: v['trace-pipe'],
    pin: v.pin,
    pinRoot: v['pin-root'],
    verbose: v.verbose,
    filter: v.filter,
    filterFile: v['filter-file'],
    pcap: v.pcap,
    ebpf: v.ebpf,
    lock: v.lock,
    linkType: v['link-type'],
    engine,
    help: v.help,
    version: v.version,
  };
}

function number(flag: string, text: string, rule: { min: number; integer?: boolean }): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < rule.min || (rule.integer === true && !Number.isInteger(n))) {
    throw new UsageError(`${flag} expects ${rule.integer === true ? 'a whole number' : 'a number'} ≥ ${rule.min}, not "${text}"`);
  }
  return n;
}
