/**
 * The mechanics kprobes and uprobes share. Two kernel interfaces:
 *  - a probe PMU (/sys/bus/event_source/devices/kprobe or uprobe): perf_event_open on the PMU's type, the target in
 *    config1/config2, the return-probe bit from the PMU's format/retprobe; closing the fd removes the probe;
 *  - tracefs kprobe_events / uprobe_events: append a probe definition, open the event it creates like a tracepoint,
 *    and at detach append its removal. Only our own events are ever removed: the file is never truncated.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { PerfEventAttr } from '../sys/index.js';
import { AttachError } from './link.js';
import type { PerfAttachment } from './perf-event.js';
import { tracepointEventAttr } from './tracepoint.js';

/** MAX_EVENT_NAME_LEN (64) in kernel/trace/trace_probe.h, including the NUL. */
const MAX_EVENT_NAME = 63;

export interface ProbePmu {
  readonly type: number;
  /** config bit that makes the probe a return probe (format/retprobe: `config:<bit>`). */
  readonly retprobeBit: number;
}

/** The PMU's perf type and retprobe bit, or undefined when this kernel has no such PMU. */
export function readProbePmu(dir: string, what: 'kprobe' | 'uprobe'): ProbePmu | undefined {
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
    throw new AttachError(`${dir}: unexpected ${what} PMU description (type ${JSON.stringify(typeText)}, retprobe ${JSON.stringify(retprobeText)})`);
  }
  return { type: Number(typeText), retprobeBit: Number(bit) };
}

let eventSequence = 0;

/** `p_<name>_<pid>_<n>`: unique per process and probe, so a probe and a return probe on one function coexist. */
function uniqueEventName(retprobe: boolean, name: string): string {
  const suffix = `_${process.pid}_${++eventSequence}`;
  const head = retprobe ? 'r_' : 'p_';
  const stem = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, MAX_EVENT_NAME - head.length - suffix.length);
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

export interface ProbeEventRequest {
  readonly root: string;
  readonly eventsFile: 'kprobe_events' | 'uprobe_events';
  readonly group: string;
  /** What follows the event name in the definition: `do_nanosleep`, `/usr/bin/bash:0x8c20`. Checked by the caller. */
  readonly target: string;
  /** Readable stem of the event name. */
  readonly name: string;
  readonly retprobe: boolean;
  readonly progFd: number;
  readonly env: {
    readonly eventId: (root: string, group: string, event: string) => number;
    readonly openEvent: (attr: PerfEventAttr, progFd: number) => PerfAttachment;
  };
}

/** A tracefs probe event of our own with the program on it; detach() closes the event, then removes the definition. */
export function attachWithProbeEvents(req: ProbeEventRequest): { fd: number; detach(): void } {
  const file = join(req.root, req.eventsFile);
  const event = uniqueEventName(req.retprobe, req.name);
  const probe = `${req.group}/${event}`;
  // Defence in depth: the caller checked the target, but a line must never carry a second command.
  if (/[\s\0]/.test(req.target)) throw new AttachError(`${file}: probe target ${JSON.stringify(req.target)} contains white space or control characters`);
  appendLine(file, `${req.retprobe ? 'r' : 'p'}:${probe} ${req.target}`);
  const remove = (): void => appendLine(file, `-:${probe}`);
  let opened: PerfAttachment;
  try {
    opened = req.env.openEvent(tracepointEventAttr(req.env.eventId(req.root, req.group, event)), req.progFd);
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
