import { mkdtempSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { mapTypeValue, progTypeValue } from '../../src/base/uapi.js';
import {
  Errno, SysError, UpdateFlags, batchUnsupported, btfLoad, closeFd, mapCreate, mapDeleteElem, mapFreeze,
  mapGetFdById, mapGetNextId, mapGetNextKey, mapInfo, mapLookupBatch, mapLookupElem, mapUpdateElem, mount,
  mountedFsType, objGet, objPin, parseCpuList, possibleCpuCount, progGetFdById, progGetNextId, progInfo, progLoad,
  unmount,
} from '../../src/sys/index.js';
import { kernelTest, noLeaks } from '../helpers/kernel.js';
import { catchError } from '../helpers/errors.js';

const RETURN_0 = Buffer.from('b700000000000000' + '9500000000000000', 'hex');
const BAD_OPCODE = Buffer.from('ff00000000000000' + '9500000000000000', 'hex');

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return b;
}
function u64(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value, 0);
  return b;
}

function loadReturn0(name = 'tiny'): number {
  return progLoad({ progType: progTypeValue('socket_filter'), insns: RETURN_0, license: 'GPL', progName: name });
}

describe('maps', () => {
  kernelTest('array map: update / lookup / next key / info', () => noLeaks(() => {
    const fd = mapCreate({ mapType: mapTypeValue('array'), keySize: 4, valueSize: 8, maxEntries: 4, mapName: 'sys_array' });
    try {
      expect(fd).toBeGreaterThan(2);
      mapUpdateElem(fd, u32(1), u64(0x1122334455667788n));
      const value = Buffer.alloc(8);
      expect(mapLookupElem(fd, u32(1), value)).toBe(true);
      expect(value.readBigUInt64LE(0)).toBe(0x1122334455667788n);
      expect(mapLookupElem(fd, u32(0), value)).toBe(true);
      expect(value.readBigUInt64LE(0)).toBe(0n);
      // Out-of-range index: the lookup misses instead of throwing.
      expect(mapLookupElem(fd, u32(4), value)).toBe(false);

      const next = Buffer.alloc(4);
      expect(mapGetNextKey(fd, null, next)).toBe(true);
      expect(next.readUInt32LE(0)).toBe(0);
      expect(mapGetNextKey(fd, u32(2), next)).toBe(true);
      expect(next.readUInt32LE(0)).toBe(3);
      expect(mapGetNextKey(fd, u32(3), next)).toBe(false);

      // Array elements cannot be deleted: a real kernel error, named after the command.
      const err = catchSysError(() => mapDeleteElem(fd, u32(1)));
      expect([err.command, err.code]).toEqual(['BPF_MAP_DELETE_ELEM', 'EINVAL']);
      expect(() => mapUpdateElem(fd, u32(1), u64(5n), UpdateFlags.NOEXIST)).toThrow(/BPF_MAP_UPDATE_ELEM.*EEXIST/);

      const info = mapInfo(fd);
      expect(info).toMatchObject({ typeName: 'array', keySize: 4, valueSize: 8, maxEntries: 4, name: 'sys_array' });
      expect(info.id).toBeGreaterThan(0);
      // The id enumerates and reopens.
      let id = 0;
      const ids: number[] = [];
      for (let next = mapGetNextId(0); next !== undefined; next = mapGetNextId(next)) ids.push((id = next));
      expect(id).toBeGreaterThan(0);
      expect(ids).toContain(info.id);
      const again = mapGetFdById(info.id);
      try {
        expect(mapInfo(again).id).toBe(info.id);
      } finally {
        closeFd(again);
      }
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('hash map: delete reports presence; frozen maps refuse writes', () => noLeaks(() => {
    const fd = mapCreate({ mapType: mapTypeValue('hash'), keySize: 4, valueSize: 4, maxEntries: 8 });
    try {
      mapUpdateElem(fd, u32(7), u32(70));
      expect(mapDeleteElem(fd, u32(7))).toBe(true);
      expect(mapDeleteElem(fd, u32(7))).toBe(false);
      expect(mapLookupElem(fd, u32(7), Buffer.alloc(4))).toBe(false);
      expect(mapGetNextKey(fd, null, Buffer.alloc(4))).toBe(false);
      mapUpdateElem(fd, u32(1), u32(10));
      mapFreeze(fd);
      expect(catchSysError(() => mapUpdateElem(fd, u32(2), u32(20))).code).toBe('EPERM');
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('batch lookup of a 10k-entry hash map equals get_next_key iteration', () => noLeaks(() => {
    const entries = 10_000;
    const fd = mapCreate({ mapType: mapTypeValue('hash'), keySize: 4, valueSize: 8, maxEntries: entries });
    try {
      for (let k = 0; k < entries; k++) mapUpdateElem(fd, u32(k * 7 + 3), u64(BigInt(k) * 1_000_003n));

      const viaNextKey = new Map<number, bigint>();
      const key = Buffer.alloc(4);
      const value = Buffer.alloc(8);
      let prev: Buffer | null = null;
      while (mapGetNextKey(fd, prev, key)) {
        expect(mapLookupElem(fd, key, value)).toBe(true);
        viaNextKey.set(key.readUInt32LE(0), value.readBigUInt64LE(0));
        prev = Buffer.from(key);
      }

      const viaBatch = new Map<number, bigint>();
      const perBatch = 1000;
      const keys = Buffer.alloc(4 * perBatch);
      const values = Buffer.alloc(8 * perBatch);
      let inBatch: Buffer | null = null;
      let outBatch: Buffer = Buffer.alloc(4);
      let calls = 0;
      for (;;) {
        const { count, done } = mapLookupBatch({ mapFd: fd, inBatch, outBatch, keys, values, keySize: 4, valueStride: 8 });
        calls++;
        for (let i = 0; i < count; i++) viaBatch.set(keys.readUInt32LE(4 * i), values.readBigUInt64LE(8 * i));
        if (done) break;
        [inBatch, outBatch] = [outBatch, inBatch ?? Buffer.alloc(4)];
      }
      expect(calls).toBeGreaterThanOrEqual(entries / perBatch);
      expect(viaNextKey.size).toBe(entries);
      expect(viaBatch).toEqual(viaNextKey);
      expect(viaBatch.get(3 + 7 * 9999)).toBe(9999n * 1_000_003n);
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('batch lookup errors that mean "fall back to get_next_key" are recognised', () => noLeaks(() => {
    // Queue maps have no keys: the kernel rejects batch lookup on them.
    const fd = mapCreate({ mapType: mapTypeValue('queue'), keySize: 0, valueSize: 4, maxEntries: 4 });
    try {
      let caught: unknown;
      try {
        mapLookupBatch({ mapFd: fd, inBatch: null, outBatch: Buffer.alloc(4), keys: Buffer.alloc(4), values: Buffer.alloc(4), keySize: 4, valueStride: 4 });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SysError);
      expect(batchUnsupported(caught)).toBe(true);
      expect(batchUnsupported(new Error('x'))).toBe(false);
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('per-CPU array values span every possible CPU', () => noLeaks(() => {
    const cpus = possibleCpuCount();
    expect(cpus).toBe(parseCpuList(readFileSync('/sys/devices/system/cpu/possible', 'utf8')).length);
    const fd = mapCreate({ mapType: mapTypeValue('percpu_array'), keySize: 4, valueSize: 4, maxEntries: 1 });
    try {
      const stride = 8; // roundup(value_size, 8)
      const values = Buffer.alloc(stride * cpus);
      for (let c = 0; c < cpus; c++) values.writeUInt32LE(c + 100, c * stride);
      mapUpdateElem(fd, u32(0), values);
      const read = Buffer.alloc(stride * cpus);
      expect(mapLookupElem(fd, u32(0), read)).toBe(true);
      expect(read).toEqual(values);
    } finally {
      closeFd(fd);
    }
  }));
});

/** The SysError a call throws (the shared helper, typed). */
const catchSysError = (fn: () => unknown): SysError => catchError(fn, SysError);

describe('programs', () => {
  kernelTest('load a socket filter and read its info', () => noLeaks(() => {
    const fd = loadReturn0('sys_tiny');
    try {
      const info = progInfo(fd);
      expect(info.id).toBeGreaterThan(0);
      expect(info.typeName).toBe('socket_filter');
      expect(info.tag).toMatch(/^[0-9a-f]{16}$/);
      expect(info.tag).not.toBe('0000000000000000');
      expect(info.name).toBe('sys_tiny');
      expect(info.xlatedProgLen).toBe(16);
      expect(info.gplCompatible).toBe(true);
      expect(info.mapIds).toEqual([]);
      const ids: number[] = [];
      for (let id = progGetNextId(0); id !== undefined; id = progGetNextId(id)) ids.push(id);
      expect(ids).toContain(info.id);
      const again = progGetFdById(info.id);
      try {
        expect(progInfo(again)).toMatchObject({ id: info.id, tag: info.tag });
      } finally {
        closeFd(again);
      }
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('a program using a map reports the map id', () => noLeaks(() => {
    const mapFd = mapCreate({ mapType: mapTypeValue('array'), keySize: 4, valueSize: 4, maxEntries: 1 });
    try {
      // r1 = map (ld_imm64 with BPF_PSEUDO_MAP_FD); r0 = 0; exit
      const insns = Buffer.alloc(32);
      insns.set([0x18, 0x11], 0);
      insns.writeInt32LE(mapFd, 4);
      insns.set([0xb7, 0x00], 16);
      insns.set([0x95], 24);
      const fd = progLoad({ progType: progTypeValue('socket_filter'), insns, license: 'GPL' });
      try {
        expect(progInfo(fd).mapIds).toEqual([mapInfo(mapFd).id]);
      } finally {
        closeFd(fd);
      }
    } finally {
      closeFd(mapFd);
    }
  }));

  kernelTest('a bad instruction is EINVAL, with a verifier log when asked', () => noLeaks(() => {
    const plain = catchSysError(() => progLoad({ progType: progTypeValue('socket_filter'), insns: BAD_OPCODE, license: 'GPL' }));
    expect([plain.command, plain.errno, plain.code]).toEqual(['BPF_PROG_LOAD', Errno.EINVAL, 'EINVAL']);
    expect(plain.message).toBe('bpf(BPF_PROG_LOAD): Invalid argument (EINVAL)');

    const log = Buffer.alloc(64 * 1024);
    const logged = catchSysError(() => progLoad({
      progType: progTypeValue('socket_filter'), insns: BAD_OPCODE, license: 'GPL', logLevel: 1, logBuf: log, progName: 'bad',
    }));
    expect(logged.code).toBe('EINVAL');
    expect(logged.message).toBe('bpf(BPF_PROG_LOAD): bad: Invalid argument (EINVAL)');
    const text = log.subarray(0, log.indexOf(0)).toString();
    expect(text.length).toBeGreaterThan(0);
    expect(text).toMatch(/unknown opcode ff/);
  }));

  kernelTest('a SysError for a bad fd names the command and errno', () => {
    const err = catchSysError(() => mapLookupElem(1_000_000, u32(0), Buffer.alloc(8)));
    expect(err).toMatchObject({ syscall: 'bpf', command: 'BPF_MAP_LOOKUP_ELEM', errno: Errno.EBADF, code: 'EBADF' });
    expect(err.message).toBe('bpf(BPF_MAP_LOOKUP_ELEM): map fd 1000000: Bad file descriptor (EBADF)');
    expect(catchSysError(() => closeFd(1_000_000)).message).toBe('close: fd 1000000: Bad file descriptor (EBADF)');
  });
});

describe('pinning', () => {
  kernelTest('pin in bpffs, get it back by path, unpin', () => noLeaks(() => {
    const bpffs = '/sys/fs/bpf';
    const mountedHere = mountedFsType(bpffs) !== 'bpf';
    if (mountedHere) mount('bpf', bpffs, 'bpf');
    try {
      const dir = mkdtempSync(join(bpffs, 'bpf-load-sys-'));
      try {
        const fd = loadReturn0();
        try {
          const path = join(dir, 'prog');
          objPin(fd, path);
          try {
            const again = objGet(path);
            try {
              expect(again).not.toBe(fd);
              expect(progInfo(again).id).toBe(progInfo(fd).id);
            } finally {
              closeFd(again);
            }
            expect(catchSysError(() => objPin(fd, path)).message).toBe(`bpf(BPF_OBJ_PIN): ${path}: File exists (EEXIST)`);
          } finally {
            unlinkSync(path);
          }
          expect(catchSysError(() => objGet(path)).code).toBe('ENOENT');
        } finally {
          closeFd(fd);
        }
      } finally {
        rmdirSync(dir);
      }
    } finally {
      if (mountedHere) unmount(bpffs);
    }
  }));
});

describe('BTF', () => {
  /** A one-type BTF blob: `int`, 4 bytes, signed. */
  function intBtf(magic = 0xeb9f): Buffer {
    const strings = Buffer.from('\0int\0');
    const types = Buffer.alloc(16);
    types.writeUInt32LE(1, 0); // name_off → "int"
    types.writeUInt32LE(1 << 24, 4); // kind INT, vlen 0
    types.writeUInt32LE(4, 8); // size
    types.writeUInt32LE((1 << 24) | 32, 12); // BTF_INT_SIGNED, 32 bits
    const hdr = Buffer.alloc(24);
    hdr.writeUInt16LE(magic, 0);
    hdr.writeUInt8(1, 2);
    hdr.writeUInt32LE(24, 4);
    hdr.writeUInt32LE(0, 8);
    hdr.writeUInt32LE(types.byteLength, 12);
    hdr.writeUInt32LE(types.byteLength, 16);
    hdr.writeUInt32LE(strings.byteLength, 20);
    return Buffer.concat([hdr, types, strings]);
  }

  kernelTest('loads a minimal BTF blob and rejects a broken one with a log', () => noLeaks(() => {
    const fd = btfLoad({ btf: intBtf() });
    expect(fd).toBeGreaterThan(2);
    closeFd(fd);
    const log = Buffer.alloc(4096);
    const err = catchSysError(() => btfLoad({ btf: intBtf(0x1234), logBuf: log }));
    expect([err.command, err.code]).toEqual(['BPF_BTF_LOAD', 'EINVAL']);
    expect(log.subarray(0, log.indexOf(0)).toString()).toMatch(/magic/i);
  }));
});
