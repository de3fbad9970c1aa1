/**
 * rtnetlink requests: one message out on a fresh NETLINK_ROUTE socket, the replies back, checked. The attach layer
 * builds the family headers (ifinfomsg, tcmsg) and attributes; framing, acks, dumps and the kernel's extended-ack
 * messages are handled here, once.
 */
import { ByteReader, decodeName } from '../base/cursor.js';
import { Errno, SysError, type SysErrorInit } from './errors.js';
import { Fd } from './fd.js';
import { netlinkReceive, netlinkSend, openNetlinkSocket } from './socket.js';

/** netlink constants (linux/netlink.h). */
export const Nl = {
  HDRLEN: 16,
  ERROR: 2,
  DONE: 3,
  F_REQUEST: 1,
  F_MULTI: 2,
  F_ACK: 4,
  F_ECHO: 8,
  F_DUMP: 0x300,
  F_CAPPED: 0x100,
  F_ACK_TLVS: 0x200,
  F_EXCL: 0x200,
  F_CREATE: 0x400,
  ATTR_F_NESTED: 0x8000,
  ATTR_TYPE_MASK: 0x3fff,
  ERR_ATTR_MSG: 1,
} as const;

/** A failed rtnetlink request, with the kernel's extended-ack message appended when it sent one. */
export class NetlinkError extends SysError {
  override name = 'NetlinkError';
  /** The kernel's explanation (NLMSGERR_ATTR_MSG), e.g. "Can't replace active BPF XDP link". */
  readonly extack: string | undefined;

  constructor(init: SysErrorInit & { readonly extack?: string | undefined }) {
    super(init);
    this.extack = init.extack;
    if (init.extack !== undefined && init.extack !== '') this.message = `${this.message}: ${init.extack}`;
  }
}

export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

let sequence = 0;

/**
 * Sends `body` (family header + attributes) as one netlink message of `type` and returns the replies: every message
 * of a dump (F_DUMP) up to NLMSG_DONE; with F_ACK the messages before the ack (an F_ECHO copy, say); otherwise the
 * first reply. NLMSG_ERROR with a non-zero code becomes a NetlinkError naming `command` and `detail`.
 */
export function netlinkRequest(type: number, flags: number, body: Uint8Array, what: { command: string; detail: string }): NetlinkMessage[] {
  const seq = (sequence = (sequence + 1) >>> 0);
  const length = Nl.HDRLEN + body.byteLength;
  const message = Buffer.alloc(length);
  message.writeUInt32LE(length, 0);
  message.writeUInt16LE(type, 4);
  message.writeUInt16LE(flags, 6);
  message.writeUInt32LE(seq, 8);
  message.set(body, Nl.HDRLEN);
  const dump = (flags & Nl.F_DUMP) === Nl.F_DUMP;
  const replies: NetlinkMessage[] = [];
  const socket = new Fd(openNetlinkSocket(), `netlink socket (${what.command})`);
  try {
    netlinkSend(socket.value, message);
    for (;;) {
      for (const reply of netlinkMessages(netlinkReceive(socket.value), what.command)) {
        if (reply.seq !== seq) continue; // not ours (cannot happen on a fresh socket, but cheap to be sure)
        if (reply.type === Nl.ERROR) {
          const error = parseNetlinkError(reply, what.command);
          if (error.errno === 0) return replies;
          throw new NetlinkError({ syscall: 'netlink', command: what.command, errno: error.errno, detail: what.detail, extack: error.extack });
        }
        if (reply.type === Nl.DONE) return replies;
        replies.push(reply);
        if (!dump && (flags & Nl.F_ACK) === 0) return replies;
      }
    }
  } finally {
    socket.close();
  }
}

/** Bounds-checked reads of a reply's fields (host order, which is what netlink uses; x86_64 and arm64 are little-endian). */
export function netlinkReader(bytes: Uint8Array, what: string): ByteReader {
  return new ByteReader(bytes, true, (field, offset, size, limit) =>
    new NetlinkError({ syscall: 'netlink', errno: Errno.EPROTO, detail: what, extack: `${field} at ${offset}+${size} lies outside the ${limit}-byte message` }));
}

/** Splits a datagram into netlink messages (each 4-byte aligned), checking every length against the datagram. */
export function netlinkMessages(datagram: Uint8Array, what = 'netlink reply'): NetlinkMessage[] {
  const r = netlinkReader(datagram, what);
  const out: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + Nl.HDRLEN <= datagram.byteLength) {
    const length = r.u32(offset, 'nlmsg_len');
    if (length < Nl.HDRLEN) {
      throw new NetlinkError({ syscall: 'netlink', errno: Errno.EPROTO, detail: what, extack: `nlmsg_len ${length} at ${offset} is below the header size` });
    }
    out.push({
      type: r.u16(offset + 4, 'nlmsg_type'),
      flags: r.u16(offset + 6, 'nlmsg_flags'),
      seq: r.u32(offset + 8, 'nlmsg_seq'),
      payload: r.sub(offset + Nl.HDRLEN, length - Nl.HDRLEN, 'nlmsg payload'),
    });
    offset += align4(length);
  }
  return out;
}

/** struct nlmsgerr (error code, then the request's header or all of it), then the extended-ack attributes. */
function parseNetlinkError(reply: NetlinkMessage, command: string): { errno: number; extack: string | undefined } {
  const r = netlinkReader(reply.payload, `${command} NLMSG_ERROR`);
  const errno = -r.i32(0, 'error');
  if ((reply.flags & Nl.F_ACK_TLVS) === 0) return { errno, extack: undefined };
  // The echoed request: its header only when the kernel capped it, else the whole message.
  const echoed = (reply.flags & Nl.F_CAPPED) !== 0 ? Nl.HDRLEN : r.u32(4, 'echoed nlmsg_len');
  const message = netlinkAttributes(reply.payload, 4 + align4(echoed), `${command} extended ack`).get(Nl.ERR_ATTR_MSG);
  if (message === undefined) return { errno, extack: undefined };
  return { errno, extack: netlinkString(message) };
}

/** rtattr / nlattr list from `start`: type (flags masked off) → payload. Later duplicates win. */
export function netlinkAttributes(bytes: Uint8Array, start: number, what: string): Map<number, Uint8Array> {
  const r = netlinkReader(bytes, what);
  const out = new Map<number, Uint8Array>();
  let offset = start;
  while (offset + 4 <= bytes.byteLength) {
    const length = r.u16(offset, 'rta_len');
    if (length < 4) break; // malformed tail: stop rather than loop
    out.set(r.u16(offset + 2, 'rta_type') & Nl.ATTR_TYPE_MASK, r.sub(offset + 4, length - 4, 'attribute payload'));
    offset += align4(length);
  }
  return out;
}

/** One attribute: length, type, payload, padded to 4 bytes. */
export function netlinkAttribute(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(align4(4 + payload.byteLength));
  out.writeUInt16LE(4 + payload.byteLength, 0);
  out.writeUInt16LE(type, 2);
  out.set(payload, 4);
  return out;
}

/** A NUL-terminated string attribute's text. */
export function netlinkString(payload: Uint8Array): string {
  const end = payload.indexOf(0);
  return decodeName(end < 0 ? payload : payload.subarray(0, end));
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}
