/**
 * One-line packet summaries in the spirit of `tcpdump -n`: addresses and ports numeric, transport and TCP flags
 * named, payload length last. Decodes Ethernet (with 802.1Q/802.1ad tags), Linux cooked (SLL) and raw IP frames;
 * anything shorter than its headers is summarised as far as it goes, never thrown on.
 */

export interface PacketSummary {
  /** 'IP', 'IP6', 'ARP', or `ethertype 0x…` / `link type N` for the rest. */
  readonly family: string;
  readonly src?: string;
  readonly dst?: string;
  /** 'tcp', 'udp', 'icmp', 'icmp6', or `ip-proto-N`. */
  readonly protocol?: string;
  readonly srcPort?: number;
  readonly dstPort?: number;
  /** tcpdump's flag letters: S, F, R, P, . (ack), U, E, W. */
  readonly tcpFlags?: string;
  /** Bytes above the transport header (TCP/UDP), of the ICMP message, or of the frame for the rest. */
  readonly payload: number;
  /** The line after the timestamp, e.g. `IP 127.0.0.1.43210 > 127.0.0.1.8080: tcp Flags [S], length 0`. */
  readonly text: string;
}

const LINK = { EN10MB: 1, RAW: 101, LINUX_SLL: 113, IPV4: 228, IPV6: 229 } as const;
const ETHERTYPE = { IPV4: 0x0800, ARP: 0x0806, IPV6: 0x86dd, VLAN: 0x8100, QINQ: 0x88a8, QINQ_OLD: 0x9100 } as const;

function ipv4(p: Uint8Array, o: number): string {
  return `${p[o]}.${p[o + 1]}.${p[o + 2]}.${p[o + 3]}`;
}

