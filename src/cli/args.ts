import { parseArgs } from 'node:util';
import { ATTACHABLE_KINDS, isAttachableKind } from '../attach/kinds.js';
import { USER_PROGRAM_TYPES } from '../object/section-table.js';

/** Exit status, one rule for every mode: see the end of USAGE. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * Verbs: `bpf-load <verb> …`, each handled by its own module src/cli/<verb>.ts (dispatched in main.ts), with its
 * usage and help line for --help. A file named like a verb is reached as `./<name>`.
 */
export const VERBS = {
  prog: ['[list] | dump ID|PINNED', 'programs in the kernel, or one program\'s instructions as the kernel runs them'],
  map: ['[list] | dump ID|PINNED', 'maps in the kernel, or one map\'s entries (BTF-decoded, per CPU)'],
  link: ['[list]', 'BPF links in the kernel: program and attach point'],
  detach: ['DIR', 'undo `--pin DIR --keep-attached`: detach and unpin what that run pinned'],
  gen: ['FILE [--out PATH] [--name NAME] [--embed] [--event-type MAP=TYPE]', 'write a typed TypeScript skeleton of FILE (maps, globals, programs)'],
} as const satisfies Record<string, readonly [usage: string, help: string]>;
export type Verb = keyof typeof VERBS;

/**
 * What a command line asks for: load a FILE (`load`), inspect one (`dump`), a classic filter (`filter`), run one
 * program of a FILE with BPF_PROG_TEST_RUN (`test-run`), or a verb.
 */
export type Mode = 'load' | 'dump' | 'filter' | 'test-run' | Verb;

interface FlagSpec {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  /** Repeatable: the values come as a list (a boolean's list length counts it, as in -vv). */
  readonly multiple?: boolean;
  /** The value's name in --help (string flags). */
  readonly value?: string;
  /** The modes the flag applies to; anywhere else it is a usage error naming the flag. */
  readonly modes: readonly Mode[] | 'all';
  /** --help text; a '\n' continues on the next line, aligned. */
  readonly help: string;
}

const LOAD = ['load'] as const satisfies readonly Mode[];

/**
 * Every flag, once: parsing, --help and the per-mode check come from this table. Adding a flag is a line here, a
 * field in CliOptions and a line in parseCli.
 */
