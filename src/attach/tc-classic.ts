/**
 * Classic tc: a `clsact` qdisc and a `cls_bpf` filter in direct-action mode, over rtnetlink — what
 * `tc qdisc add dev D clsact; tc filter add dev D ingress bpf da fd N` does. Used where the kernel has no tcx links
 * (before 6.6) and on request.
 *
 * Unlike a link, a filter outlives its creator: detach removes exactly our filter (found by program id), and the
 * qdisc only when we created it and no filter is left on it. A SIGKILLed process cannot do that; its filters are
 * named `bpf-load:<pid>:<program>`, and the next classic attach on the same interface and direction removes those
 * whose process is gone.
 */
import { withContext } from '../base/errors.js';
import type { LoadedProgram } from '../load/index.js';
import {
  Errno, ifNameToIndex, netlinkAttribute, netlinkAttributes, netlinkReader, netlinkRequest, netlinkString, Nl, SysError,
  type NetlinkMessage,
} from '../sys/index.js';
import { AttachError, checkSafeName, type Link, onceLink } from './link.js';

/** rtnetlink tc messages and attributes (linux/rtnetlink.h, linux/pkt_sched.h, linux/pkt_cls.h). */
const Rtm = { NEWQDISC: 36, DELQDISC: 37, NEWTFILTER: 44, DELTFILTER: 45, GETTFILTER: 46 } as const;
const TCMSG_LEN = 20;
const Tca = { KIND: 1, OPTIONS: 2 } as const;
const TcaBpf = { FD: 6, NAME: 7, FLAGS: 8, ID: 11 } as const;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
const TC_H_CLSACT = 0xfffffff1;
const CLSACT_HANDLE = 0xffff0000;
const PARENT = { ingress: 0xfffffff2, egress: 0xfffffff3 } as const;
/** ETH_P_ALL in network byte order, as tc's `protocol all`. */
const PROTOCOL_ALL = 0x0300;
const NAME_PREFIX = 'bpf-load:';

export type TcDirection = keyof typeof PARENT;

/** One cls_bpf filter as a dump shows it. */
export interface ClassicFilter {
  readonly priority: number;
  readonly handle: number;
  readonly protocol: number;
  readonly programId: number;
  readonly name: string;
}

export function attachTcClassic(program: LoadedProgram, iface: string, direction: TcDirection): Link {
  const where = `program ${program.name} (section ${program.section})`;
  checkSafeName(iface, `${where}: interface`);
  const target = `${iface} (${direction}, classic tc)`;
  const fail = (e: unknown): never => {
    if (e instanceof SysError) throw new AttachError(withContext([where, target], e.message), { cause: e });
    throw e;
  };
  let ifindex: number;
  let createdQdisc: boolean;
  const stale: ClassicFilter[] = [];
  try {
    ifindex = ifNameToIndex(iface);
    createdQdisc = addClsact(ifindex, iface);
    for (const f of classicFilters(ifindex, iface, direction)) {
      if (isStale(f)) {
        deleteFilter(ifindex, iface, direction, f);
        stale.push(f);
      }
    }
    addFilter(ifindex, iface, direction, program);
  } catch (e) {
    return fail(e);
  }
  const staleNote = stale.length === 0 ? '' : `; removed stale ${stale.map((f) => f.name).join(', ')}`;
  return onceLink({ kind: 'tc', program: program.name, target: `${target.slice(0, -1)}${staleNote})` }, () => {
    try {
      // Ours is the filter running our program: someone may have replaced or removed it since.
      for (const f of classicFilters(ifindex, iface, direction)) if (f.programId === program.id) deleteFilter(ifindex, iface, direction, f);
      if (createdQdisc && classicFilters(ifindex, iface, 'ingress').length === 0 && classicFilters(ifindex, iface, 'egress').length === 0) {
        deleteClsact(ifindex, iface);
      }
    } catch (e) {
      // The interface went away, taking the qdisc and filters with it.
      if (e instanceof SysError && (e.errno === Errno.ENODEV || e.errno === Errno.ENOENT)) return;
      throw e;
    }
  });
}

/** Filters of any kind on the direction, cls_bpf ones with their program id and name (others with id 0). */
export function classicFilters(ifindex: number, iface: string, direction: TcDirection): ClassicFilter[] {
  const replies = netlinkRequest(Rtm.GETTFILTER, Nl.F_REQUEST | Nl.F_DUMP, tcmsg(ifindex, 0, PARENT[direction], 0), {
    command: 'RTM_GETTFILTER', detail: `${iface} ${direction}`,
  });
  return replies.filter((m) => m.type === Rtm.NEWTFILTER).map((m) => parseFilter(m, iface)).filter((f) => f.handle !== 0);
}

