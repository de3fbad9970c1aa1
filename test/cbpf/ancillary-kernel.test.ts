/**
 * Ancillary loads (`ld [proto]`, `ld [mark]`, `ld [vlan_tci]` …) in our eBPF translation, against the kernel's own
 * classic path. Known Ethernet frames are injected on lo through a packet socket (some with SO_MARK, some 802.1Q or
 * 802.1ad tagged, to host, multicast and other-host addresses). Each classic program reads one field and
 * returns 8 of its bits plus one, so the length a packet socket receives is that byte of the value. Every program is attached
 * three ways at once — classic with SO_ATTACH_FILTER (the kernel translates it), our translation loaded as a
 * socket filter with SO_ATTACH_BPF — and our translation also runs under BPF_PROG_TEST_RUN on the same frames.
 *
 * What cannot agree, and why (asserted as far as it goes):
 *  - vlan_tci / vlanp / vlan_tpid and proto of tagged frames: the receive path moves the tag out of the frame into
 *    skb->vlan_* (skb_vlan_untag); a test run builds its skb from the bytes with no untagging, and refuses vlan
 *    fields in its context. Live, translation and classic agree; under test run the tag is still in the frame.
 *  - cpu: the CPU the packet is handled on; a test run runs on the caller's CPU. Live both read the same CPU.
 *  - random: a fresh number per run; asserted to vary.
 *  - rxhash: a test run's skb has no hash (0); live, whatever the receive path computed (both live paths the same).
 */
import { writeSync } from 'node:fs';
import { cpus } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { ANCILLARY, type ClassicProgram, classicToEbpf, encodeClassicProgram, SKF_AD_OFF } from '../../src/cbpf/index.js';
import { loadClassicFilter } from '../../src/load/index.js';
import { testRunProgram } from '../../src/load/test-run.js';
import {
  attachClassicSocketFilter, attachSocketFilter, Fd, ifNameToIndex, openRawSocket, receivePacket, setSocketOption, Sock,
} from '../../src/sys/index.js';
import { kernelTest } from '../helpers/kernel.js';

const SO_MARK = 36;
const SO_RCVBUFFORCE = 33;
const ETH_P_EXPERIMENTAL = 0x88b5; // IEEE local experimental: no protocol handler takes these frames
/** Longer than any 8-bit value + 1, shorter than the page BPF_PROG_TEST_RUN copies a packet into. */
const FRAME_BYTES = 1000;
const ARPHRD_LOOPBACK = 772;
const PACKET = { HOST: 0, MULTICAST: 2, OTHERHOST: 3 } as const;

/** Our frames carry this in source MAC bytes 2-5 (`ld [8]`), so other traffic on lo never passes the programs. */
const MARKER = (0x10ad0000 | (process.pid & 0xffff)) >>> 0;

interface Frame {
  readonly bytes: Buffer;
  readonly mark: number;
  readonly tag?: { readonly tpid: number; readonly tci: number };
  readonly pktType: number;
}

function frame(dst: readonly number[], mark: number, pktType: number, tag?: Frame['tag']): Frame {
  const bytes = Buffer.alloc(FRAME_BYTES, 0x5a);
  Buffer.from(dst).copy(bytes, 0);
  bytes.writeUInt16BE(0x02bf, 6);
  bytes.writeUInt32BE(MARKER, 8);
  let o = 12;
  if (tag !== undefined) {
    bytes.writeUInt16BE(tag.tpid, 12);
    bytes.writeUInt16BE(tag.tci, 14);
    o = 16;
  }
  bytes.writeUInt16BE(ETH_P_EXPERIMENTAL, o);
  return { bytes, mark, pktType, ...(tag === undefined ? {} : { tag }) };
}

const FRAMES: readonly Frame[] = [
  frame([0, 0, 0, 0, 0, 0], 0, PACKET.HOST),
  // lo's broadcast address is 00:00:00:00:00:00 (`ip link show lo`): ff:ff:ff:ff:ff:ff is just multicast there.
  frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0xcafe1234, PACKET.MULTICAST),
  frame([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01], 7, PACKET.MULTICAST, { tpid: 0x8100, tci: 0xa005 }),
  frame([0x02, 0x00, 0x00, 0x00, 0x00, 0x09], 0xdeadbeef, PACKET.OTHERHOST, { tpid: 0x88a8, tci: 0x0123 }),
  frame([0, 0, 0, 0, 0, 0], 0x80000001, PACKET.HOST, { tpid: 0x8100, tci: 0x0fff }),
];

