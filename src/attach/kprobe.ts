/**
 * kprobe/kretprobe (and libbpf's ksyscall/kretsyscall) programs. Two kernel interfaces:
 *  - the kprobe PMU (Linux 4.17+): perf_event_open on the PMU's type with the function name in config1; nothing
 *    global is created, and closing the fd removes the probe;
 *  - tracefs kprobe_events (bpf_load.c's way): append a probe definition, open the event it creates like a
 *    tracepoint, and at detach append its removal. Only our own events are ever removed: the file is never
 *    truncated (bpf_load.c's truncation wiped every kprobe on the system).
 */
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BpfLoadError, withContext } from '../base/errors.js';
import type { LoadedProgram } from '../load/index.js';
import { cString, KernelFeatureError, type PerfEventAttr } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, onceLink } from './link.js';
import { openPerfEventWithProgram, type PerfAttachment, type PerfLink } from './perf-event.js';
import { tracefsRoot, tracepointId } from './tracefs.js';
import { tracepointEventAttr } from './tracepoint.js';

export const KPROBE_PMU_DIR = '/sys/bus/event_source/devices/kprobe';
/** tracefs group of the kprobe events we create. */
export const KPROBE_EVENT_GROUP = 'bpf_load';
/** MAX_EVENT_NAME_LEN (64) in kernel/trace/trace_probe.h, including the NUL. */
const MAX_EVENT_NAME = 63;

/** The kernel facts kprobe attachment depends on; tests swap them for fakes. */
export interface KprobeEnvironment {
  /** The kprobe PMU's sysfs directory; when it does not exist, tracefs kprobe_events is used. */
  readonly pmuDir: string;
  /** Id of a tracefs event (`events/<group>/<event>/id`). */
  readonly eventId: (root: string, group: string, event: string) => number;
  /** Opens the perf event (pid -1, cpu 0) and runs the program on it. */
  readonly openEvent: (attr: PerfEventAttr, progFd: number) => PerfAttachment;
}

export const DEFAULT_KPROBE_ENVIRONMENT: KprobeEnvironment = {
  pmuDir: KPROBE_PMU_DIR,
  eventId: tracepointId,
  openEvent: (attr, progFd) => openPerfEventWithProgram({ attr, pid: -1, cpu: 0, progFd }),
};

/** Prefix of the syscall entry wrappers (`__x64_sys_nanosleep`) since Linux 4.17, per architecture. */
export function syscallWrapperPrefix(arch: string = process.arch): string {
  switch (arch) {
    case 'x64':
      return '__x64_';
    case 'arm64':
      return '__arm64_';
    default:
      return '';
  }
}

/**
 * Kernel symbols to probe for a program, in the order to try. `sys_*` names (and ksyscall targets) try the
 * architecture's wrapper first, as bpf_load.c did, then the plain name that kernels before 4.17 have.
 */
export function kprobeSymbols(program: LoadedProgram, arch: string = process.arch): string[] {
  const target = checkSafeName(program.spec.attachTarget, `${program.section}: kprobe function`);
  if (target.includes('/')) {
    throw new AttachError(withContext([program.section], `kprobe function ${JSON.stringify(target)}: must not contain "/"`));
  }
  const isSyscallSection = program.section.startsWith('ksyscall/') || program.section.startsWith('kretsyscall/');
  const symbol = isSyscallSection ? `sys_${target}` : target;
  const prefix = syscallWrapperPrefix(arch);
  return symbol.startsWith('sys_') && prefix !== '' ? [`${prefix}${symbol}`, symbol] : [symbol];
}

interface KprobePmu {
  readonly type: number;
  /** config bit that makes the probe a kretprobe (format/retprobe: `config:<bit>`). */
  readonly retprobeBit: number;
}

