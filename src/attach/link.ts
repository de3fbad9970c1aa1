import { unlinkSync } from 'node:fs';
import { BpfLoadError, withContext } from '../base/errors.js';
import type { AttachKind } from '../object/index.js';
import { KIND_OF_LINK_TYPE } from './kinds.js';
import {
  bpfObjectKind, Errno, Fd, type LinkTypeName, linkDetach, linkInfo, linkUpdate, objGet, objPin, progGetFdById, progInfo, SysError,
  type LinkInfo,
} from '../sys/index.js';

/**
 * One attachment of a program, whatever made it. Attachments that are BPF links (XDP and cgroup links, tcx, raw
 * tracepoints, tracing) carry their link's `fd` and can be pinned, updated and asked for info; the others (netlink
 * XDP, socket filters, cgroup and sockmap BPF_PROG_ATTACH, perf events) have the same methods, which throw an
 * AttachError saying what they cannot do.
 */
export interface Link {
  readonly kind: AttachKind;
  /** Program name. */
  readonly program: string;
  /** Where it is attached, for people, without repeating the kind: `lo`, `syscalls/sys_enter_getpid`, `/sys/fs/cgroup (ingress)` … */
  readonly target: string;
  /** The BPF link's fd; undefined when the attachment is not a BPF link. */
  readonly fd: Fd | undefined;
  /** Where the link is pinned (bpffs), when it is. */
  readonly pinnedPath: string | undefined;
  /** Undoes the attachment (and removes its pin). Safe to call more than once. */
  detach(): void;
  /** Pins the link at `path` (bpffs): it then outlives this process until someone unpins or detaches it. */
  pin(path: string): void;
  /** Removes the pin; the attachment lasts as long as this process holds the link. */
  unpin(): void;
  /** BPF_LINK_UPDATE: the link runs `program` from now on, with no moment where nothing is attached. */
  update(program: { readonly name: string; readonly fd: number }): void;
  /** The kernel's view of the link (type, id, program id, target). */
  info(): LinkInfo;
  /**
   * Lets go of the attachment without undoing it: the fd is closed, so a pinned link stays attached (an unpinned
   * one is then detached by the kernel). Attachments that are not links are detached.
   */
  release(): void;
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
  /** tc programs: 'tcx' links, 'classic' clsact + cls_bpf filters, or 'auto' (default): tcx where the kernel has it. */
  tcMode?: 'auto' | 'tcx' | 'classic';
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

interface LinkFields {
  readonly kind: AttachKind;
  readonly program: string;
  readonly target: string;
}

/** A BPF link (BPF_LINK_CREATE or BPF_RAW_TRACEPOINT_OPEN): the attachment lives as long as its fd or its pin. */
export class BpfLink implements Link {
  readonly kind: AttachKind;
  readonly program: string;
  readonly target: string;
  readonly fd: Fd;
  #pinnedPath: string | undefined;

  constructor(fields: LinkFields, fd: Fd, pinnedPath?: string) {
    this.kind = fields.kind;
    this.program = fields.program;
    this.target = fields.target;
    this.fd = fd;
    this.#pinnedPath = pinnedPath;
  }

  get pinnedPath(): string | undefined {
    return this.#pinnedPath;
  }

  detach(): void {
    if (this.fd.closed) return;
    try {
      this.unpin();
      // LINK_DETACH ends the attachment even if another process holds the link; link types without a detach
      // operation (raw tracepoints, tracing) answer EOPNOTSUPP, and closing the last reference ends those.
      linkDetach(this.fd.value, [Errno.EOPNOTSUPP, Errno.EINVAL]);
    } finally {
      this.fd.close();
    }
  }

