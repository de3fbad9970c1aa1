/**
 * XDP: a program on an interface's receive path.
 *
 * Two kernel interfaces exist. A BPF link (BPF_LINK_CREATE, attach type xdp, 5.9+) is preferred: it cannot displace
 * anything (the kernel refuses while any program is attached), only its owner can remove it, and the kernel removes it
 * by itself when the link fd is closed, so even a crashed loader leaves the interface clean. rtnetlink (RTM_SETLINK
 * with IFLA_XDP, bpf_load.c's set_link_xdp_fd) is used to replace a foreign program when the caller insists (`force`;
 * a link cannot replace) and on kernels without XDP links.
 */
import { withContext } from '../base/errors.js';
import { attachTypeValue } from '../base/uapi.js';
import { listLinks, type LoadedProgram } from '../load/index.js';
import {
  Errno, Fd, ifNameToIndex, linkCreate, netlinkAttribute, netlinkAttributes, NetlinkError, netlinkReader,
  netlinkRequest, Nl, progGetFdById, progInfo, SysError,
} from '../sys/index.js';
import { AttachConflictError, AttachError, bpfLink, checkSafeName, type AttachOptions, type Link, onceLink } from './link.js';

export { NetlinkError, netlinkMessages } from '../sys/index.js';

/** XDP_FLAGS_* (linux/if_link.h). */
export const XdpFlags = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4, HW_MODE: 8, REPLACE: 16 } as const;

export type XdpMode = NonNullable<AttachOptions['xdpMode']>;
const MODE_FLAG: Readonly<Record<XdpMode, number>> = { skb: XdpFlags.SKB_MODE, drv: XdpFlags.DRV_MODE, hw: XdpFlags.HW_MODE };

/** rtnetlink link messages (linux/rtnetlink.h, linux/if_link.h). */
const Rtm = { NEWLINK: 16, GETLINK: 18, SETLINK: 19 } as const;
const IFINFOMSG_LEN = 16;
const IFINFOMSG_INDEX = 4;
const IFLA_XDP = 43;
const IflaXdp = { FD: 1, ATTACHED: 2, FLAGS: 3, PROG_ID: 4, DRV_PROG_ID: 5, SKB_PROG_ID: 6, HW_PROG_ID: 7, EXPECTED_FD: 8 } as const;

/** What rtnetlink reports about XDP on one interface; ids are 0 where nothing is attached. */
export interface XdpState {
  readonly ifindex: number;
  /** XDP_ATTACHED_*: 0 none, 1 drv, 2 skb, 3 hw, 4 several modes. */
  readonly attached: number;
  readonly skbProgId: number;
  readonly drvProgId: number;
  readonly hwProgId: number;
}

/** Ids of every XDP program on the interface (one per mode at most). */
export function xdpProgramIds(state: XdpState): number[] {
  return [state.skbProgId, state.drvProgId, state.hwProgId].filter((id) => id !== 0);
}

/** RTM_GETLINK: which XDP programs `ifname` runs, by mode. */
export function queryXdp(ifname: string): XdpState {
  checkSafeName(ifname, 'interface');
  return queryXdpByIndex(ifNameToIndex(ifname), ifname);
}

/** By index: what detach uses, so a renamed interface is still the same one. */
function queryXdpByIndex(ifindex: number, label: string): XdpState {
  const reply = rtnetlinkRequest(Rtm.GETLINK, Nl.F_REQUEST, ifindex, new Uint8Array(0), label);
  if (reply === undefined) throw new NetlinkError({ syscall: 'netlink', command: 'RTM_GETLINK', errno: Errno.EPROTO, detail: label, extack: 'no RTM_NEWLINK in the reply' });
  return parseXdpState(reply, ifindex, label);
}

/** Parses an RTM_NEWLINK payload (struct ifinfomsg + attributes) for its IFLA_XDP nest. */
export function parseXdpState(payload: Uint8Array, ifindex: number, ifname = `ifindex ${ifindex}`): XdpState {
  const ids = { attached: 0, skb: 0, drv: 0, hw: 0, single: 0 };
  const xdp = netlinkAttributes(payload, IFINFOMSG_LEN, `RTM_NEWLINK for ${ifname}`).get(IFLA_XDP);
  if (xdp !== undefined) {
    const nested = netlinkAttributes(xdp, 0, `RTM_NEWLINK for ${ifname}: IFLA_XDP`);
    const u32 = (type: number) => {
      const v = nested.get(type);
      return v === undefined ? 0 : netlinkReader(v, 'IFLA_XDP attribute').u32(0);
    };
    const attachedAttr = nested.get(IflaXdp.ATTACHED);
    ids.attached = attachedAttr === undefined ? 0 : netlinkReader(attachedAttr, 'IFLA_XDP_ATTACHED').u8(0);
    ids.single = u32(IflaXdp.PROG_ID);
    ids.skb = u32(IflaXdp.SKB_PROG_ID);
    ids.drv = u32(IflaXdp.DRV_PROG_ID);
    ids.hw = u32(IflaXdp.HW_PROG_ID);
  }
  // With one mode in use the kernel reports only IFLA_XDP_PROG_ID; IFLA_XDP_ATTACHED says which mode it is.
  if (ids.single !== 0 && ids.skb === 0 && ids.drv === 0 && ids.hw === 0) {
    if (ids.attached === 1) ids.drv = ids.single;
    else if (ids.attached === 3) ids.hw = ids.single;
    else ids.skb = ids.single;
  }
  return { ifindex, attached: ids.attached, skbProgId: ids.skb, drvProgId: ids.drv, hwProgId: ids.hw };
}

