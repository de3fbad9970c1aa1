import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BPF_ATTR, BPF_LINK_INFO, BPF_MAP_INFO, BPF_PROG_INFO, BpfCommand, Errno, PERF_EVENT_ATTR, PerfAttrFlag, PerfIoctl,
  PerfOpenFlags, PerfSample, PerfSwConfig, PerfType, SOCKADDR_LL, SOCKADDR_NL, Sock, encodeMapCreate, encodePerfEventAttr,
  encodeProgLoad, errnoText,
} from '../../src/sys/index.js';
import { isExecutable } from '../helpers/kernel.js';

const le = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

describe('bpf_attr encoding at the kernel offsets', () => {
  it('MAP_CREATE', () => {
    const w = encodeMapCreate({
      mapType: 1, keySize: 4, valueSize: 8, maxEntries: 1024, mapFlags: 1, innerMapFd: 7, numaNode: 2,
      mapName: 'a_very_long_map_name_beyond_16', mapIfindex: 3, btfFd: 9, btfKeyTypeId: 10, btfValueTypeId: 11,
      btfVmlinuxValueTypeId: 12, mapExtra: 0x1122334455667788n,
    });
    const v = le(w.bytes);
    expect(w.bytes.byteLength).toBe(72);
    expect([0, 4, 8, 12, 16, 20, 24].map((o) => v.getUint32(o, true))).toEqual([1, 4, 8, 1024, 1, 7, 2]);
    // map_name[16] at 28: 15 bytes kept, NUL at 43.
    expect(Buffer.from(w.bytes.subarray(28, 44)).toString('latin1')).toBe('a_very_long_map\0');
    expect([44, 48, 52, 56, 60].map((o) => v.getUint32(o, true))).toEqual([3, 9, 10, 11, 12]);
    expect(v.getBigUint64(64, true)).toBe(0x1122334455667788n);
  });

  it('PROG_LOAD with pointer fields holding the buffers\' addresses', () => {
    const insns = Buffer.from('b7000000000000009500000000000000', 'hex');
    const log = Buffer.alloc(100);
    const funcInfo = Buffer.alloc(16);
    const w = encodeProgLoad({
      progType: 1, insns, license: 'GPL', logLevel: 1, logBuf: log, kernVersion: 0x060100, progFlags: 4,
      progName: 'tiny', expectedAttachType: 5, progBtfFd: 6, funcInfoRecSize: 8, funcInfo, attachBtfId: 77,
      attachProgFd: 8,
    });
    const v = le(w.bytes);
    expect(v.getUint32(0, true)).toBe(1);
    expect(v.getUint32(4, true)).toBe(2); // insn_cnt counts 8-byte instructions
    const insnsAddr = v.getBigUint64(8, true);
    expect(insnsAddr).not.toBe(0n);
    const licenseAddr = v.getBigUint64(16, true);
    expect(licenseAddr).not.toBe(0n);
    expect(v.getUint32(24, true)).toBe(1);
    expect(v.getUint32(28, true)).toBe(100);
    expect(v.getBigUint64(32, true)).not.toBe(0n);
    expect(v.getUint32(40, true)).toBe(0x060100);
    expect(v.getUint32(44, true)).toBe(4);
    expect(Buffer.from(w.bytes.subarray(48, 64)).toString('latin1')).toBe('tiny'.padEnd(16, '\0'));
    expect(v.getUint32(68, true)).toBe(5);
    expect(v.getUint32(72, true)).toBe(6);
    expect(v.getUint32(76, true)).toBe(8);
    expect(v.getBigUint64(80, true)).not.toBe(0n);
    expect(v.getUint32(88, true)).toBe(2); // 16 B of 8 B records
    expect(v.getBigUint64(96, true)).toBe(0n); // no line_info
    expect(v.getUint32(108, true)).toBe(77);
    expect(v.getUint32(112, true)).toBe(8);
    // Distinct buffers have distinct addresses: the license is a separate NUL-terminated copy, not the insns.
    expect(licenseAddr).not.toBe(insnsAddr);
  });

  it('rejects a partial instruction and mis-sized func_info', () => {
    expect(() => encodeProgLoad({ progType: 1, insns: new Uint8Array(12), license: 'GPL' })).toThrow(/not a multiple of 8/);
    expect(() => encodeProgLoad({ progType: 1, insns: new Uint8Array(8), license: 'GPL', funcInfo: new Uint8Array(12), funcInfoRecSize: 8 }))
      .toThrow(/func_info of 12 B/);
    expect(() => encodeProgLoad({ progType: 1, insns: new Uint8Array(8), license: 'G\0PL' })).toThrow(/NUL byte/);
  });

  it('perf_event_attr: size, type, config, flags word', () => {
    const w = encodePerfEventAttr({
      type: PerfType.SOFTWARE, config: PerfSwConfig.BPF_OUTPUT, samplePeriod: 1, sampleType: PerfSample.RAW,
      flags: PerfAttrFlag.DISABLED | PerfAttrFlag.EXCLUDE_KERNEL, wakeupEvents: 1, config2: 9n,
    });
    const v = le(w.bytes);
    expect(w.bytes.byteLength).toBe(128);
    expect(v.getUint32(0, true)).toBe(1);
    expect(v.getUint32(4, true)).toBe(128);
    expect(v.getBigUint64(8, true)).toBe(10n);
    expect(v.getBigUint64(16, true)).toBe(1n);
    expect(v.getBigUint64(24, true)).toBe(1024n);
    expect(v.getBigUint64(40, true)).toBe(0b100001n);
    expect(v.getUint32(48, true)).toBe(1);
    expect(v.getBigUint64(64, true)).toBe(9n);
  });
});

