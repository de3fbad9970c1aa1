/**
 * kprobe/kretprobe (and libbpf's ksyscall/kretsyscall) programs. Two kernel interfaces:
 *  - the kprobe PMU (Linux 4.17+): perf_event_open on the PMU's type with the function name in config1; nothing
 *    global is created, and closing the fd removes the probe;
 *  - tracefs kprobe_events (bpf_load.c's way): append a probe definition, open the event it creates like a
 *    tracepoint, and at detach append its removal. Only our own events are ever removed: the file is never
 *    truncated (bpf_load.c's truncation wiped every kprobe on the system).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BpfLoadError, withContext } from '../base/errors.js';
import type { LoadedProgram } from '../load/index.js';
import { cString, KernelFeatureError, type PerfEventAttr } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, onceLink } from './link.js';
import { openPerfEventWithProgram, type PerfAttachment, type PerfLink } from './perf-event.js';
import { attachWithProbeEvents, readProbePmu, type ProbePmu } from './probe.js';
import { tracefsRoot, tracepointId } from './tracefs.js';

export const KPROBE_PMU_DIR = '/sys/bus/event_source/devices/kprobe';
/** tracefs group of the kprobe events we create. */
export const KPROBE_EVENT_GROUP = 'bpf_load';

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
  const pmu = readProbePmu(env.pmuDir, 'kprobe');
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

function attachWithPmu(pmu: ProbePmu, symbol: string, retprobe: boolean, program: LoadedProgram, env: KprobeEnvironment): ProbeAttachment {
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
  const probe = attachWithProbeEvents({ root, eventsFile: 'kprobe_events', group: KPROBE_EVENT_GROUP, target: checkSafeName(symbol, 'kprobe function'), name: symbol, retprobe, progFd: program.fd, env });
  return { fd: probe.fd, symbol, detach: probe.detach };
}