/**
 * Attaches an xdp program to `options.iface` (default lo) in `options.xdpMode` (default skb, which every interface
 * supports). A program already there (ours or not) is an AttachError naming its id, unless `options.force`, which
 * replaces it through rtnetlink; detach then leaves the interface without XDP.
 */
export function attachXdp(program: LoadedProgram, options: AttachOptions): Link {
  const where = `program ${program.name} (section ${program.section})`;
  const iface = checkSafeName(options.iface ?? 'lo', `${where}: interface`);
  const mode: XdpMode = options.xdpMode ?? 'skb';
  const modeFlag = MODE_FLAG[mode];
  if (modeFlag === undefined) throw new AttachError(`${where}: XDP mode ${JSON.stringify(mode)} is not one of skb, drv, hw`);
  const target = `${iface} (xdp ${mode} mode)`;
  const fail = (e: unknown): never => {
    if (e instanceof SysError) throw new AttachError(withContext([where, target], e.message), { cause: e });
    throw e;
  };

  let state: XdpState;
  try {
    state = queryXdp(iface);
  } catch (e) {
    return fail(e);
  }
  const present = xdpProgramIds(state);
  if (present.length > 0 && options.force !== true) {
    throw new AttachConflictError(withContext([where, target], `${iface} already runs XDP ${describePrograms(present, program.id)}`));
  }
  if (present.length > 0) {
    // The kernel lets nobody replace a program a BPF link holds; say so instead of netlink's bare EBUSY.
    const held = listLinks().find((l) => l.typeName === 'xdp' && l.ifindex === state.ifindex && present.includes(l.progId));
    if (held !== undefined) {
      throw new AttachError(withContext([where, target],
        `${iface} runs XDP ${describePrograms([held.progId], program.id)} through BPF link id ${held.id}, which force cannot replace: ` +
        'it goes when its owner closes or unpins the link'));
    }
  }

  if (present.length === 0) {
    let linkFd: number | undefined;
    try {
      linkFd = linkCreate({ progFd: program.fd, targetIfindex: state.ifindex, attachType: attachTypeValue('xdp'), flags: modeFlag });
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      if (e.errno === Errno.EBUSY || e.errno === Errno.EEXIST) {
        throw new AttachError(withContext([where, target], `${e.message}: another XDP program was attached meanwhile (${describeNow(iface, program.id)})`), { cause: e });
      }
      // Kernels without XDP links (before 5.9) say EINVAL; a mode the driver lacks is EOPNOTSUPP. rtnetlink then
      // either works or fails with the kernel's own explanation, which bpf(2) cannot carry.
      if (!LINK_FALLBACK_ERRNOS.includes(e.errno)) return fail(e);
    }
    if (linkFd !== undefined) return xdpLink(program, target, linkFd);
  }

  // rtnetlink: without force, UPDATE_IF_NOEXIST makes the kernel refuse to replace anything (no race with others).
  const flags = modeFlag | (options.force === true ? 0 : XdpFlags.UPDATE_IF_NOEXIST);
  // The program force displaces, held by an fd so that detach can put it back (displaced, it would otherwise be freed
  // when nothing else holds it).
  const displacedId = { skb: state.skbProgId, drv: state.drvProgId, hw: state.hwProgId }[mode];
  const displacedFd = options.force === true && displacedId !== 0 ? heldProgram(displacedId) : undefined;
  try {
    setXdp(iface, state.ifindex, { fd: program.fd, flags });
  } catch (e) {
    displacedFd?.close();
    return fail(e);
  }
  return netlinkLink(program, target, iface, state.ifindex, modeFlag, displacedFd);
}

/** An fd on program `id`, or undefined when it is gone already (nothing to put back then). */
function heldProgram(id: number): Fd | undefined {
  try {
    return new Fd(progGetFdById(id), `displaced XDP program id ${id}`);
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return undefined;
    throw e;
  }
}