export const FLAGS = {
  dump: { type: 'boolean', modes: ['dump', 'filter'], help: 'inspect the object (or the --filter) instead of loading it' },
  helpers: { type: 'boolean', modes: ['dump'], help: 'name helper calls as bpftool does (call bpf_map_lookup_elem#1)' },
  raw: { type: 'boolean', modes: ['dump'], help: 'show each instruction\'s bytes beside it' },
  json: { type: 'boolean', modes: 'all', help: 'machine-readable output (one document for --dump; a report then one line per round)' },
  iface: { type: 'string', short: 'i', value: 'NAME', modes: ['load', 'filter'], help: 'interface for socket, XDP and tc programs (default: lo)' },
  interval: { type: 'string', value: 'SEC', modes: LOAD, help: 'seconds between map reports (default: 1)' },
  count: { type: 'string', short: 'c', value: 'N', modes: ['load', 'filter'], help: 'stop after N reports (0: load, report, exit); --filter: after N packets' },
  'per-cpu': { type: 'boolean', modes: LOAD, help: 'show per-CPU map values separately instead of summed' },
  'no-attach': { type: 'boolean', modes: LOAD, help: 'load programs and maps without attaching anything' },
  skip: {
    type: 'string', multiple: true, value: 'KIND', modes: LOAD,
    help: `do not attach programs of this kind (repeatable):\n${ATTACHABLE_KINDS.join(', ')}`,
  },
  cgroup: { type: 'string', value: 'PATH', modes: LOAD, help: 'cgroup v2 directory for cgroup programs (default: the cgroup2 mount)' },
  'xdp-mode': { type: 'string', value: 'MODE', modes: LOAD, help: 'skb (default), drv or hw' },
  force: { type: 'boolean', modes: LOAD, help: 'replace an XDP program someone attached through netlink (not one a BPF link holds)' },
  'sample-freq': { type: 'string', value: 'HZ', modes: LOAD, help: 'perf_event sampling frequency (default: 99)' },
  'trace-pipe': { type: 'boolean', modes: LOAD, help: 'stream trace_pipe lines beside the live maps' },
  hist: { type: 'string', multiple: true, value: 'MAP', modes: LOAD, help: 'draw MAP as a log2 histogram: its keys are slots, its values counts (repeatable)' },
  rate: { type: 'boolean', modes: LOAD, help: 'show each counter\'s change per second beside it' },
  'all-maps': { type: 'boolean', modes: LOAD, help: 'also watch the compiler\'s constant maps (.rodata.str*, .rodata.cst*: string literals)' },
  'no-events': { type: 'boolean', modes: LOAD, help: 'do not read ring buffers and perf event arrays (by default each record is printed)' },
  'test-run': { type: 'string', value: 'PROG', modes: ['test-run'], help: 'load without attaching, run PROG with BPF_PROG_TEST_RUN, print the result, exit' },
  'data-in': { type: 'string', value: 'FILE', modes: ['test-run'], help: '--test-run: the packet to run on (default: 64 zero bytes for packet programs)' },
  repeat: { type: 'string', value: 'N', modes: ['test-run'], help: '--test-run: run N times; the duration is the kernel\'s mean per run' },
  pin: { type: 'string', value: 'DIR', modes: LOAD, help: 'pin programs and maps under DIR (a bpffs directory) so they outlive this process' },
  'keep-attached': { type: 'boolean', modes: LOAD, help: 'with --pin: also pin the links, then exit leaving everything attached (undo: bpf-load detach DIR)' },
  'pin-root': {
    type: 'string', value: 'DIR', modes: LOAD,
    help: 'where pinned maps live (default: /sys/fs/bpf): by name at DIR/<map>, iproute2\'s namespaces at\nDIR/tc/globals/<map> and DIR/tc/<SHA-1 of FILE>/<map>',
  },
  'tc-mode': {
    type: 'string', value: 'MODE', modes: LOAD,
    help: 'tc programs: auto (default: tcx links where the kernel has them), tcx, or classic\n(a clsact qdisc and a cls_bpf filter, as "tc filter add … bpf da")',
  },
  type: {
    type: 'string', multiple: true, value: '[SECTION=]TYPE', modes: ['load', 'dump'],
    help: 'program type of every section whose name names none, or of one section (repeatable):\nsched_cls, xdp, socket_filter, lwt_in … or tc, xdp, socket …',
  },
  'max-entries': { type: 'string', multiple: true, value: 'NAME=N', modes: LOAD, help: 'create map NAME with N entries (repeatable; for maps declared with 0)' },
  program: { type: 'string', multiple: true, value: 'NAME', modes: LOAD, help: 'load only this program, the code it calls and the maps it uses (repeatable)' },
  'keep-going': { type: 'boolean', modes: LOAD, help: 'load and attach every program the kernel accepts; report each refusal (exit 1)' },
  verbose: { type: 'boolean', short: 'v', multiple: true, modes: LOAD, help: 'show verifier logs' },
  out: { type: 'string', short: 'o', value: 'PATH', modes: ['gen'], help: 'gen: write the module to PATH (default: standard output)' },
  name: { type: 'string', value: 'NAME', modes: ['gen'], help: "gen: base of the skeleton's class name (default: from FILE's name)" },
  embed: { type: 'boolean', modes: ['gen'], help: 'gen: embed the object in the module instead of reading FILE at open()' },
  'event-type': {
    type: 'string', multiple: true, value: 'MAP=TYPE', modes: ['load', 'gen'],
    help: 'records of ring buffer/perf event array MAP are the BTF type TYPE (repeatable; default:\nstruct event); loading also takes a bare TYPE for every event map',
  },
  filter: {
    type: 'string', value: 'TEXT', modes: ['filter'],
    help: "classic filter: a pcap-filter expression (compiled by the system's libpcap), tcpdump -ddd\noutput, its comma form (iptables/tc bytecode) or tcpdump -dd's C array",
  },
  'filter-file': { type: 'string', value: 'F', modes: ['filter'], help: 'the same, read from F (raw struct sock_filter bytes too)' },
  pcap: {
    type: 'string', value: 'CAPTURE', modes: ['filter', 'test-run'],
    help: 'run the filter over a pcap/pcapng file: one line per matching packet, then a count;\n--test-run: every packet through PROG, with its return value, then the count per verdict',
  },
  write: { type: 'string', value: 'OUT', modes: ['filter'], help: '--pcap: write the matching packets to OUT as a pcap capture (as tcpdump -w does) instead of a line each' },
  ebpf: { type: 'boolean', modes: ['filter'], help: '--dump --filter: also show the eBPF translation' },
  lock: { type: 'boolean', modes: ['filter'], help: 'attach the filter with SO_LOCK_FILTER' },
  'link-type': { type: 'string', value: 'DLT', modes: ['filter'], help: "link type an expression is compiled for (default: the capture's, else EN10MB)" },
  engine: { type: 'string', value: 'js|kernel', modes: ['filter'], help: '--pcap: compiled JavaScript (default) or one BPF_PROG_TEST_RUN per packet' },
  help: { type: 'boolean', short: 'h', modes: 'all', help: 'show this help' },
  version: { type: 'boolean', short: 'V', modes: 'all', help: 'show the version' },
} as const satisfies Record<string, FlagSpec>;
type FlagName = keyof typeof FLAGS;