/** The classifier chain head of each priority comes with handle 0; real filters have one. */
function parseFilter(message: NetlinkMessage, iface: string): ClassicFilter {
  const what = `RTM_NEWTFILTER for ${iface}`;
  const r = netlinkReader(message.payload, what);
  const handle = r.u32(8, 'tcm_handle');
  const info = r.u32(16, 'tcm_info');
  const attrs = netlinkAttributes(message.payload, TCMSG_LEN, what);
  const kind = attrs.get(Tca.KIND);
  const options = attrs.get(Tca.OPTIONS);
  let programId = 0;
  let name = '';
  if (kind !== undefined && netlinkString(kind) === 'bpf' && options !== undefined) {
    const bpf = netlinkAttributes(options, 0, `${what}: TCA_OPTIONS`);
    const id = bpf.get(TcaBpf.ID);
    if (id !== undefined) programId = netlinkReader(id, `${what}: TCA_BPF_ID`).u32(0);
    const n = bpf.get(TcaBpf.NAME);
    if (n !== undefined) name = netlinkString(n);
  }
  return { priority: info >>> 16, handle, protocol: info & 0xffff, programId, name };
}

/** Ours, from a process that no longer exists (a SIGKILLed bpf-load). */
function isStale(f: ClassicFilter): boolean {
  const m = /^bpf-load:(\d+):/.exec(f.name);
  if (m === null) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Creates the clsact qdisc; false when one is there already (ours to use, not ours to remove). */
function addClsact(ifindex: number, iface: string): boolean {
  try {
    netlinkRequest(Rtm.NEWQDISC, Nl.F_REQUEST | Nl.F_ACK | Nl.F_CREATE | Nl.F_EXCL,
      Buffer.concat([tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), kindAttribute('clsact')]), { command: 'RTM_NEWQDISC clsact', detail: iface });
    return true;
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.EEXIST) return false;
    throw e;
  }
}

function deleteClsact(ifindex: number, iface: string): void {
  netlinkRequest(Rtm.DELQDISC, Nl.F_REQUEST | Nl.F_ACK,
    Buffer.concat([tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), kindAttribute('clsact')]), { command: 'RTM_DELQDISC clsact', detail: iface });
}

/** `tc filter add dev D <direction> protocol all bpf da fd N name bpf-load:<pid>:<program>`; the kernel picks priority and handle. */
function addFilter(ifindex: number, iface: string, direction: TcDirection, program: LoadedProgram): void {
  const options = Buffer.concat([
    netlinkAttribute(TcaBpf.FD, u32(program.fd)),
    netlinkAttribute(TcaBpf.NAME, Buffer.from(`${NAME_PREFIX}${process.pid}:${program.name}\0`)),
    netlinkAttribute(TcaBpf.FLAGS, u32(TCA_BPF_FLAG_ACT_DIRECT)),
  ]);
  netlinkRequest(Rtm.NEWTFILTER, Nl.F_REQUEST | Nl.F_ACK | Nl.F_CREATE | Nl.F_EXCL, Buffer.concat([
    tcmsg(ifindex, 0, PARENT[direction], PROTOCOL_ALL),
    kindAttribute('bpf'),
    netlinkAttribute(Tca.OPTIONS | Nl.ATTR_F_NESTED, options),
  ]), { command: 'RTM_NEWTFILTER bpf', detail: `${iface} ${direction}` });
}

function deleteFilter(ifindex: number, iface: string, direction: TcDirection, f: ClassicFilter): void {
  try {
    netlinkRequest(Rtm.DELTFILTER, Nl.F_REQUEST | Nl.F_ACK,
      Buffer.concat([tcmsg(ifindex, f.handle, PARENT[direction], ((f.priority << 16) | f.protocol) >>> 0), kindAttribute('bpf')]),
      { command: 'RTM_DELTFILTER bpf', detail: `${iface} ${direction} pref ${f.priority} handle 0x${f.handle.toString(16)}` });
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return; // removed meanwhile
    throw e;
  }
}

/** struct tcmsg: family AF_UNSPEC, ifindex, handle, parent, info (priority << 16 | protocol). */
function tcmsg(ifindex: number, handle: number, parent: number, info: number): Buffer {
  const b = Buffer.alloc(TCMSG_LEN);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

function kindAttribute(kind: string): Buffer {
  return netlinkAttribute(Tca.KIND, Buffer.from(`${kind}\0`));
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}
