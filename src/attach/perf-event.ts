/**
 * Programs that run on perf events: `perf_event` sections here (a sampling event on every CPU), and the shared step
 * that tracepoint and kprobe attachment end with (a program on one perf event fd).
 */
import { withContext } from '../base/errors.js';
import { attachTypeValue } from '../base/uapi.js';
import type { LoadedProgram } from '../load/index.js';
import {
  Errno, Fd, linkCreate, onlineCpus, PerfAttrFlag, perfEventEnable, perfEventOpen, perfEventSetBpf,
  PerfSwConfig, PerfType, SysError, type PerfEventAttr,
} from '../sys/index.js';
import { AttachError, type AttachOptions, type Link, onceLink } from './link.js';

/** A link whose program runs on perf events; `fds` are the perf event fds (bpf_load.c's event_fd). */
export interface PerfLink extends Link {
  readonly fds: readonly number[];
}

/** One perf event with a program on it. close() detaches the program and closes the event. */
export interface PerfAttachment {
  /** The perf event fd. */
  readonly fd: number;
  /** BPF link fd when the program hangs off a link, undefined for PERF_EVENT_IOC_SET_BPF. */
  readonly linkFd: number | undefined;
  close(): void;
}

/**
 * 'auto': a BPF link (BPF_LINK_CREATE, BPF_PERF_EVENT; Linux 5.15+) when the kernel offers it, else SET_BPF.
 * 'ioctl' forces PERF_EVENT_IOC_SET_BPF, bpf_load.c's way.
 */
export type PerfAttachMode = 'auto' | 'ioctl';

export interface PerfEventRequest {
  readonly attr: PerfEventAttr;
  readonly pid: number;
  readonly cpu: number;
  readonly progFd: number;
  readonly mode?: PerfAttachMode;
}

/**
 * Errors with which kernels without perf links refuse BPF_LINK_CREATE(BPF_PERF_EVENT): no LINK_CREATE command
 * (before 5.7) or no BPF_PERF_EVENT attach type (before 5.15) are both EINVAL.
 */
const NO_PERF_LINK: readonly number[] = [Errno.EINVAL, Errno.EOPNOTSUPP, Errno.ENOTSUPP];

/**
 * perf_event_open (disabled), the program on it, then PERF_EVENT_IOC_ENABLE, so the program sees every event from
 * the first one. On failure nothing stays open.
 */
export function openPerfEventWithProgram(req: PerfEventRequest): PerfAttachment {
  const event = new Fd(perfEventOpen({ ...req.attr, flags: (req.attr.flags ?? 0n) | PerfAttrFlag.DISABLED }, req.pid, req.cpu), `perf event (cpu ${req.cpu}, pid ${req.pid})`);
  let link: Fd | undefined;
  try {
    link = runProgramOnPerfEvent(event, req.progFd, req.mode ?? 'auto');
    perfEventEnable(event.value);
  } catch (e) {
    link?.closeQuietly();
    event.closeQuietly();
    throw e;
  }
  return {
    fd: event.value,
    linkFd: link?.value,
    close() {
      // The link first: closing it detaches the program; closing the event then frees it.
      try {
        link?.close();
      } finally {
        event.close();
      }
    },
  };
}

/** The link's Fd, or undefined when the program was attached with SET_BPF (which lives as long as the event fd). */
function runProgramOnPerfEvent(event: Fd, progFd: number, mode: PerfAttachMode): Fd | undefined {
  const perfFd = event.value;
  if (mode === 'auto') {
    try {
      return new Fd(linkCreate({ progFd, targetFd: perfFd, attachType: attachTypeValue('perf_event') }), `perf link on ${event.what}`);
    } catch (e) {
      if (!(e instanceof SysError) || !NO_PERF_LINK.includes(e.errno)) throw e;
    }
  }
  perfEventSetBpf(perfFd, progFd);
  return undefined;
}

/** Closes every attachment, then throws the first failure. */
export function closeAll(attachments: readonly PerfAttachment[]): void {
  let failure: unknown;
  for (const a of attachments) {
    try {
      a.close();
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
}

export const DEFAULT_SAMPLE_FREQ = 99;

export { onlineCpus } from '../sys/index.js';

/**
 * `perf_event` sections: a software cpu-clock event on every online CPU, sampling options.sampleFreq times per
 * second (default 99, as trace_event_user.c), every CPU's event running the program.
 */
export function attachPerfEvent(program: LoadedProgram, options: AttachOptions): PerfLink {
  const freq = options.sampleFreq ?? DEFAULT_SAMPLE_FREQ;
  if (!Number.isSafeInteger(freq) || freq <= 0) {
    throw new AttachError(withContext([program.section], `sample frequency must be a positive integer, got ${freq}`));
  }
  const cpus = onlineCpus();
  const attr: PerfEventAttr = {
    type: PerfType.SOFTWARE, config: PerfSwConfig.CPU_CLOCK, samplePeriod: freq, flags: PerfAttrFlag.FREQ,
  };
  const attachments: PerfAttachment[] = [];
  try {
    for (const cpu of cpus) attachments.push(openPerfEventWithProgram({ attr, pid: -1, cpu, progFd: program.fd }));
  } catch (e) {
    closeAll(attachments);
    throw e;
  }
  return onceLink({
    kind: 'perf_event',
    program: program.name,
    target: `cpu-clock at ${freq} Hz on CPUs ${cpus.join(',')}`,
    fds: attachments.map((a) => a.fd),
  }, () => {
    closeAll(attachments);
  });
}
