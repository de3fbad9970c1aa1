/**
 * Synthetic Ethernet frames for capture tests and the bench: a seeded mix of IPv4/IPv6 TCP, UDP, ICMP, IGMP, GRE,
 * SCTP, fragments, ARP, VLAN- and MPLS-tagged, PPPoE, LLDP frames with ports, hosts, flags and lengths that the
 * expressions in test/cbpf/expressions.ts tell apart. Checksums are left zero: filters never read them.
 */

/** xorshift32: the same frames on every run. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

const MACS = ['00:11:22:33:44:55', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:fb', '02:00:00:00:00:01', '02:00:00:00:00:02', '01:80:c2:00:00:0e'];
const V4 = ['10.0.0.1', '10.0.0.2', '10.1.1.1', '127.0.0.1', '192.168.1.63', '192.168.1.249', '172.16.5.4', '172.31.255.1', '224.0.0.251', '8.8.8.8', '192.168.0.1'];
const V6 = ['::1', 'fe80::1', 'fe80::2', '2001:db8::1', 'ff02::fb'];
const PORTS = [0, 22, 53, 67, 80, 123, 443, 514, 1000, 1500, 2000, 2001, 5000, 5050, 5353, 7070, 8000, 8080, 9, 65535, 40000];

function macBytes(text: string): number[] {
  return text.split(':').map((h) => parseInt(h, 16));
}
function v4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}
function v6Bytes(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = parse(head);
  const t = parse(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}
const u16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];

function l4(rand: () => number, proto: number): number[] {
  const payload = Array.from({ length: pick(rand, [0, 0, 1, 4, 20, 100, 600, 1400]) }, (_, i) => (i * 7) & 0xff);
  if (rand() < 0.1 && proto === 6) payload.splice(0, 0, ...[...'GET / HTTP/1.1\r\n'].map((c) => c.charCodeAt(0)));
  if (proto === 6) {
    const offsetWords = pick(rand, [5, 5, 8]);
    const flags = pick(rand, [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x29, 0xc2]);
    return [...u16(pick(rand, PORTS)), ...u16(pick(rand, PORTS)), 0, 0, 0, 1, 0, 0, 0, 0, offsetWords << 4, flags, 0xff, 0xff, 0, 0, 0, 0,
      ...new Array<number>((offsetWords - 5) * 4).fill(1), ...payload];
  }
  if (proto === 17) return [...u16(pick(rand, PORTS)), ...u16(pick(rand, PORTS)), ...u16(8 + payload.length), 0, 0, ...payload];
  if (proto === 1) return [pick(rand, [0, 8, 3, 11]), 0, 0, 0, 0, 1, 0, 1, ...payload.slice(0, 56)];
  if (proto === 58) return [pick(rand, [128, 129, 135, 136]), 0, 0, 0, 0, 1, 0, 1, ...payload.slice(0, 56)];
  if (proto === 132) return [...u16(pick(rand, PORTS)), ...u16(pick(rand, PORTS)), 0, 0, 0, 0, 0, 0, 0, 0, ...payload.slice(0, 32)];
  return payload.slice(0, 40);
}

function ipv4(rand: () => number): number[] {
  const proto = pick(rand, [6, 6, 6, 17, 17, 1, 2, 47, 132]);
  const ihl = pick(rand, [5, 5, 5, 6]);
  const body = l4(rand, proto);
  const total = ihl * 4 + body.length;
  const fragment = rand() < 0.05 ? pick(rand, [0x2000, 0x00b9, 0x20b9]) : pick(rand, [0, 0x4000]);
  return [(4 << 4) | ihl, pick(rand, [0, 0xb8, 0x10]), ...u16(total), 0, 1, ...u16(fragment), pick(rand, [1, 64, 63, 128, 255]), proto, 0, 0,
    ...v4Bytes(pick(rand, V4)), ...v4Bytes(pick(rand, V4)), ...new Array<number>((ihl - 5) * 4).fill(1), ...body];
}

function ipv6(rand: () => number): number[] {
  const proto = pick(rand, [6, 17, 58, 58, 132]);
  const body = l4(rand, proto);
  return [0x60, 0, 0, 0, ...u16(body.length), proto, 64, ...v6Bytes(pick(rand, V6)), ...v6Bytes(pick(rand, V6)), ...body];
}

function arp(rand: () => number): number[] {
  return [0, 1, 8, 0, 6, 4, 0, pick(rand, [1, 2]), ...macBytes(pick(rand, MACS)), ...v4Bytes(pick(rand, V4)), 0, 0, 0, 0, 0, 0, ...v4Bytes(pick(rand, V4))];
}

/** One frame: Ethernet header, optional 802.1Q / MPLS / PPPoE encapsulation, then a network packet. */
export function randomFrame(rand: () => number): Uint8Array {
  const header = [...macBytes(pick(rand, MACS)), ...macBytes(pick(rand, MACS))];
  const kind = rand();
  let rest: number[];
  if (kind < 0.5) rest = [...u16(0x0800), ...ipv4(rand)];
  else if (kind < 0.65) rest = [...u16(0x86dd), ...ipv6(rand)];
  else if (kind < 0.72) rest = [...u16(0x0806), ...arp(rand)];
  else if (kind < 0.8) rest = [...u16(0x8100), ...u16(pick(rand, [10, 100, 200])), ...u16(0x0800), ...ipv4(rand)];
  else if (kind < 0.85) rest = [...u16(0x8847), 0, 0, pick(rand, [0x51, 0x61]), 64, ...ipv4(rand)]; // MPLS label 5 or 6, bottom of stack
  else if (kind < 0.9) rest = [...u16(0x8864), 0x11, 0, ...u16(0x27), ...u16(0), ...u16(0x0021), ...ipv4(rand)];
  else if (kind < 0.94) rest = [...u16(0x88cc), 2, 7, 4, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0];
  else rest = [...u16(pick(rand, [0x0026, 0x05dc])), 0x42, 0x42, 0x03, ...new Array<number>(35).fill(0)]; // 802.3 + LLC (STP)
  return Uint8Array.from([...header, ...rest]);
}

/** `count` frames with timestamps index.000000 (seconds = 1-based index), so tcpdump -tt output maps back to indices. */
export function syntheticCapture(count: number, seed = 15): Array<{ seconds: number; nanos: number; data: Uint8Array }> {
  const rand = prng(seed);
  return Array.from({ length: count }, (_, i) => ({ seconds: i + 1, nanos: 0, data: randomFrame(rand) }));
}
