import { parseArgs } from 'node:util';

export const USAGE = `Usage:
  bpf-load [options] FILE        load every program and map of FILE, attach each program where its section says,
                                 show the maps live until Ctrl-C, then detach everything
  bpf-load --dump [--json] FILE  inspect FILE without root or a kernel: sections, maps, programs, relocations,
                                 disassembly

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
      --no-events        do not read ring buffers and perf event arrays (by default each record is printed)
      --event-type NAME  decode records as this BTF type (default: a struct named "event" when the object has one)
      --test-run PROG    load without attaching, run PROG once with BPF_PROG_TEST_RUN, print the result, exit
      --data-in FILE     --test-run: the packet to run on (default: 64 zero bytes for packet programs)
      --repeat N         --test-run: run N times; the duration is the kernel's mean per run
      --pin DIR          pin programs and maps under DIR (a bpffs directory) so they outlive this process
      --pin-root DIR     where maps with pinning "by name" live (default: /sys/fs/bpf)
  -v, --verbose          show verifier logs
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
  events: boolean;
  eventType: string | undefined;
  testRun: string | undefined;
  dataIn: string | undefined;
  repeat: number;
  pin: string | undefined;
  pinRoot: string;
  verbose: boolean;
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
        'no-events': { type: 'boolean', default: false },
        'event-type': { type: 'string' },
        'test-run': { type: 'string' },
        'data-in': { type: 'string' },
        repeat: { type: 'string' },
        pin: { type: 'string' },
        'pin-root': { type: 'string', default: '/sys/fs/bpf' },
        verbose: { type: 'boolean', short: 'v', default: false },
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
  if (v['test-run'] === undefined && (v['data-in'] !== undefined || v.repeat !== undefined)) {
    throw new UsageError(`${v['data-in'] !== undefined ? '--data-in' : '--repeat'} only applies to --test-run PROGRAM`);
  }
  if (v['test-run'] !== undefined && v.dump) throw new UsageError('--test-run and --dump are different modes: choose one');
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
    events: !v['no-events'],
    eventType: v['event-type'],
    testRun: v['test-run'],
    dataIn: v['data-in'],
    repeat: v.repeat === undefined ? 1 : number('--repeat', v.repeat, { min: 1, integer: true }),
    pin: v.pin,
    pinRoot: v['pin-root'],
    verbose: v.verbose,
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
