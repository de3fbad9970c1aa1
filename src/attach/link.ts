import { BpfLoadError } from '../base/errors.js';
import type { AttachKind } from '../object/index.js';

/** One attachment of a program. detach() undoes it and is safe to call more than once. */
export interface Link {
  readonly kind: AttachKind;
  /** Program name. */
  readonly program: string;
  /** Where it is attached, for people, without repeating the kind: `lo`, `syscalls/sys_enter_getpid`, `/sys/fs/cgroup (ingress)` … */
  readonly target: string;
  detach(): void;
}

export interface AttachOptions {
  /** Interface for socket and XDP programs (default lo). */
  iface?: string;
  /** XDP attach mode (default skb, which works on every interface including lo). */
  xdpMode?: 'skb' | 'drv' | 'hw';
  /** Replace an XDP program that someone else attached. */
  force?: boolean;
  /** cgroup v2 directory for cgroup programs (default: the cgroup2 mount). */
  cgroup?: string;
  /** perf_event programs: samples per second on every CPU (default 99). */
  sampleFreq?: number;
  /** tracefs root (default /sys/kernel/tracing, mounted when absent; /sys/kernel/debug/tracing as fallback). Tests point it elsewhere. */
  tracefs?: string;
}

/** A program could not be attached; the message names the program, the target and why. */
export class AttachError extends BpfLoadError {
  override name = 'AttachError';
}

/** The target already runs a program that only `force` may replace (XDP on an interface). */
export class AttachConflictError extends AttachError {
  override name = 'AttachConflictError';
}

/**
 * Strings that reach tracefs, netlink or paths come from section names, i.e. from the object file. Only
 * `[A-Za-z0-9_.:/-]` is accepted and `..` path components are refused, so an object cannot inject tracefs commands
 * or escape a directory. Checked before anything is written.
 */
export function checkSafeName(value: string, what: string): string {
  if (value === '' || !/^[A-Za-z0-9_.:/-]+$/.test(value) || value.split('/').includes('..')) {
    throw new AttachError(`${what}: unsafe name ${JSON.stringify(value)} (only letters, digits and _.:/- are allowed, no "..")`);
  }
  return value;
}

/** A Link whose detach runs `undo` once: later calls (close() after an explicit detach, say) do nothing. */
export function onceLink<T extends Omit<Link, 'detach'>>(fields: T, undo: () => void): T & Link {
  let attached = true;
  return {
    ...fields,
    detach() {
      if (!attached) return;
      attached = false;
      undo();
    },
  };
}