export interface CliOptions {
  mode: Mode;
  /** load/dump: the object file. */
  file: string | undefined;
  /** Verbs: the words after the verb (`prog dump 12` → ['dump', '12']). */
  args: string[];
  json: boolean;
  helpers: boolean;
  raw: boolean;
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
  allMaps: boolean;
  /** Ring buffer and perf event array records in the live view (--no-events turns them off). */
  events: boolean;
  /** --event-type when loading: one BTF type for every event map, or a type per map name. */
  eventType: string | Record<string, string> | undefined;
  /** --test-run PROG [--data-in FILE] [--repeat N]. */
  testRun: string | undefined;
  dataIn: string | undefined;
  repeat: number;
  hist: string[];
  rate: boolean;
  pin: string | undefined;
  pinRoot: string;
  /** --keep-attached: pin links too and exit, leaving everything attached. */
  keepAttached: boolean;
  /** -v: 1, -vv: 2. */
  verbose: number;
  /** gen: --out, --name, --embed, --event-type (map name → type name). */
  out: string | undefined;
  name: string | undefined;
  embed: boolean;
  eventTypes: Record<string, string>;
  /** --dump given (a FILE's dump, or a classic filter's with --filter). */
  dump: boolean;
  /** Classic filter mode (src/cli/filter.ts). */
  filter: string | undefined;
  filterFile: string | undefined;
  pcap: string | undefined;
  /** --write OUT: matching packets saved as a pcap file. */
  write: string | undefined;
  ebpf: boolean;
  lock: boolean;
  linkType: string | undefined;
  engine: 'js' | 'kernel';
  /** --type: the default type and per-section types (parseObject's programTypes). */
  programTypes: { default?: string; sections: Record<string, string> };
  /** --max-entries NAME=N. */
  maxEntries: Record<string, number>;
  /** --program NAME (undefined: every program). */
  programs: string[] | undefined;
  keepGoing: boolean;
  tcMode: 'auto' | 'tcx' | 'classic';
  help: boolean;
  version: boolean;
}

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}


