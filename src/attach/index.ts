import { BpfLoadError, withContext } from '../base/errors.js';
import type { LoadedObject, LoadedProgram } from '../load/index.js';
import { KernelFeatureError } from '../sys/index.js';
import { attachCgroup } from './cgroup.js';
import { isAttachableKind, type AttachableKind } from './kinds.js';
import { attachKprobe } from './kprobe.js';
import { AttachError, type AttachOptions, type Link } from './link.js';
import { attachPerfEvent } from './perf-event.js';
import { attachRawTracepoint } from './raw-tracepoint.js';
import { attachSocket } from './socket.js';
import { attachSockmap } from './sockmap.js';
import { attachTc } from './tc.js';
import { attachTracepoint } from './tracepoint.js';
import { attachTracing } from './tracing.js';
import { attachXdp } from './xdp.js';

export { AttachConflictError, AttachError, BpfLink, checkSafeName, openPinnedLink, type AttachOptions, type Link } from './link.js';
export { attachSocket } from './socket.js';

type Attacher = (program: LoadedProgram, options: AttachOptions, object: LoadedObject) => Link;

/** One module per attach kind in ATTACHABLE_KINDS. Other kinds are loaded but not attached (attachAll says why). */
const ATTACHERS: Readonly<Record<AttachableKind, Attacher>> = {
  socket: (p, o) => attachSocket(p, o),
  tracepoint: (p, o) => attachTracepoint(p, o),
  raw_tracepoint: (p) => attachRawTracepoint(p),
  kprobe: (p, o) => attachKprobe(p, o),
  kretprobe: (p, o) => attachKprobe(p, o),
  perf_event: (p, o) => attachPerfEvent(p, o),
  xdp: (p, o) => attachXdp(p, o),
  cgroup: (p, o) => attachCgroup(p, o),
  sockmap: (p, _options, obj) => attachSockmap(p, obj),
  tc: (p, o) => attachTc(p, o),
  tracing: (p) => attachTracing(p),
  lsm: (p) => attachTracing(p),
};

/** The kinds attached automatically (and the ones `--skip` accepts); cgroup covers every cgroup attach type. */
export { ATTACHABLE_KINDS, type AttachableKind } from './kinds.js';

/**
 * Attaches one program where its section says. The caller owns the returned link (BpfObject tracks the ones it
 * makes): detach it, or release it to leave a pinned link attached.
 */
export function attachProgram(object: LoadedObject, program: LoadedProgram, options: AttachOptions = {}): Link {
  const kind = program.spec.attach;
  const attacher = isAttachableKind(kind) ? ATTACHERS[kind] : undefined;
  if (attacher === undefined) {
    throw new AttachError(withContext([`program ${program.name} (section ${program.section})`], notAttachableReason(program)));
  }
  let link: Link;
  try {
    link = attacher(program, options, object);
  } catch (e) {
    // A missing kernel feature already names the section and is the error callers test for: keep its type.
    if (e instanceof KernelFeatureError) throw e;
    if (e instanceof BpfLoadError && !e.message.startsWith(`program ${program.name}`)) {
      throw new AttachError(withContext([`program ${program.name} (section ${program.section})`], e.message), { cause: e });
    }
    throw e;
  }
  return link;
}

export interface AttachResult {
  readonly program: LoadedProgram;
  readonly link?: Link;
  /** Not attached on purpose: the reason (tail-call slot, --skip, nothing to attach to). */
  readonly skipped?: string;
  /** Attaching failed: the error (the other programs are still attached). */
  readonly error?: BpfLoadError;
}

export interface AttachAllOptions extends AttachOptions {
  /** Attach kinds to leave alone. */
  skip?: readonly string[];
}

/**
 * Attaches every program it can and reports on each: attached (with its link), skipped (why), or failed (the
 * error). A failure does not stop the others; callers decide whether a partial result is acceptable.
 */
export function attachAll(object: LoadedObject, options: AttachAllOptions = {}): AttachResult[] {
  const results: AttachResult[] = [];
  for (const program of object.programs) {
    const kind = program.spec.attach;
    if (program.spec.tailCallSlot !== undefined) {
      results.push({ program, skipped: `tail-call target (slot ${program.spec.tailCallSlot}): runs when another program jumps to it` });
    } else if (options.skip?.includes(kind) === true || (kind === 'kretprobe' && options.skip?.includes('kprobe') === true)) {
      results.push({ program, skipped: `--skip ${kind}` });
    } else if (!isAttachableKind(kind)) {
      results.push({ program, skipped: notAttachableReason(program) });
    } else {
      try {
        results.push({ program, link: attachProgram(object, program, options) });
      } catch (e) {
        if (!(e instanceof BpfLoadError)) throw e;
        results.push({ program, error: e });
      }
    }
  }
  return results;
}

function notAttachableReason(program: LoadedProgram): string {
  if (program.type.startsWith('lwt_')) {
    return `${program.type} programs run from a route (ip route add … encap bpf in|out|xmit obj …, or seg6local End.BPF); loaded, not attached`;
  }
  if (program.spec.attach === 'none') {
    return `${program.type} programs from section ${program.section} have nothing to attach to automatically`;
  }
  return `attaching ${program.spec.attach} programs is not supported yet; the program is loaded (fd ${program.fd})`;
}
export { attachClassicFilter, PacketSocket, type ClassicAttachOptions, type SocketPacket } from './packet-socket.js';