/** RFC 5952 text: lower-case hex, the longest run of ≥ 2 zero groups as `::`. */
function ipv6(p: Uint8Array, o: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((p[o + 2 * i]! << 8) | p[o + 2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

const TCP_FLAGS: ReadonlyArray<readonly [number, string]> = [[0x01, 'F'], [0x02, 'S'], [0x04, 'R'], [0x08, 'P'], [0x10, '.'], [0x20, 'U'], [0x40, 'E'], [0x80, 'W']];

const ICMP_TYPES: Readonly<Record<number, string>> = { 0: 'echo reply', 3: 'unreachable', 8: 'echo request', 11: 'time exceeded' };
const ICMP6_TYPES: Readonly<Record<number, string>> = { 128: 'echo request', 129: 'echo reply', 133: 'router solicitation', 134: 'router advertisement', 135: 'neighbor solicitation', 136: 'neighbor advertisement' };

function transport(p: Uint8Array, o: number, end: number, proto: number, src: string, dst: string, family: string): PacketSummary {
  const avail = end - o;
  if ((proto === 6 && avail >= 20) || (proto === 17 && avail >= 8)) {
    const srcPort = (p[o]! << 8) | p[o + 1]!;
    const dstPort = (p[o + 2]! << 8) | p[o + 3]!;
    const ends = `${family} ${src}.${srcPort} > ${dst}.${dstPort}`;
    if (proto === 17) {
      const payload = Math.max(0, ((p[o + 4]! << 8) | p[o + 5]!) - 8);
      return { family, src, dst, protocol: 'udp', srcPort, dstPort, payload, text: `${ends}: udp, length ${payload}` };
    }
    const headerLength = (p[o + 12]! >> 4) * 4;
    const bits = p[o + 13]!;
    const tcpFlags = TCP_FLAGS.filter(([bit]) => (bits & bit) !== 0).map(([, c]) => c).join('') || 'none';
    const payload = Math.max(0, avail - headerLength);
    return { family, src, dst, protocol: 'tcp', srcPort, dstPort, tcpFlags, payload, text: `${ends}: tcp Flags [${tcpFlags}], length ${payload}` };
  }
  if ((proto === 1 || proto === 58) && avail >= 1) {
    const names = proto === 1 ? ICMP_TYPES : ICMP6_TYPES;
    const protocol = proto === 1 ? 'icmp' : 'icmp6';
    const type = names[p[o]!] ?? `type ${p[o]}`;
    return { family, src, dst, protocol, payload: avail, text: `${family} ${src} > ${dst}: ${protocol.toUpperCase()} ${type}, length ${avail}` };
  }
  const protocol = proto === 6 ? 'tcp' : proto === 17 ? 'udp' : `ip-proto-${proto}`;
  return { family, src, dst, protocol, payload: avail, text: `${family} ${src} > ${dst}: ${protocol}, length ${avail}` };
}

function network(p: Uint8Array, o: number, ethertype: number, frameLength: number): PacketSummary {
  const end = p.byteLength;
  if (ethertype === ETHERTYPE.IPV4 && end - o >= 20) {
    const headerLength = (p[o]! & 0xf) * 4;
    const total = (p[o + 2]! << 8) | p[o + 3]!;
    // Fragments after the first carry no transport header.
    const fragmentOffset = ((p[o + 6]! & 0x1f) << 8) | p[o + 7]!;
    const stop = Math.min(end, o + Math.max(total, headerLength));
    const src = ipv4(p, o + 12);
    const dst = ipv4(p, o + 16);
    if (fragmentOffset !== 0) return { family: 'IP', src, dst, protocol: `ip-proto-${p[o + 9]}`, payload: stop - o - headerLength, text: `IP ${src} > ${dst}: fragment, length ${stop - o - headerLength}` };
    return transport(p, o + headerLength, stop, p[o + 9]!, src, dst, 'IP');
  }
  if (ethertype === ETHERTYPE.IPV6 && end - o >= 40) {
    const stop = Math.min(end, o + 40 + ((p[o + 4]! << 8) | p[o + 5]!));
    return transport(p, o + 40, stop, p[o + 6]!, ipv6(p, o + 8), ipv6(p, o + 24), 'IP6');
  }
  if (ethertype === ETHERTYPE.ARP && end - o >= 28) {
    const op = (p[o + 6]! << 8) | p[o + 7]!;
    const sender = ipv4(p, o + 14);
    const target = ipv4(p, o + 24);
    const what = op === 1 ? `Request who-has ${target} tell ${sender}` : op === 2 ? `Reply ${sender} is-at ${mac(p, o + 8)}` : `op ${op}`;
    return { family: 'ARP', src: sender, dst: target, payload: 28, text: `ARP, ${what}, length 28` };
  }
  const family = `ethertype 0x${ethertype.toString(16).padStart(4, '0')}`;
  return { family, payload: frameLength, text: `${family}, length ${frameLength}` };
}

function mac(p: Uint8Array, o: number): string {
  return Array.from(p.subarray(o, o + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Summarises one frame of the given DLT_* link type. `length` is its wire length (for the fall-back text). */
export function summarizePacket(data: Uint8Array, linkType: number, length: number = data.byteLength): PacketSummary {
  if (linkType === LINK.EN10MB && data.byteLength >= 14) {
    let o = 12;
    let ethertype = (data[o]! << 8) | data[o + 1]!;
    while ((ethertype === ETHERTYPE.VLAN || ethertype === ETHERTYPE.QINQ || ethertype === ETHERTYPE.QINQ_OLD) && data.byteLength >= o + 6) {
      o += 4;
      ethertype = (data[o]! << 8) | data[o + 1]!;
    }
    return network(data, o + 2, ethertype, length);
  }
  if (linkType === LINK.LINUX_SLL && data.byteLength >= 16) return network(data, 16, (data[14]! << 8) | data[15]!, length);
  if ((linkType === LINK.RAW || linkType === 12 || linkType === 14 || linkType === LINK.IPV4 || linkType === LINK.IPV6) && data.byteLength >= 1) {
    return network(data, 0, data[0]! >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4, length);
  }
  const family = `link type ${linkType}`;
  return { family, payload: length, text: `${family}, length ${length}` };
}

let cachedSecond = -1;
let cachedClock = '';

/** `HH:MM:SS.ffffff` in local time, as tcpdump prints timestamps. */
export function formatPacketTime(seconds: number, nanos: number): string {
  // Captures hold thousands of packets per second: the clock part is computed once per second.
  if (seconds !== cachedSecond) {
    const d = new Date(seconds * 1000);
    const two = (n: number) => (n < 10 ? `0${n}` : String(n));
    cachedClock = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.`;
    cachedSecond = seconds;
  }
  const micros = Math.floor(nanos / 1000);
  return cachedClock + (micros >= 100000 ? String(micros) : String(micros).padStart(6, '0'));
}
