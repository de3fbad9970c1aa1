/**
 * The capture readers: pcap in both byte orders and both timestamp precisions (tcpdump writes the nanosecond one
 * here, as an oracle), pcapng in both byte orders with if_tsresol, several sections and interfaces, simple and
 * enhanced packet blocks; and every kind of truncation and corruption refused with file, place and offset.
 */
import { spawnSync } from 'node:child_process'; // tcpdump rewrites captures as an oracle, argument arrays: no shell
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureCursor, CaptureError, readCapture, readCaptureHeader, summarizePacket, writePcap } from '../../src/pcap/index.js';
import { TCPDUMP } from '../cbpf/oracle.js';
import { syntheticCapture } from './frames.js';

const frames = syntheticCapture(50, 7).map((p, i) => ({ ...p, seconds: 1_700_000_000 + i, nanos: i * 1_000_123 % 1_000_000_000 }));
const dir = mkdtempSync(join(tmpdir(), 'bpf-load-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Swaps every multi-byte header field of a little-endian pcap: the same capture in big-endian byte order. */
function bigEndianPcap(le: Buffer): Buffer {
  const be = Buffer.from(le);
  be.writeUInt32BE(le.readUInt32LE(0), 0);
  be.writeUInt16BE(le.readUInt16LE(4), 4);
  be.writeUInt16BE(le.readUInt16LE(6), 6);
  for (const o of [8, 12, 16, 20]) be.writeUInt32BE(le.readUInt32LE(o), o);
  for (let o = 24; o < le.length;) {
    for (const f of [0, 4, 8, 12]) be.writeUInt32BE(le.readUInt32LE(o + f), o + f);
    o += 16 + le.readUInt32LE(o + 8);
  }
  return be;
}

/** A pcapng writer for tests: sections of interfaces and packets, in either byte order. */
function pcapng(sections: ReadonlyArray<{ littleEndian: boolean; interfaces: ReadonlyArray<{ linkType: number; tsresol?: number }>; blocks: ReadonlyArray<{ type: 'epb' | 'spb' | 'other'; iface?: number; units?: bigint; data: Uint8Array }> }>): Buffer {
  const parts: Buffer[] = [];
  for (const s of sections) {
    const block = (type: number, body: Buffer) => {
      const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
      const b = Buffer.alloc(12 + padded.length);
      const u32 = (v: number, o: number) => (s.littleEndian ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
      u32(type, 0);
      u32(b.length, 4);
      padded.copy(b, 8);
      u32(b.length, b.length - 4);
      parts.push(b);
    };
    const w = (size: number, fill: (b: Buffer, u16: (v: number, o: number) => void, u32: (v: number, o: number) => void) => void) => {
      const b = Buffer.alloc(size);
      fill(b, (v, o) => (s.littleEndian ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o)), (v, o) => (s.littleEndian ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o)));
      return b;
    };
    block(0x0a0d0d0a, w(16, (b, u16, u32) => { u32(0x1a2b3c4d, 0); u16(1, 4); u16(0, 6); b.fill(0xff, 8, 16); }));
    for (const i of s.interfaces) {
      block(1, w(i.tsresol === undefined ? 8 : 20, (b, u16, u32) => {
        u16(i.linkType, 0);
        u32(0, 4);
        if (i.tsresol !== undefined) { u16(9, 8); u16(1, 10); b.writeUInt8(i.tsresol, 12); u16(0, 16); u16(0, 18); }
      }));
    }
    for (const p of s.blocks) {
      if (p.type === 'epb') {
        const units = p.units ?? 0n;
        block(6, Buffer.concat([w(20, (_b, _u16, u32) => { u32(p.iface ?? 0, 0); u32(Number(units >> 32n), 4); u32(Number(units & 0xffffffffn), 8); u32(p.data.length, 12); u32(p.data.length, 16); }), Buffer.from(p.data)]));
      } else if (p.type === 'spb') {
        block(3, Buffer.concat([w(4, (_b, _u16, u32) => u32(p.data.length, 0)), Buffer.from(p.data)]));
      } else {
        block(5, Buffer.from(p.data)); // interface statistics: skipped by the reader
      }
    }
  }
  return Buffer.concat(parts);
}

describe('pcap', () => {
  const le = writePcap(frames);

  it('reads what it wrote, little- and big-endian, with views into the bytes', () => {
    for (const bytes of [le, bigEndianPcap(le)]) {
      const packets = [...readCapture(bytes, 'x.pcap')];
      expect(packets.map((p) => [p.index, p.seconds, p.nanos - (p.nanos % 1000), p.data.length])).toEqual(frames.map((f, i) => [i + 1, f.seconds, f.nanos - (f.nanos % 1000), f.data.length]));
      expect(packets.map((p) => Buffer.from(p.data).toString('hex'))).toEqual(frames.map((f) => Buffer.from(f.data).toString('hex')));
      expect(packets[3]!.data.buffer).toBe(bytes.buffer);
      expect(readCaptureHeader(bytes)).toEqual({ format: 'pcap', linkType: 1, snaplen: 262144 });
    }
  });

  it.runIf(TCPDUMP !== undefined)('reads tcpdump\'s own nanosecond-precision rewrite of the capture', () => {
    writeFileSync(join(dir, 'us.pcap'), writePcap(frames, { nanosecond: true }));
    const r = spawnSync(TCPDUMP!, ['-r', join(dir, 'us.pcap'), '--time-stamp-precision', 'nano', '-w', join(dir, 'ns.pcap')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const bytes = readFileSync(join(dir, 'ns.pcap'));
    expect(bytes.readUInt32LE(0)).toBe(0xa1b23c4d);
    const packets = [...readCapture(bytes)];
    expect(packets.map((p) => [p.seconds, p.nanos])).toEqual(frames.map((f) => [f.seconds, f.nanos]));
  });

  it('streams through small windows: records across window edges, ones larger than the window, same errors', () => {
    const source = (bytes: Buffer) => (into: Uint8Array, position: number) => {
      const part = bytes.subarray(position, position + into.byteLength);
      into.set(part);
      return part.byteLength;
    };
    for (const windowSize of [24, 100, 1000, 4096]) {
      const cursor = CaptureCursor.stream(source(le), 's.pcap', windowSize);
      const seen: string[] = [];
      while (cursor.next()) seen.push(`${cursor.index} ${cursor.seconds} ${cursor.length} ${Buffer.from(cursor.data()).toString('hex')}`);
      expect(seen).toEqual([...readCapture(le)].map((p) => `${p.index} ${p.seconds} ${p.length} ${Buffer.from(p.data).toString('hex')}`));
      const cut = le.subarray(0, le.length - 5);
      const walk = () => {
        const c = CaptureCursor.stream(source(cut), 'c.pcap', windowSize);
        while (c.next());
      };
      expect(walk).toThrow(/^c\.pcap: packet 50: offset \d+: truncated: \d+ bytes of packet data, \d+ left in the file$/);
      let whole = '';
      try {
        [...readCapture(cut, 'c.pcap')];
      } catch (e) {
        whole = (e as Error).message;
      }
      expect(whole).not.toBe('');
      expect(walk).toThrow(whole);
    }
  });

  const corrupt: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
    ['short file', (b) => b.subarray(0, 3), /^c\.pcap: offset 0: 3 bytes is too short for a capture file$/],
    ['unknown magic', (b) => Buffer.concat([Buffer.from('GIF8'), b.subarray(4)]), /^c\.pcap: offset 0: not a pcap or pcapng file \(magic 0x38464947\)$/],
    ['truncated global header', (b) => b.subarray(0, 20), /^c\.pcap: pcap header: offset 0: truncated/],
    ['version 3', (b) => { const c = Buffer.from(b); c.writeUInt16LE(3, 4); return c; }, /pcap header: offset 4: version 3\.4, only 2\.x exists/],
    ['truncated record header', (b) => b.subarray(0, 24 + 16 + frames[0]!.data.length + 10), /^c\.pcap: packet 2: offset \d+: truncated record header \(10 of 16 bytes\)$/],
    ['truncated packet data', (b) => b.subarray(0, b.length - 1), /^c\.pcap: packet 50: offset \d+: truncated: \d+ bytes of packet data, \d+ left in the file$/],
    ['huge captured length', (b) => { const c = Buffer.from(b); c.writeUInt32LE(0x7fffffff, 24 + 8); return c; }, /packet 1: offset 24: captured length 2147483647 exceeds the snapshot length 262144/],
    ['fraction of a second too big', (b) => { const c = Buffer.from(b); c.writeUInt32LE(1_000_000, 24 + 4); return c; }, /packet 1: offset 24: timestamp fraction 1000000 is not below one second/],
  ];
  for (const [what, damage, message] of corrupt) {
    it(`refuses: ${what}`, () => {
      const read = () => [...readCapture(damage(le), 'c.pcap')];
      expect(read).toThrow(CaptureError);
      expect(read).toThrow(message);
    });
  }
});

describe('pcapng', () => {
  const data = frames.slice(0, 4).map((f) => f.data);
  const file = pcapng([
    { littleEndian: true, interfaces: [{ linkType: 1 }, { linkType: 113, tsresol: 9 }], blocks: [
      { type: 'epb', iface: 0, units: 1_700_000_000_123_456n, data: data[0]! },
      { type: 'other', data: new Uint8Array(8) },
      { type: 'epb', iface: 1, units: 1_700_000_001_000_000_007n, data: data[1]! },
    ] },
    { littleEndian: false, interfaces: [{ linkType: 101, tsresol: 0x80 | 20 }], blocks: [
      { type: 'epb', iface: 0, units: (5n << 20n) + (1n << 19n), data: data[2]! },
      { type: 'spb', data: data[3]! },
    ] },
  ]);

  it('reads sections of either byte order, their interfaces, resolutions and packet block kinds', () => {
    const packets = [...readCapture(file, 'x.pcapng')];
    expect(packets.map((p) => ({ index: p.index, seconds: p.seconds, nanos: p.nanos, linkType: p.linkType, bytes: Buffer.from(p.data).toString('hex') }))).toEqual([
      { index: 1, seconds: 1_700_000_000, nanos: 123_456_000, linkType: 1, bytes: Buffer.from(data[0]!).toString('hex') },
      { index: 2, seconds: 1_700_000_001, nanos: 7, linkType: 113, bytes: Buffer.from(data[1]!).toString('hex') },
      { index: 3, seconds: 5, nanos: 500_000_000, linkType: 101, bytes: Buffer.from(data[2]!).toString('hex') },
      { index: 4, seconds: 0, nanos: 0, linkType: 101, bytes: Buffer.from(data[3]!).toString('hex') },
    ]);
    expect(readCaptureHeader(file)).toEqual({ format: 'pcapng', linkType: 1, snaplen: 0 });
  });

  const corrupt: Array<[string, () => Buffer, RegExp]> = [
    ['starts with an interface block instead of a section header', () => Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), file.subarray(4, 28), Buffer.from([1, 0, 0, 0, 12, 0, 0, 0, 12, 0, 0, 0])]).subarray(28), /not a pcap or pcapng file/],
    ['bad byte-order magic', () => { const c = Buffer.from(file); c.writeUInt32LE(0x12345678, 8); return c; }, /^n: block 1: offset 8: section header byte-order magic 0x12345678/],
    ['block length not a multiple of 4', () => { const c = Buffer.from(file); c.writeUInt32LE(30, 4); return c; }, /^n: block 1: offset 4: block length 30 is not a multiple of 4/],
    ['trailing length differs', () => { const c = Buffer.from(file); c.writeUInt32LE(99, 24); return c; }, /^n: block 1: offset 24: trailing block length 99 differs from the leading 28$/],
    ['truncated block', () => file.subarray(0, file.length - 2), /^n: block \d+: offset \d+: truncated: the block says \d+ bytes, \d+ are left$/],
    ['packet on an undeclared interface', () => { const c = Buffer.from(file); c.writeUInt32LE(7, 28 + 20 + 32 + 8); return c; }, /packet on interface 7, but the section describes 2/],
    ['captured length past the block', () => { const c = Buffer.from(file); c.writeUInt32LE(5000, 28 + 20 + 32 + 8 + 12); return c; }, /^n: packet 1 \(block 4\): offset \d+: captured length 5000 overruns the block/],
  ];
  for (const [what, damage, message] of corrupt) {
    it(`refuses: ${what}`, () => {
      const read = () => [...readCapture(damage(), 'n')];
      expect(read).toThrow(CaptureError);
      expect(read).toThrow(message);
    });
  }
});

describe('summaries', () => {
  it('reads like tcpdump -n for TCP, UDP, ICMP, ARP and IPv6, and never throws on short frames', () => {
    const texts = frames.map((f) => summarizePacket(f.data, 1).text);
    expect(texts.some((t) => /^IP \d+\.\d+\.\d+\.\d+\.\d+ > \d+\.\d+\.\d+\.\d+\.\d+: tcp Flags \[[SFRP.UEW]+\], length \d+$/.test(t))).toBe(true);
    expect(texts.some((t) => /^IP6 [0-9a-f:]+\.\d+ > [0-9a-f:]+\.\d+: (tcp|udp)/.test(t))).toBe(true);
    expect(texts.some((t) => /^ARP, (Request who-has|Reply)/.test(t))).toBe(true);
    for (let n = 0; n < 60; n++) expect(() => summarizePacket(frames[0]!.data.subarray(0, n), 1)).not.toThrow();
  });
});