function readKprobePmu(dir: string): KprobePmu | undefined {
  if (!existsSync(dir)) return undefined;
  const read = (file: string): string => {
    try {
      return readFileSync(join(dir, file), 'utf8').trim();
    } catch (e) {
      throw new AttachError(`${join(dir, file)}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
    }
  };
  const typeText = read('type');
  const retprobeText = read(join('format', 'retprobe'));
  const bit = /^config:([0-9]+)$/.exec(retprobeText)?.[1];
  if (!/^[0-9]+$/.test(typeText) || bit === undefined || Number(bit) > 63) {
    throw new AttachError(`${dir}: unexpected kprobe PMU description (type ${JSON.stringify(typeText)}, retprobe ${JSON.stringify(retprobeText)})`);
  }
  return { type: Number(typeText), retprobeBit: Number(bit) };
}

let eventSequence = 0;

/** `p_<symbol>_<pid>_<n>`: unique per process and probe, so a kprobe and a kretprobe on one function coexist. */
function uniqueEventName(retprobe: boolean, symbol: string): string {
  const suffix = `_${process.pid}_${++eventSequence}`;
  const head = retprobe ? 'r_' : 'p_';
  const stem = symbol.replace(/[^A-Za-z0-9_]/g, '_').slice(0, MAX_EVENT_NAME - head.length - suffix.length);
  return `${head}${stem}${suffix}`;
}

/** One write(2) per line: the kernel parses each write as a whole command. O_APPEND and never O_CREAT/O_TRUNC. */
function appendLine(file: string, line: string): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND);
  } catch (e) {
    throw new AttachError(`${file}: cannot open for appending (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  try {
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    const written = writeSync(fd, bytes);
    if (written !== bytes.byteLength) throw new AttachError(`${file}: writing ${JSON.stringify(line)}: short write (${written} of ${bytes.byteLength} B)`);
  } catch (e) {
    if (e instanceof AttachError) throw e;
    throw new AttachError(`${file}: writing ${JSON.stringify(line)} failed (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  } finally {
    closeSync(fd);
  }
}

function noKprobeSupport(section: string): KernelFeatureError {
  return new KernelFeatureError('kprobe support', section, { message: 'this kernel has no kprobe support (no kprobe PMU, no kprobe_events)' });
}

interface ProbeAttachment {
  readonly fd: number;
  readonly symbol: string;
  detach(): void;
}

/**
 * `kprobe/<fn>`, `kretprobe/<fn>`, `ksyscall/<name>`, `kretsyscall/<name>`: through the kprobe PMU when the kernel
 * has it, else through tracefs kprobe_events. `environment` replaces kernel facts (tests).
 */
export function attachKprobe(program: LoadedProgram, options: AttachOptions, environment: Partial<KprobeEnvironment> = {}): PerfLink {
  const env: KprobeEnvironment = { ...DEFAULT_KPROBE_ENVIRONMENT, ...environment };
  const section = program.section;
  const kind = program.spec.attach;
  if (kind !== 'kprobe' && kind !== 'kretprobe') {
    throw new AttachError(withContext([section], `not a kprobe or kretprobe program (attach kind ${kind})`));
  }
  const retprobe = kind === 'kretprobe';
  // Every name is checked before anything is written anywhere.
  const symbols = kprobeSymbols(program);

  let attachOne: (symbol: string) => ProbeAttachment;
  const pmu = readKprobePmu(env.pmuDir);
  if (pmu !== undefined) {
    attachOne = (symbol) => attachWithPmu(pmu, symbol, retprobe, program, env);
  } else {
    const root = kprobeEventsRoot(options);
    if (root === undefined) throw noKprobeSupport(section);
    attachOne = (symbol) => attachWithKprobeEvents(root, symbol, retprobe, program, env);
  }

  const probe = firstThatAttaches(section, symbols, attachOne);
  return onceLink({
    kind,
    program: program.name,
    target: probe.symbol,
    fds: [probe.fd],
  }, () => {
    probe.detach();
  });
}

/** The tracefs root when it has kprobe_events, else undefined (kernel without CONFIG_KPROBE_EVENTS, or no tracefs). */
function kprobeEventsRoot(options: AttachOptions): string | undefined {
  let root: string;
  try {
    root = tracefsRoot(options);
  } catch (e) {
    if (e instanceof KernelFeatureError) return undefined;
    throw e;
  }
  return existsSync(join(root, 'kprobe_events')) ? root : undefined;
}

function firstThatAttaches(section: string, symbols: readonly string[], attachOne: (symbol: string) => ProbeAttachment): ProbeAttachment {
  const failures: Array<{ symbol: string; error: BpfLoadError }> = [];
  for (const symbol of symbols) {
    try {
      return attachOne(symbol);
    } catch (e) {
      if (!(e instanceof BpfLoadError)) throw e;
      failures.push({ symbol, error: e });
    }
  }
  const [only] = failures;
  if (failures.length === 1 && only !== undefined) {
    throw new AttachError(withContext([section, only.symbol], only.error.message), { cause: only.error });
  }
  throw new AttachError(
    withContext([section], failures.map((f) => `${f.symbol}: ${f.error.message}`).join('; ')),
    { cause: failures[failures.length - 1]?.error },
  );
}

function attachWithPmu(pmu: KprobePmu, symbol: string, retprobe: boolean, program: LoadedProgram, env: KprobeEnvironment): ProbeAttachment {
  const attr: PerfEventAttr = {
    type: pmu.type,
    config: retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n,
    config1: cString(symbol, 'kprobe function'),
    config2: 0, // offset into the function
  };
  const event = env.openEvent(attr, program.fd);
  return { fd: event.fd, symbol, detach: () => event.close() };
}

function attachWithKprobeEvents(
  root: string, symbol: string, retprobe: boolean, program: LoadedProgram, env: KprobeEnvironment,
): ProbeAttachment {
  const file = join(root, 'kprobe_events');
  const event = uniqueEventName(retprobe, symbol);
  const probe = `${KPROBE_EVENT_GROUP}/${event}`;
  // Defence in depth: everything in the line has been checked already, but a line must never carry a second command.
  const definition = `${retprobe ? 'r' : 'p'}:${probe} ${checkSafeName(symbol, 'kprobe function')}`;
  appendLine(file, definition);
  const remove = (): void => appendLine(file, `-:${probe}`);
  let opened: PerfAttachment;
  try {
    opened = env.openEvent(tracepointEventAttr(env.eventId(root, KPROBE_EVENT_GROUP, event)), program.fd);
  } catch (e) {
    try {
      remove();
    } catch {
      // The open failure is the error to report.
    }
    throw e;
  }
  return {
    fd: opened.fd,
    symbol,
    detach() {
      // The event must have no perf users left, or the kernel refuses to remove it (EBUSY).
      try {
        opened.close();
      } finally {
        remove();
      }
    },
  };
}
