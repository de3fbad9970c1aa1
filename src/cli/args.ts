import { parseArgs } from 'node:util';
import { ATTACHABLE_KINDS, isAttachableKind } from '../attach/kinds.js';

export const USAGE = `Usage:
  bpf-load [options] FILE        load every program and map of FILE, attach each program where its section says,
                                 show the maps live until Ctrl-C, then detach everything
  bpf-load --dump [--json] FILE  inspect FILE without root or a kernel: sections, maps, programs, relocations,
                                 disassembly
  bpf-load detach DIR            undo \`--pin DIR --keep-attached\`: detach and unpin what that run pinned

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
      --keep-attached    with --pin: also pin the links, then exit leaving everything attached
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
  pin: string | undefined;
  pinRoot: string;
  keepAttached: boolean;
  verbose: boolean;
  help: boolean;
  version: boolean;
}

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}


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
        'keep-attached': { type: 'boolean', default: false },
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
  if (v['keep-attached'] && v.pin === undefined) throw new UsageError('--keep-attached needs --pin DIR: the pins are what keeps the programs attached');
  if (v['keep-attached'] && v['no-attach']) throw new UsageError('--keep-attached and --no-attach contradict each other');
  for (const k of v.skip) if (!isAttachableKind(k)) throw new UsageError(`--skip ${k}: unknown kind (one of ${ATTACHABLE_KINDS.join(', ')})`);
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
    keepAttached: v['keep-attached'],
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