function findCompiler(): string | undefined {
  return ['/usr/bin/clang-19', '/usr/bin/clang', '/usr/bin/cc', '/usr/bin/gcc'].find(isExecutable);
}

/** C designators inside union bpf_attr for each group of BPF_ATTR. */
const ATTR_MEMBER: Record<keyof typeof BPF_ATTR, string> = {
  mapCreate: '', mapElem: '', mapBatch: 'batch.', progLoad: '', obj: '', progAttach: '', getId: '', info: 'info.',
  query: 'query.', rawTracepoint: 'raw_tracepoint.', btfLoad: '', linkCreate: 'link_create.', linkDetach: 'link_detach.', linkUpdate: 'link_update.',
};

type Check = { readonly name: string; readonly expected: number | bigint; readonly c: string };

function layoutChecks(): Check[] {
  const checks: Check[] = [];
  const fields = (table: Record<string, number>) => Object.entries(table).filter(([k]) => k !== 'size');
  for (const [group, table] of Object.entries(BPF_ATTR) as Array<[keyof typeof BPF_ATTR, Record<string, number>]>) {
    const member = ATTR_MEMBER[group];
    const ends = fields(table).map(([k]) => `offsetof(union bpf_attr, ${member}${k}) + sizeof(((union bpf_attr *)0)->${member}${k})`);
    for (const [k, off] of fields(table)) checks.push({ name: `bpf_attr.${member}${k}`, expected: off, c: `offsetof(union bpf_attr, ${member}${k})` });
    // size must be the end of the group's last field.
    checks.push({ name: `bpf_attr ${group} size`, expected: table['size'] ?? -1, c: `MAX_OF(${ends.length}, ${ends.join(', ')})` });
  }
  const structTable = (struct: string, table: Record<string, number>, skip: readonly string[]) => {
    const own = fields(table).filter(([k]) => !skip.includes(k));
    for (const [k, off] of own) checks.push({ name: `${struct}.${k}`, expected: off, c: `offsetof(struct ${struct}, ${k})` });
    // Our size covers every field we read and never exceeds the header's struct (newer headers may only grow it).
    const ends = own.map(([k]) => `offsetof(struct ${struct}, ${k}) + sizeof(((struct ${struct} *)0)->${k})`);
    const size = table['size'] ?? -1;
    checks.push({ name: `${struct} size`, expected: 1, c: `MAX_OF(${ends.length}, ${ends.join(', ')}) <= ${size} && ${size} <= sizeof(struct ${struct})` });
  };
  structTable('bpf_prog_info', BPF_PROG_INFO, ['gpl_compatible_word']);
  checks.push({ name: 'bpf_prog_info.gpl_compatible bit', expected: 1, c: 'gpl_bit()' });
  structTable('bpf_map_info', BPF_MAP_INFO, []);
  structTable('bpf_link_info', BPF_LINK_INFO, []);
  structTable('perf_event_attr', PERF_EVENT_ATTR, ['size_field', 'flags']);
  checks.push({ name: 'perf_event_attr.size', expected: PERF_EVENT_ATTR.size_field, c: 'offsetof(struct perf_event_attr, size)' });
  checks.push({ name: 'PERF_ATTR_SIZE_VER7', expected: PERF_EVENT_ATTR.size, c: 'PERF_ATTR_SIZE_VER7' });
  structTable('sockaddr_ll', SOCKADDR_LL, []);
  structTable('sockaddr_nl', SOCKADDR_NL, []);
  for (const [name, bit] of Object.entries(PerfAttrFlag)) {
    checks.push({ name: `perf flag ${name}`, expected: bit, c: `perf_flag_bit_${name.toLowerCase()}()` });
  }
  for (const [name, value] of Object.entries(BpfCommand)) checks.push({ name: `BPF_${name}`, expected: value, c: `BPF_${name}` });
  const constants: Record<string, number> = {
    ...Object.fromEntries(Object.entries(PerfIoctl).map(([k, v]) => [`PERF_EVENT_IOC_${k}`, v])),
    ...Object.fromEntries(Object.entries(PerfOpenFlags).map(([k, v]) => [`PERF_FLAG_${k}`, v])),
    ...Object.fromEntries(Object.entries(PerfType).map(([k, v]) => [`PERF_TYPE_${k}`, v])),
    ...Object.fromEntries(Object.entries(PerfSwConfig).map(([k, v]) => [`PERF_COUNT_SW_${k}`, v])),
    ...Object.fromEntries(Object.entries(PerfSample).map(([k, v]) => [`PERF_SAMPLE_${k}`, v])),
    ...Object.fromEntries(Object.entries(Sock).map(([k, v]) => [k, v])),
    ...Object.fromEntries(Object.entries(Errno).filter(([k]) => k !== 'ENOTSUPP')),
  };
  for (const [name, value] of Object.entries(constants)) checks.push({ name, expected: value, c: `(unsigned long long)(${name})` });
  return checks;
}