  pin(path: string): void {
    if (this.#pinnedPath !== undefined) throw this.error(`already pinned at ${this.#pinnedPath}`);
    objPin(this.fd.value, path);
    this.#pinnedPath = path;
  }

  unpin(): void {
    const path = this.#pinnedPath;
    if (path === undefined) return;
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.error(`unpin ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    this.#pinnedPath = undefined;
  }

  update(program: { readonly name: string; readonly fd: number }): void {
    try {
      linkUpdate({ linkFd: this.fd.value, newProgFd: program.fd });
    } catch (e) {
      if (e instanceof SysError) throw new AttachError(withContext([this.label, `update to ${program.name}`], e.message), { cause: e });
      throw e;
    }
  }

  info(): LinkInfo {
    return linkInfo(this.fd.value);
  }

  release(): void {
    this.fd.close();
  }

  private get label(): string {
    return `${this.kind} link of ${this.program} (${this.target})`;
  }

  private error(cause: string): AttachError {
    return new AttachError(withContext([this.label], cause));
  }
}

/**
 * An attachment that is not a BPF link: `undo` detaches it, once. Pinning, updating and info are not possible, and
 * say so naming the attachment.
 */
class OtherAttachment implements Link {
  readonly kind: AttachKind;
  readonly program: string;
  readonly target: string;
  readonly fd = undefined;
  readonly pinnedPath = undefined;
  #undo: (() => void) | undefined;

  constructor(fields: LinkFields, undo: () => void) {
    this.kind = fields.kind;
    this.program = fields.program;
    this.target = fields.target;
    this.#undo = undo;
  }

  detach(): void {
    const undo = this.#undo;
    if (undo === undefined) return;
    this.#undo = undefined;
    undo();
  }

  pin(): void {
    throw this.cannot('be pinned: only BPF links outlive the process that made them');
  }

  unpin(): void {
    // Never pinned: nothing to remove.
  }

  update(): void {
    throw this.cannot('be updated to another program: only BPF links can (detach it and attach the other program)');
  }

  info(): LinkInfo {
    throw this.cannot('be asked for link info: it has no link fd');
  }

  release(): void {
    this.detach();
  }

  private cannot(what: string): AttachError {
    return new AttachError(`${this.kind} attachment of ${this.program} (${this.target}) is not a BPF link and cannot ${what}`);
  }
}

/**
 * An attachment that is not a BPF link, whose detach runs `undo` once (later calls, close() after an explicit
 * detach, say, do nothing). Extra fields (`fds` of perf events) are kept on the returned object.
 */
export function onceLink<T extends LinkFields>(fields: T, undo: () => void): T & Link {
  return Object.assign(new OtherAttachment(fields, undo), fields) as T & Link;
}

/** A freshly created link fd, owned from here on by the returned BpfLink. */
export function bpfLink(fields: LinkFields, linkFd: number): BpfLink {
  return new BpfLink(fields, new Fd(linkFd, `link ${fields.program} (${fields.target})`));
}

/**
 * A BPF link pinned at `path` (by this process, another, or an earlier `bpf-load --keep-attached`), as a Link:
 * detach() ends the attachment and removes the pin; release() leaves both.
 */
export function openPinnedLink(path: string): BpfLink {
  let raw: number;
  try {
    raw = objGet(path);
  } catch (e) {
    // The SysError names the path already.
    if (e instanceof SysError) throw new AttachError(e.message, { cause: e });
    throw e;
  }
  const fd = new Fd(raw, `link pinned at ${path}`);
  try {
    const what = bpfObjectKind(fd.value);
    if (what !== 'link') throw new AttachError(withContext([path], `pinned object is ${what === undefined ? 'not a BPF object' : `a ${what}`}, not a link`));
    const info = linkInfo(fd.value);
    const kind = KIND_OF_LINK_TYPE[info.typeName as LinkTypeName] ?? 'none';
    const where = info.ifindex !== undefined ? `ifindex ${info.ifindex}` : info.tpName ?? info.attachTypeName ?? info.typeName;
    return new BpfLink({ kind, program: programName(info.progId), target: `${where} (${info.typeName} link id ${info.id})` }, fd, path);
  } catch (e) {
    fd.closeQuietly();
    throw e;
  }
}

/** The kernel's name for a program id, or `id N` when it is gone or unnamed. */
function programName(id: number): string {
  let fd: number;
  try {
    fd = progGetFdById(id);
  } catch {
    return `id ${id}`;
  }
  return Fd.with(fd, `program id ${id}`, (program) => progInfo(program.value).name || `id ${id}`);
}