/** The fields: an ancillary load (or `ld len`), and the value the kernel must see for a frame as received live. */
type Field = { readonly name: string; readonly load: { code: number; k: number }; readonly live?: (f: Frame) => number };
const anc = (name: string) => ({ code: 0x20, k: (SKF_AD_OFF + ANCILLARY.find((a) => a.name === name)!.offset) >>> 0 });
const FIELDS: readonly Field[] = [
  // After untagging, skb->protocol is the inner type.
  { name: 'proto', load: anc('proto'), live: () => ETH_P_EXPERIMENTAL },
  { name: 'type', load: anc('type'), live: (f) => f.pktType },
  { name: 'ifidx', load: anc('ifidx'), live: () => ifNameToIndex('lo') },
  { name: 'mark', load: anc('mark'), live: (f) => f.mark },
  { name: 'queue', load: anc('queue'), live: () => 0 },
  { name: 'hatype', load: anc('hatype'), live: () => ARPHRD_LOOPBACK },
  { name: 'vlan_tci', load: anc('vlan_tci'), live: (f) => f.tag?.tci ?? 0 },
  { name: 'vlanp', load: anc('vlanp'), live: (f) => (f.tag === undefined ? 0 : 1) },
  { name: 'vlan_tpid', load: anc('vlan_tpid'), live: (f) => f.tag?.tpid ?? 0 },
  { name: 'len', load: { code: 0x80, k: 0 }, live: (f) => f.bytes.byteLength - (f.tag === undefined ? 0 : 4) },
  { name: 'rxhash', load: anc('rxhash') },
  { name: 'cpu', load: anc('cpu') },
  { name: 'random', load: anc('random') },
];

/** `ld [8]; jeq #MARKER; <load>; rsh #shift; and #0xff; add #1; ret a` — else `ret #0`. */
function chunkProgram(load: { code: number; k: number }, shift: number): ClassicProgram {
  return [
    { code: 0x20, jt: 0, jf: 0, k: 8 },
    { code: 0x15, jt: 0, jf: 5, k: MARKER },
    { ...load, jt: 0, jf: 0 },
    { code: 0x74, jt: 0, jf: 0, k: shift },
    { code: 0x54, jt: 0, jf: 0, k: 0xff },
    { code: 0x04, jt: 0, jf: 0, k: 1 },
    { code: 0x16, jt: 0, jf: 0, k: 0 },
    { code: 0x06, jt: 0, jf: 0, k: 0 },
  ];
}

const opened: Fd[] = [];
afterAll(() => {
  for (const fd of opened.splice(0)) fd.close();
});
/** Kept open until the file is done; a raw socket number is wrapped here, a loaded program comes as an Fd. */
function track(fd: number | Fd): number {
  const owned = typeof fd === 'number' ? new Fd(fd, 'test socket') : fd;
  opened.push(owned);
  return owned.value;
}

/** A packet socket on lo with a big receive buffer, a filter attached, and the queue drained of what came before. */
function receiver(attach: (fd: number) => void): number {
  const fd = track(openRawSocket('lo'));
  const size = Buffer.alloc(4);
  size.writeInt32LE(8 << 20, 0);
  setSocketOption(fd, Sock.SOL_SOCKET, SO_RCVBUFFORCE, size, 'SO_RCVBUFFORCE');
  attach(fd);
  const scratch = Buffer.alloc(64);
  while (receivePacket(fd, scratch) !== undefined);
  return fd;
}

/** The values (a byte + 1, as lengths) of the arriving copies queued on `fd`; the outgoing copies are skipped. */
function arrived(fd: number): number[] {
  const scratch = Buffer.alloc(64);
  const values: number[] = [];
  for (let p = receivePacket(fd, scratch); p !== undefined; p = receivePacket(fd, scratch)) {
    if (p.pktType !== Sock.PACKET_OUTGOING) values.push(p.length);
  }
  return values;
}

const SHIFTS = [0, 8, 16, 24];
const combine = (bytes: readonly number[]) => bytes.reduce((v, b, i) => v + (b - 1) * 2 ** SHIFTS[i]!, 0);

