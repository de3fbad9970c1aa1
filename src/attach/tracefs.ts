/**
 * tracefs: where tracepoint ids, kprobe_events and trace_pipe live. Mounted at /sys/kernel/tracing when missing
 * (mount(2), never a shell); older systems only have it under debugfs.
 */
import { closeSync, constants, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { KernelFeatureError, MountFlags, mount, mountedFsType, SysError } from '../sys/index.js';
import { AttachError, checkSafeName } from './link.js';

export const TRACEFS_MOUNT = '/sys/kernel/tracing';
/** debugfs automounts tracefs here; the only place before Linux 4.1. */
export const DEBUGFS_TRACING = '/sys/kernel/debug/tracing';

export interface TracefsOptions {
  /** Use this directory as the tracefs root (tests point it at a fake one). */
  tracefs?: string;
}

export interface TracePipeOptions extends TracefsOptions {
  /** Ends the iteration (quietly) within one poll interval. */
  signal?: AbortSignal;
}

/**
 * The tracefs root: options.tracefs when given; else /sys/kernel/tracing, mounting tracefs there when nothing is
 * mounted; else /sys/kernel/debug/tracing.
 */
export function tracefsRoot(options: TracefsOptions = {}): string {
  if (options.tracefs !== undefined) return options.tracefs;
  if (mountedFsType(TRACEFS_MOUNT) === 'tracefs') return TRACEFS_MOUNT;
  let mountFailure = `${TRACEFS_MOUNT} does not exist`;
  if (existsSync(TRACEFS_MOUNT)) {
    try {
      mount('tracefs', TRACEFS_MOUNT, 'tracefs', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC | MountFlags.RELATIME);
      return TRACEFS_MOUNT;
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      // Someone else may have mounted it between our look and our mount.
      if (mountedFsType(TRACEFS_MOUNT) === 'tracefs') return TRACEFS_MOUNT;
      mountFailure = e.message;
    }
  }
  if (existsSync(join(DEBUGFS_TRACING, 'events'))) return DEBUGFS_TRACING;
  throw new KernelFeatureError('tracefs', `tracefs (${mountFailure}; no ${DEBUGFS_TRACING}/events either)`);
}

/** The id of tracepoint `<category>/<name>`: tracefs `events/<category>/<name>/id`. */
export function tracepointId(root: string, category: string, name: string): number {
  for (const [part, what] of [[category, 'tracepoint category'], [name, 'tracepoint name']] as const) {
    checkSafeName(part, what);
    if (part.includes('/')) throw new AttachError(`${what} ${JSON.stringify(part)}: must not contain "/"`);
  }
  const path = join(root, 'events', category, name, 'id');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const cause = code === 'ENOENT' ? 'no such tracepoint' : `cannot read its id (${code})`;
    throw new AttachError(`tracepoint ${category}/${name}: ${path}: ${cause}`, { cause: e });
  }
  const trimmed = text.trim();
  const id = Number(trimmed);
  if (!/^[0-9]+$/.test(trimmed) || !Number.isSafeInteger(id)) {
    throw new AttachError(`tracepoint ${category}/${name}: ${path}: not a tracepoint id: ${JSON.stringify(text)}`);
  }
  return id;
}

/** How long to wait before asking trace_pipe again when it had nothing; an abort cuts the wait short. */
const POLL_INTERVAL_MS = 50;
const READ_CHUNK = 64 * 1024;

/**
 * Lines of trace_pipe (without the newline) as they arrive, until `signal` aborts or the consumer stops iterating.
 *
 * trace_pipe is opened O_NONBLOCK and read synchronously: a blocking read would sit in libuv's threadpool until the
 * kernel traces something, which may be never, keeping the process alive after an abort. Here nothing is pending
 * between polls but a timer that the abort clears. Reading consumes: other trace_pipe readers miss what we read.
 */
export async function* readTracePipe(options: TracePipeOptions = {}): AsyncGenerator<string, void, undefined> {
  const { signal } = options;
  if (isAborted(signal)) return;
  const path = join(tracefsRoot(options), 'trace_pipe');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new AttachError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  try {
    const decoder = new StringDecoder('utf8');
    const chunk = Buffer.alloc(READ_CHUNK);
    let partial = '';
    while (!isAborted(signal)) {
      const n = readAvailable(fd, chunk, path);
      if (n === 0) {
        await pause(POLL_INTERVAL_MS, signal);
        continue;
      }
      const lines = (partial + decoder.write(chunk.subarray(0, n))).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        yield line;
        if (isAborted(signal)) return;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Bytes read now, 0 when there is nothing yet (EAGAIN; or end of file, which trace_pipe reports when tracing is off). */
function readAvailable(fd: number, into: Buffer, path: string): number {
  try {
    return readSync(fd, into, 0, into.byteLength, null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EINTR') return 0;
    throw new AttachError(`${path}: read failed (${code ?? String(e)})`, { cause: e });
  }
}

/** A function, not an inline test: TypeScript would keep `aborted` narrowed across the awaits that change it. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** One trace_pipe line in its fields: `node-14025 [000] ...21 1512.328254: bpf_trace_printk: hello`. */
export interface TraceLine {
  readonly task: string;
  readonly pid: number;
  readonly cpu: number;
  /** irqs-off, need-resched, hardirq/softirq and preempt-depth letters, as the kernel prints them. */
  readonly flags: string;
  /** Seconds since boot, as printed (microsecond resolution). */
  readonly timestamp: number;
  /** What the program printed, without the `bpf_trace_printk: ` prefix. */
  readonly message: string;
}

// The task name may hold spaces and dashes: the pid is the last `-<digits>` before the CPU column. Some kernels
// print the tgid in parentheses before the CPU.
const TRACE_LINE = /^\s*(.*)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(\S+)\s+(\d+\.\d+):\s+(?:bpf_trace_printk:\s)?(.*)$/;

/** The fields of a trace_pipe line, or undefined when it is not in the default trace format. */
export function parseTraceLine(line: string): TraceLine | undefined {
  const m = TRACE_LINE.exec(line);
  if (m === null) return undefined;
  return { task: m[1]!, pid: Number(m[2]), cpu: Number(m[3]), flags: m[4]!, timestamp: Number(m[5]), message: m[6]! };
}