export function parseCli(argv: readonly string[]): CliOptions {
  const { values, positionals } = parseFlags(argv);
  const verb = positionals[0] !== undefined && Object.hasOwn(VERBS, positionals[0]) ? positionals[0] as Verb : undefined;
  const classic = values.filter !== undefined || values['filter-file'] !== undefined;
  const mode: Mode = verb ?? (classic ? 'filter' : values['test-run'] !== undefined ? 'test-run' : values.dump === undefined ? 'load' : 'dump');
  checkFlagsApply(values, mode);

  const text = (name: FlagName) => values[name] as string | undefined;
  const flag = (name: FlagName) => values[name] !== undefined;
  const list = (name: FlagName) => (values[name] ?? []) as string[];
  if (verb === undefined && positionals.length > 1) {
    throw new UsageError(`expected one object file, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  const xdpMode = text('xdp-mode') ?? 'skb';
  if (xdpMode !== 'skb' && xdpMode !== 'drv' && xdpMode !== 'hw') throw new UsageError(`--xdp-mode must be skb, drv or hw, not "${xdpMode}"`);
  const skip = list('skip');
  for (const k of skip) if (!isAttachableKind(k)) throw new UsageError(`--skip ${k}: unknown kind (one of ${ATTACHABLE_KINDS.join(', ')})`);
  const count = text('count');
  const engine = text('engine') ?? 'js';
  if (engine !== 'js' && engine !== 'kernel') throw new UsageError(`--engine must be js or kernel, not "${engine}"`);
  if (flag('filter') && flag('filter-file')) throw new UsageError('--filter and --filter-file: give one filter');
  if (flag('write') && (!flag('pcap') || flag('dump'))) throw new UsageError('--write saves the packets a filter matches in a capture: it needs --pcap CAPTURE (and no --dump)');
  if (mode === 'test-run' && flag('pcap') && (flag('data-in') || flag('repeat'))) {
    throw new UsageError(`--pcap and --${flag('data-in') ? 'data-in' : 'repeat'}: --pcap runs the program once on each packet of the capture`);
  }
  if (flag('keep-attached') && !flag('pin')) throw new UsageError('--keep-attached needs --pin DIR: the pins are what keeps the programs attached');
  if (flag('keep-attached') && flag('no-attach')) throw new UsageError('--keep-attached and --no-attach contradict each other');
  return {
    mode,
    file: verb === undefined ? positionals[0] : undefined,
    args: verb === undefined ? [] : positionals.slice(1),
    json: flag('json'),
    helpers: flag('helpers'),
    raw: flag('raw'),
    iface: text('iface') ?? 'lo',
    interval: number('--interval', text('interval') ?? '1', { min: 0.01 }),
    count: count === undefined ? undefined : number('--count', count, { min: 0, integer: true }),
    perCpu: flag('per-cpu'),
    attach: !flag('no-attach'),
    skip,
    cgroup: text('cgroup'),
    xdpMode,
    force: flag('force'),
    sampleFreq: number('--sample-freq', text('sample-freq') ?? '99', { min: 1, integer: true }),
    tracePipe: flag('trace-pipe'),
    allMaps: flag('all-maps'),
    events: !flag('no-events'),
    eventType: loadEventType(mode, list('event-type')),
    testRun: text('test-run'),
    dataIn: text('data-in'),
    repeat: number('--repeat', text('repeat') ?? '1', { min: 1, integer: true }),
    hist: list('hist'),
    rate: flag('rate'),
    pin: text('pin'),
    pinRoot: text('pin-root') ?? '/sys/fs/bpf',
    keepAttached: flag('keep-attached'),
    verbose: (values.verbose as boolean[] | undefined)?.length ?? 0,
    out: text('out'),
    name: text('name'),
    embed: flag('embed'),
    eventTypes: mode === 'gen' ? eventTypes(list('event-type')) : {},
    dump: flag('dump'),
    filter: text('filter'),
    filterFile: text('filter-file'),
    pcap: text('pcap'),
    write: text('write'),
    ebpf: flag('ebpf'),
    lock: flag('lock'),
    linkType: text('link-type'),
    engine,
    programTypes: programTypes(list('type')),
    maxEntries: maxEntries(list('max-entries')),
    programs: values.program === undefined ? undefined : list('program'),
    keepGoing: flag('keep-going'),
    tcMode: tcMode(text('tc-mode') ?? 'auto'),
    help: flag('help'),
    version: flag('version'),
  };
}

type FlagValues = Partial<Record<FlagName, string | boolean | Array<string | boolean>>>;

/**
 * util.parseArgs over the table, with getopt's rule for values (the word after a string flag is its value even when
 * it starts with '-', so `-c -1` reaches the range check) and its errors made one line naming the flag.
 */
function parseFlags(argv: readonly string[]): { values: FlagValues; positionals: string[] } {
  const byShort = new Map(Object.entries(FLAGS).flatMap(([name, f]) => ('short' in f ? [[`-${f.short}`, name]] : [])));
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : byShort.get(arg);
    const spec = name !== undefined && Object.hasOwn(FLAGS, name) ? FLAGS[name as FlagName] : undefined;
    if (spec?.type !== 'string') {
      args.push(arg);
      continue;
    }
    if (i + 1 >= argv.length) throw new UsageError(`--${name} expects a value (${spec.value})`);
    args.push(`--${name}=${argv[++i]}`);
  }
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, f]) => [name, {
    type: f.type, ...('short' in f ? { short: f.short } : {}), ...('multiple' in f ? { multiple: f.multiple } : {}),
  }]));
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: FlagValues; positionals: string[] };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const option = /'([^']+)'/.exec((e as Error).message)?.[1]?.split(/[ ,]/).at(-1) ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option '${option}'`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${option} takes no value`);
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
}

/** Flags that do not apply to the mode are usage errors, not silently ignored. */
function checkFlagsApply(values: FlagValues, mode: Mode): void {
  for (const name of Object.keys(values) as FlagName[]) {
    const modes: readonly Mode[] | 'all' = FLAGS[name].modes;
    if (modes === 'all' || modes.includes(mode)) continue;
    const hint = mode === 'load' || mode === 'dump' || mode === 'filter' || mode === 'test-run' ? '' : `; a file named ${mode} is ./${mode}`;
    throw new UsageError(`--${name} does not apply to ${modeLabel(mode)} (only to ${modes.map(modeLabel).join(', ')})${hint}`);
  }
}

function modeLabel(mode: Mode): string {
  if (mode === 'load') return 'loading a FILE';
  if (mode === 'dump') return '--dump';
  if (mode === 'filter') return '--filter';
  if (mode === 'test-run') return '--test-run';
  return `bpf-load ${mode}`;
}

/**
 * Loading: `--event-type TYPE` decodes the records of every event map as TYPE; `MAP=TYPE` items name one map each
 * (the form gen takes). Returned as the one TYPE, or as MAP=TYPE pairs for the event stream to resolve per map.
 */
function loadEventType(mode: Mode, items: readonly string[]): string | Record<string, string> | undefined {
  if (mode !== 'load' || items.length === 0) return undefined;
  if (items.length === 1 && !items[0]!.includes('=')) return items[0];
  return eventTypes(items);
}

/** --event-type MAP=TYPE, repeatable. */
function eventTypes(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const m = /^([^=]+)=([A-Za-z_][A-Za-z0-9_]*)$/.exec(item);
    if (m === null) throw new UsageError(`--event-type expects MAP=TYPE (a map name, a BTF type name), not "${item}"`);
    Object.defineProperty(out, m[1]!, { value: m[2]!, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function number(flag: string, text: string, rule: { min: number; integer?: boolean }): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < rule.min || (rule.integer === true && !Number.isInteger(n))) {
    throw new UsageError(`${flag} expects ${rule.integer === true ? 'a whole number' : 'a number'} ≥ ${rule.min}, not "${text}"`);
  }
  return n;
}

/** `--type TYPE` (one default) and `--type SECTION=TYPE`; the section is what comes before the last `=`. */
function programTypes(values: readonly string[]): CliOptions['programTypes'] {
  const out: CliOptions['programTypes'] = { sections: {} };
  for (const value of values) {
    const eq = value.lastIndexOf('=');
    const section = eq < 0 ? undefined : value.slice(0, eq);
    const type = eq < 0 ? value : value.slice(eq + 1);
    if (!USER_PROGRAM_TYPES.includes(type)) {
      throw new UsageError(`--type ${value}: unknown program type "${type}" (one of ${USER_PROGRAM_TYPES.join(', ')})`);
    }
    if (section === undefined) {
      if (out.default !== undefined && out.default !== type) throw new UsageError(`--type ${type}: the default type is already ${out.default}`);
      out.default = type;
    } else if (section === '') {
      throw new UsageError(`--type ${value}: empty section name`);
    } else {
      out.sections[section] = type;
    }
  }
  return out;
}

/** `--max-entries NAME=N`, N a whole number from 1 to 2^32-1. */
function maxEntries(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) {
    const eq = value.lastIndexOf('=');
    if (eq <= 0) throw new UsageError(`--max-entries ${value}: expected NAME=N`);
    const n = number(`--max-entries ${value.slice(0, eq)}`, value.slice(eq + 1), { min: 1, integer: true });
    if (n > 0xffffffff) throw new UsageError(`--max-entries ${value}: at most ${0xffffffff} (a u32)`);
    out[value.slice(0, eq)] = n;
  }
  return out;
}

function tcMode(value: string): CliOptions['tcMode'] {
  if (value !== 'auto' && value !== 'tcx' && value !== 'classic') throw new UsageError(`--tc-mode must be auto, tcx or classic, not "${value}"`);
  return value;
}

/** --help: the usage lines, the verbs, then the flag table. */
export function usage(): string {
  const flagColumn = (name: string, f: FlagSpec) =>
    `${'short' in f && f.short !== undefined ? `-${f.short}, ` : '    '}--${name}${f.value === undefined ? '' : ` ${f.value}`}`;
  const width = Math.max(...Object.entries(FLAGS).map(([name, f]) => flagColumn(name, f).length)) + 2;
  const flags = Object.entries(FLAGS).map(([name, f]: [string, FlagSpec]) =>
    `  ${flagColumn(name, f).padEnd(width)}${f.help.split('\n').join(`\n  ${' '.repeat(width)}`)}`);
  const verbLines = Object.entries(VERBS).map(([verb, [args, help]]) => [`bpf-load ${verb} ${args}`, help] as const);
  const verbWidth = Math.max(0, ...verbLines.map(([u]) => u.length)) + 2;
  const verbs = verbLines.map(([u, help]) => `  ${u.padEnd(verbWidth)}${help}`);
  return [
    'Usage:',
    '  bpf-load [options] FILE        load every program and map of FILE, attach each program where its section says,',
    '                                 show the maps live until Ctrl-C, then detach everything',
    '  bpf-load --dump [--json] FILE  inspect FILE without root or a kernel: sections, maps, programs, relocations,',
    '                                 disassembly',
    '  bpf-load FILE --test-run PROG [--data-in FILE] [--repeat N]',
    '                                 run one program of FILE with BPF_PROG_TEST_RUN on a packet, print what it did',
    '  bpf-load FILE --test-run PROG --pcap CAPTURE',
    '                                 run a packet program of FILE over every packet of a capture',
    '  bpf-load --filter EXPR [--dump | --pcap CAPTURE [--write OUT] | -i IFACE]',
    '                                 a classic (tcpdump) filter: show it, run it over a capture, or attach it to a',
    '                                 packet socket and print the packets it passes',
    ...verbs,
    '',
    'Options:',
    ...flags,
    '',
    'Exit status: 0 when everything requested was loaded and attached, 1 when anything failed to load or attach',
    '(also when the others keep running), 2 on a usage error.',
  ].join('\n');
}
