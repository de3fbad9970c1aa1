/**
 * Sockets: the raw AF_PACKET socket socket-filter programs attach to (samples/bpf's open_raw_sock), and bare netlink
 * send/receive for the attach layer's rtnetlink messages (it builds and parses the messages itself).
 */
import { Errno, SysError } from './errors.js';
import {
  AttrWriter, rawBind, rawClose, rawGetsockopt, rawIfNameToIndex, rawRecv, rawRecvFrom, rawSendto, rawSetsockopt, rawSocket,
} from './ffi.js';

/** Socket-level constants from the generic Linux uapi (identical on x86-64 and arm64). */
export const Sock = {
  AF_NETLINK: 16,
  AF_PACKET: 17,
  SOCK_RAW: 3,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  ETH_P_ALL: 0x0003,
  SOL_SOCKET: 1,
  SO_ATTACH_FILTER: 26,
  SO_DETACH_BPF: 27, // also SO_DETACH_FILTER: one option detaches either kind
  SO_LOCK_FILTER: 44,
  SO_ATTACH_BPF: 50,
  SOL_NETLINK: 270,
  NETLINK_ROUTE: 0,
  NETLINK_EXT_ACK: 11,
  MSG_PEEK: 0x2,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  /** sockaddr_ll.sll_pkttype values (linux/if_packet.h). */
  PACKET_HOST: 0,
  PACKET_BROADCAST: 1,
  PACKET_MULTICAST: 2,
  PACKET_OTHERHOST: 3,
  PACKET_OUTGOING: 4,
} as const;

/** struct sockaddr_ll / sockaddr_nl offsets (linux/if_packet.h, linux/netlink.h). */
export const SOCKADDR_LL = { size: 20, sll_family: 0, sll_protocol: 2, sll_ifindex: 4, sll_hatype: 8, sll_pkttype: 10 } as const;
export const SOCKADDR_NL = { size: 12, nl_family: 0, nl_pid: 4, nl_groups: 8 } as const;

function check(ret: number, syscall: string, detail: string, command?: string): number {
  if (ret >= 0) return ret;
  throw new SysError({ syscall, errno: -ret, detail, ...(command === undefined ? {} : { command }) });
}

/** if_nametoindex(3); throws SysError (ENODEV) for an unknown interface. */
export function ifNameToIndex(ifname: string): number {
  return check(rawIfNameToIndex(ifname), 'if_nametoindex', ifname);
}

function htons(value: number): number {
  return ((value & 0xff) << 8) | ((value >> 8) & 0xff);
}

/**
 * A raw packet socket that sees every frame on `ifname`: socket(PF_PACKET, SOCK_RAW|SOCK_NONBLOCK|SOCK_CLOEXEC,
 * htons(ETH_P_ALL)) bound to the interface. The caller owns the fd.
 */
export function openRawSocket(ifname: string): number {
  const ifindex = ifNameToIndex(ifname);
  const protocol = htons(Sock.ETH_P_ALL);
  const fd = check(rawSocket(Sock.AF_PACKET, Sock.SOCK_RAW | Sock.SOCK_NONBLOCK | Sock.SOCK_CLOEXEC, protocol), 'socket', `AF_PACKET on ${ifname}`);
  const L = SOCKADDR_LL;
  // sll_protocol is in network byte order like the socket() protocol argument; the rest is host order.
  const addr = new AttrWriter(L.size).u16(L.sll_family, Sock.AF_PACKET).u16(L.sll_protocol, protocol).u32(L.sll_ifindex, ifindex);
  const ret = rawBind(fd, addr.bytes);
  if (ret < 0) {
    rawClose(fd); // the setup error is the one worth reporting, not a close failure
    check(ret, 'bind', `AF_PACKET on ${ifname} (ifindex ${ifindex})`);
  }
  return fd;
}