describe('ancillary loads: our translation against the kernel\'s classic path', () => {
  kernelTest('live (SO_ATTACH_FILTER vs SO_ATTACH_BPF) and under BPF_PROG_TEST_RUN', () => {
    // Per field, four programs (one per byte), each attached classic and as our translation.
    const chunks = FIELDS.flatMap((field) => SHIFTS.map((shift) => {
      const program = chunkProgram(field.load, shift);
      const classic = receiver((fd) => attachClassicSocketFilter(fd, encodeClassicProgram(program)));
      const translated = track(loadClassicFilter(program, { type: 'socket_filter', name: `anc_${field.name}`, deviceType: ARPHRD_LOOPBACK }));
      const translation = receiver((fd) => attachSocketFilter(fd, translated));
      const testRun = track(loadClassicFilter(program, { type: 'sched_cls', name: `anc_${field.name}`, deviceType: ARPHRD_LOOPBACK }));
      return { field, shift, classic, translation, testRun };
    }));
    const plain = track(openRawSocket('lo'));
    const marked = new Map<number, number>();
    const sender = (mark: number) => {
      let fd = marked.get(mark);
      if (fd === undefined) {
        fd = mark === 0 ? plain : track(openRawSocket('lo'));
        const value = Buffer.alloc(4);
        value.writeUInt32LE(mark, 0);
        if (mark !== 0) setSocketOption(fd, Sock.SOL_SOCKET, SO_MARK, value, 'SO_MARK');
        marked.set(mark, fd);
      }
      return fd;
    };

    const live = new Map<string, { classic: number[]; translation: number[]; testRun: number[] }>();
    for (const f of FRAMES) {
      expect(writeSync(sender(f.mark), f.bytes)).toBe(FRAME_BYTES);
      // A test run of the translation on the same bytes, with the same mark (the one __sk_buff field a test run's
      // context may set that the frame does not carry).
      const ctx = Buffer.alloc(192);
      ctx.writeUInt32LE(f.mark, 8);
      for (const c of chunks) {
        const key = `${c.field.name}/${c.shift}`;
        const row = live.get(key) ?? { classic: [], translation: [], testRun: [] };
        row.testRun.push(testRunProgram({ fd: c.testRun, name: key, type: 'sched_cls' }, { data: f.bytes, ctx }).retval);
        live.set(key, row);
      }
    }
    // Delivery on lo happens in the sender's softirq; give a loaded machine a moment anyway.
    const deadline = Date.now() + 5000;
    for (const c of chunks) {
      const row = live.get(`${c.field.name}/${c.shift}`)!;
      while (row.classic.length < FRAMES.length || row.translation.length < FRAMES.length) {
        row.classic.push(...arrived(c.classic));
        row.translation.push(...arrived(c.translation));
        if (Date.now() > deadline) break;
      }
    }

    const value = (name: string, path: 'classic' | 'translation' | 'testRun') =>
      FRAMES.map((_, i) => combine(SHIFTS.map((shift) => live.get(`${name}/${shift}`)![path][i]!)));
    const nproc = cpus().length;
    for (const { name, live: expected } of FIELDS) {
      const classic = value(name, 'classic');
      const translation = value(name, 'translation');
      const testRun = value(name, 'testRun');
      expect({ name, frames: live.get(`${name}/0`)!.classic.length }).toEqual({ name, frames: FRAMES.length });
      if (name !== 'random') expect({ name, translation }).toEqual({ name, translation: classic });
      if (expected !== undefined) expect({ name, classic }).toEqual({ name, classic: FRAMES.map(expected) });
      FRAMES.forEach((f, i) => {
        const what = { name, frame: i };
        if (f.tag === undefined && expected !== undefined) {
          expect({ ...what, testRun: testRun[i] }).toEqual({ ...what, testRun: classic[i] });
        } else if (f.tag !== undefined) {
          // Under test run the tag is still in the frame: proto is the tag's TPID, no vlan fields, 4 more bytes.
          const untagged: Record<string, number> = { proto: f.tag.tpid, vlan_tci: 0, vlanp: 0, vlan_tpid: 0, len: FRAME_BYTES };
          if (name in untagged) expect({ ...what, testRun: testRun[i] }).toEqual({ ...what, testRun: untagged[name] });
          else if (expected !== undefined) expect({ ...what, testRun: testRun[i] }).toEqual({ ...what, testRun: classic[i] });
        }
      });
      if (name === 'cpu') for (const v of [...classic, ...testRun]) expect(v).toBeLessThan(nproc);
      if (name === 'rxhash') expect(testRun).toEqual(FRAMES.map(() => 0));
      if (name === 'random') expect(new Set([...classic, ...translation, ...testRun]).size).toBeGreaterThan(FRAMES.length);
    }
  }, 60_000);
});

describe('ancillary loads the translation cannot make', () => {
  const load = (name: string): ClassicProgram => [{ ...anc(name), jt: 0, jf: 0 }, { code: 0x16, jt: 0, jf: 0, k: 0 }];
  it('hatype needs the device type as a fact; netlink attributes and the payload offset have no __sk_buff field', () => {
    expect(() => classicToEbpf(load('hatype'), 'f')).toThrow(/^f: insn 0: ancillary load \[hatype\] \(SKF_AD_HATYPE\) reads the device type, which no struct __sk_buff field holds/);
    expect(classicToEbpf(load('hatype'), 'f', { deviceType: ARPHRD_LOOPBACK }).some((i) => i.imm === ARPHRD_LOOPBACK)).toBe(true);
    for (const name of ['nla', 'nlan', 'poff']) {
      expect(() => classicToEbpf(load(name), 'f')).toThrow(new RegExp(`^f: insn 0: ancillary load \\[${name}\\] \\(SKF_AD_\\w+\\) has no struct __sk_buff field`));
    }
  });
});