const LINK_FALLBACK_ERRNOS: readonly number[] = [Errno.EINVAL, Errno.EOPNOTSUPP, Errno.ENOTSUPP];

function xdpLink(program: LoadedProgram, target: string, linkFd: number): Link {
  return bpfLink({ kind: 'xdp', program: program.name, target }, linkFd);
}

/**
 * Detach removes ours only while it is still ours, and puts back the program `force` displaced (`displacedFd`), as
 * the interface was before us.
 */
function netlinkLink(program: LoadedProgram, target: string, iface: string, ifindex: number, modeFlag: number, displacedFd: Fd | undefined): Link {
  return onceLink({
    kind: 'xdp',
    program: program.name,
    target,
  }, () => {
    try {
      detachNetlink(program, iface, ifindex, modeFlag, displacedFd?.value ?? -1);
    } finally {
      displacedFd?.close();
    }
  });
}

function detachNetlink(program: LoadedProgram, iface: string, ifindex: number, modeFlag: number, restoreFd: number): void {
  let state: XdpState;
  try {
    state = queryXdpByIndex(ifindex, iface);
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENODEV) return; // the interface is gone, and our program with it
    throw e;
  }
  // Someone replaced ours (or removed it) since: theirs stays.
  if (!xdpProgramIds(state).includes(program.id)) return;
  try {
    // REPLACE + EXPECTED_FD (5.7+): the kernel removes the program only if it is still ours, atomically.
    setXdp(iface, ifindex, { fd: restoreFd, flags: modeFlag | XdpFlags.REPLACE, expectedFd: program.fd });
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    if (e.errno === Errno.EEXIST) return; // replaced between the query and the request
    if (e.errno !== Errno.EINVAL) throw e;
    setXdp(iface, ifindex, { fd: restoreFd, flags: modeFlag }); // kernel without XDP_FLAGS_REPLACE
  }
}

function describePrograms(ids: readonly number[], ownId: number): string {
  return ids.map((id) => (id === ownId ? `program id ${id} (this program, already attached)` : `program id ${id}${programName(id)}`)).join(' and ');
}

function describeNow(iface: string, ownId: number): string {
  try {
    const ids = xdpProgramIds(queryXdp(iface));
    return ids.length === 0 ? 'gone again' : describePrograms(ids, ownId);
  } catch {
    return 'could not ask which';
  }
}

/** ` "name"` of a program id, for messages; empty when it cannot be read (it may be gone already). */
function programName(id: number): string {
  try {
    const name = Fd.with(progGetFdById(id), `program id ${id}`, (fd) => progInfo(fd.value).name);
    return name === '' ? '' : ` "${name}"`;
  } catch {
    return '';
  }
}

/** RTM_SETLINK with IFLA_XDP { FD, FLAGS [, EXPECTED_FD] }; throws NetlinkError with the kernel's message. */
function setXdp(iface: string, ifindex: number, xdp: { fd: number; flags: number; expectedFd?: number }): void {
  const nested = [netlinkAttribute(IflaXdp.FD, i32(xdp.fd)), netlinkAttribute(IflaXdp.FLAGS, i32(xdp.flags))];
  if (xdp.expectedFd !== undefined) nested.push(netlinkAttribute(IflaXdp.EXPECTED_FD, i32(xdp.expectedFd)));
  const attrs = netlinkAttribute(IFLA_XDP | Nl.ATTR_F_NESTED, Buffer.concat(nested));
  rtnetlinkRequest(Rtm.SETLINK, Nl.F_REQUEST | Nl.F_ACK, ifindex, attrs, iface);
}

/**
 * Sends one rtnetlink link request (ifinfomsg + attributes): the RTM_NEWLINK payload for a GETLINK, undefined for a
 * plain ack. NLMSG_ERROR with a non-zero code becomes a NetlinkError.
 */
function rtnetlinkRequest(type: number, flags: number, ifindex: number, attrs: Uint8Array, ifname: string): Uint8Array | undefined {
  const command = type === Rtm.GETLINK ? 'RTM_GETLINK' : 'RTM_SETLINK';
  const body = Buffer.alloc(IFINFOMSG_LEN + attrs.byteLength);
  // ifinfomsg: family AF_UNSPEC, type 0, index, flags 0, change 0.
  body.writeInt32LE(ifindex, IFINFOMSG_INDEX);
  body.set(attrs, IFINFOMSG_LEN);
  return netlinkRequest(type, flags, body, { command, detail: ifname }).find((m) => m.type === Rtm.NEWLINK)?.payload;
}

function i32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value | 0, 0);
  return b;
}