const PERF_FLAG_FIELDS = Object.keys(PerfAttrFlag).map((n) => n.toLowerCase());

function cProgram(checks: readonly Check[]): string {
  const flagFns = PERF_FLAG_FIELDS.map((f) => `static unsigned long long perf_flag_bit_${f}(void) {
  struct perf_event_attr a; memset(&a, 0, sizeof a); a.${f} = 1;
  unsigned long long w; memcpy(&w, (char *)&a + 40, 8); return w; }`).join('\n');
  return `#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
static unsigned long long max_of(int n, const unsigned long long *v) {
  unsigned long long m = 0; for (int i = 0; i < n; i++) if (v[i] > m) m = v[i]; return m; }
#define MAX_OF(n, ...) max_of(n, (const unsigned long long[]){ __VA_ARGS__ })
static unsigned long long gpl_bit(void) {
  struct bpf_prog_info i; memset(&i, 0, sizeof i); i.gpl_compatible = 1;
  unsigned int w; memcpy(&w, (char *)&i + ${BPF_PROG_INFO.gpl_compatible_word}, 4); return w; }
${flagFns}
int main(void) {
${checks.map((c) => `  printf("%s %llu\\n", ${JSON.stringify(c.name)}, (unsigned long long)(${c.c}));`).join('\n')}
${Object.values(Errno).filter((n) => n !== Errno.ENOTSUPP).map((n) => `  printf("strerror ${n} %s\\n", strerror(${n}));`).join('\n')}
  return 0;
}
`;
}

const compiler = findCompiler();
if (compiler === undefined) {
  console.warn('no C compiler (clang/cc): layout cross-check against the uapi headers skipped');
} else {
  it('every offset, size and constant matches the installed uapi headers (offsetof via the C compiler)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpf-load-layout-'));
    try {
      const checks = layoutChecks();
      writeFileSync(join(dir, 'layout.c'), cProgram(checks));
      const cc = spawnSync(compiler, ['-std=gnu11', '-o', join(dir, 'layout'), join(dir, 'layout.c')], { encoding: 'utf8' });
      expect(cc.status, cc.stderr).toBe(0);
      const run = spawnSync(join(dir, 'layout'), [], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      const lines = run.stdout.trim().split('\n');
      const actual = new Map<string, string>();
      for (const line of lines) {
        const cut = line.lastIndexOf(' ');
        actual.set(line.slice(0, cut), line.slice(cut + 1));
      }
      const mismatches = checks
        .filter((c) => actual.get(c.name) !== BigInt(c.expected).toString())
        .map((c) => `${c.name}: ours ${c.expected}, header ${actual.get(c.name)}`);
      expect(mismatches).toEqual([]);
      expect(checks.length).toBeGreaterThan(150);
      // Our errno texts are glibc's strerror() wording.
      for (const line of lines.filter((l) => l.startsWith('strerror '))) {
        const m = /^strerror (\d+) (.*)$/.exec(line);
        expect(m).not.toBeNull();
        expect(errnoText(Number(m?.[1]))).toBe(m?.[2]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