function intOption(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

/** setsockopt(2) with raw option bytes. */
export function setSocketOption(fd: number, level: number, name: number, value: Uint8Array, what = `option ${level}/${name}`): void {
  check(rawSetsockopt(fd, level, name, value), 'setsockopt', `fd ${fd}`, what);
}

/** getsockopt(2) into `value`; returns the option length the kernel reported. */
export function getSocketOption(fd: number, level: number, name: number, value: Uint8Array, what = `option ${level}/${name}`): number {
  return check(rawGetsockopt(fd, level, name, value), 'getsockopt', `fd ${fd}`, what);
}

/** SO_ATTACH_BPF: run the socket-filter program on every packet this socket receives. */
export function attachSocketFilter(sockFd: number, progFd: number): void {
  setSocketOption(sockFd, Sock.SOL_SOCKET, Sock.SO_ATTACH_BPF, intOption(progFd), 'SO_ATTACH_BPF');
}

/** struct sock_fprog { unsigned short len; struct sock_filter *filter; } on a 64-bit ABI. */
const SOCK_FPROG = { size: 16, len: 0, filter: 8 } as const;

/**
 * SO_ATTACH_FILTER: a classic program (struct sock_filter bytes, host order) filters what this socket receives.
 * The kernel checks it (EINVAL for a program bpf_check_classic refuses) and translates it to eBPF itself.
 */
export function attachClassicSocketFilter(sockFd: number, filter: Uint8Array): void {
  const fprog = new AttrWriter(SOCK_FPROG.size).u16(SOCK_FPROG.len, filter.byteLength / 8).pointer(SOCK_FPROG.filter, filter);
  try {
    setSocketOption(sockFd, Sock.SOL_SOCKET, Sock.SO_ATTACH_FILTER, fprog.bytes, 'SO_ATTACH_FILTER');
  } finally {
    fprog.release();
  }
}

/** SO_LOCK_FILTER: from now on the socket's filter can be neither replaced nor detached (EPERM), even by root. */
export function lockSocketFilter(sockFd: number): void {
  setSocketOption(sockFd, Sock.SOL_SOCKET, Sock.SO_LOCK_FILTER, intOption(1), 'SO_LOCK_FILTER');
}

export interface ReceivedPacket {
  /** Bytes copied into the buffer (≤ its size). */
  readonly captured: number;
  /** The packet's whole length (MSG_TRUNC reports it even when the buffer was smaller). */
  readonly length: number;
  /** sll_pkttype: Sock.PACKET_HOST, PACKET_OUTGOING … */
  readonly pktType: number;
  /** sll_hatype: ARPHRD_* of the interface it came through. */
  readonly haType: number;
  readonly ifindex: number;
}

const recvAddr = Buffer.alloc(SOCKADDR_LL.size);
const recvAddrLen = Buffer.alloc(4);

/**
 * One packet from a packet socket without blocking, or undefined when none is queued (EAGAIN). The frame goes to
 * `buf` (cut to its size); its true length, direction and interface come back.
 */
export function receivePacket(fd: number, buf: Uint8Array): ReceivedPacket | undefined {
  for (;;) {
    recvAddrLen.writeUInt32LE(SOCKADDR_LL.size, 0);
    const length = rawRecvFrom(fd, buf, Sock.MSG_DONTWAIT | Sock.MSG_TRUNC, recvAddr, recvAddrLen);
    if (length === -Errno.EINTR) continue;
    if (length === -Errno.EAGAIN) return undefined;
    check(length, 'recvfrom', `packet socket fd ${fd}`);
    return {
      captured: Math.min(length, buf.byteLength),
      length,
      pktType: recvAddr.readUInt8(SOCKADDR_LL.sll_pkttype),
      haType: recvAddr.readUInt16LE(SOCKADDR_LL.sll_hatype),
      ifindex: recvAddr.readInt32LE(SOCKADDR_LL.sll_ifindex),
    };
  }
}

/** SO_DETACH_BPF; throws SysError ENOENT when no filter is attached. */
export function detachSocketFilter(sockFd: number): void {
  setSocketOption(sockFd, Sock.SOL_SOCKET, Sock.SO_DETACH_BPF, intOption(0), 'SO_DETACH_BPF');
}

function netlinkAddress(): AttrWriter {
  // nl_pid 0: the kernel as destination, or "assign me a port id" when binding.
  return new AttrWriter(SOCKADDR_NL.size).u16(SOCKADDR_NL.nl_family, Sock.AF_NETLINK);
}

/**
 * A bound netlink socket (NETLINK_ROUTE by default) with extended acks on, so kernel errors come with a message.
 * The caller owns the fd.
 */
export function openNetlinkSocket(protocol: number = Sock.NETLINK_ROUTE): number {
  const fd = check(rawSocket(Sock.AF_NETLINK, Sock.SOCK_RAW | Sock.SOCK_CLOEXEC, protocol), 'socket', `AF_NETLINK protocol ${protocol}`);
  // Extended acks are a nicety (4.12+): a kernel without them still answers, so ENOPROTOOPT is fine.
  const ack = rawSetsockopt(fd, Sock.SOL_NETLINK, Sock.NETLINK_EXT_ACK, intOption(1));
  const ret = ack < 0 && ack !== -Errno.ENOPROTOOPT ? ack : rawBind(fd, netlinkAddress().bytes);
  if (ret < 0) {
    rawClose(fd); // the setup error is the one worth reporting, not a close failure
    check(ret, ack < 0 ? 'setsockopt' : 'bind', `AF_NETLINK protocol ${protocol}`, ack < 0 ? 'NETLINK_EXT_ACK' : undefined);
  }
  return fd;
}

/** Sends one netlink message (or a batch of them) to the kernel; returns the bytes sent. */
export function netlinkSend(fd: number, message: Uint8Array): number {
  for (;;) {
    const ret = rawSendto(fd, message, 0, netlinkAddress().bytes);
    if (ret !== -Errno.EINTR) return check(ret, 'sendto', `netlink fd ${fd}`);
  }
}

/**
 * Receives the next netlink datagram whole: MSG_PEEK|MSG_TRUNC reports its real length first, so a large dump part
 * is never cut. Blocks until the kernel has something to say.
 */
export function netlinkReceive(fd: number): Buffer {
  const probe = Buffer.alloc(16);
  for (;;) {
    const length = rawRecv(fd, probe, Sock.MSG_PEEK | Sock.MSG_TRUNC);
    if (length === -Errno.EINTR) continue;
    check(length, 'recvfrom', `netlink fd ${fd}`);
    const message = Buffer.alloc(length);
    const got = rawRecv(fd, message, 0);
    if (got === -Errno.EINTR) continue;
    return message.subarray(0, check(got, 'recvfrom', `netlink fd ${fd}`));
  }
}
