import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { createSocket } from 'node:dgram';
import { describe, expect } from 'vitest';
import {
  attachSocketFilter, bpfLogBuf, bpfMapLookupElem, closeBpfFile, eventFd, lastError, loadBpfFile, mapData, mapDataCount,
  mapFd, openRawSock, progCnt, progFd, readTracePipe,
} from '../../src/compat/index.js';
import { VerifierError } from '../../src/load/index.js';
import { closeFd } from '../../src/sys/index.js';
import { eventually, kernelTest, openFdCount } from '../helpers/kernel.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';
import { progInfo } from '../../src/sys/index.js';

describe('the bpf_load.c facade', () => {
  kernelTest('a sockex1_user port: load, attach to a raw socket on lo, read byte counts per protocol', async () => {
    const before = openFdCount();
    expect(loadBpfFile('c-samples/sockex1_kern.o')).toBe(0);
    const ids = progFd.map((fd) => progInfo(fd).id);
    const sock = openRawSock('lo');
    try {
      expect(progCnt()).toBe(1);
      expect(mapDataCount()).toBe(1);
      expect(mapData[0]).toMatchObject({ fd: mapFd[0], name: 'my_map', elfOffset: 0, def: { type: 2, keySize: 4, valueSize: 8, maxEntries: 256 } });
      attachSocketFilter(sock, progFd[0]!);

      const udp = createSocket('udp4');
      const sink = createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      for (let i = 0; i < 10; i++) await new Promise<void>((r) => udp.send(Buffer.alloc(500), sink.address().port, '127.0.0.1', () => r()));
      udp.close();
      sink.close();

      const key = Buffer.alloc(4);
      const value = Buffer.alloc(8);
      key.writeUInt32LE(17);
      expect(bpfMapLookupElem(mapFd[0]!, key, value)).toBe(true);
      expect(value.readBigInt64LE(0)).toBeGreaterThanOrEqual(5000n);
    } finally {
      closeFd(sock);
      closeBpfFile();
    }
    expect([progFd, mapFd, mapData, eventFd].map((a) => a.length)).toEqual([0, 0, 0, 0]);
    expect(openFdCount()).toBe(before);
    for (const id of ids) expect(eventually(() => !programExists(id))).toBe(true);
  });

  kernelTest('tracing programs are attached by loadBpfFile, as bpf_load.c did; readTracePipe streams their output', async () => {
    expect(loadBpfFile('c-samples/trace_hello_kern.o')).toBe(0);
    const ids = progFd.map((fd) => progInfo(fd).id);
    try {
      expect(eventFd.length).toBe(1);
      const stop = new AbortController();
      // Lines left in the trace buffer by earlier runs do not count: only a child of this test's pid does.
      const pids = new Set<number>();
      const ours = (l: string) => [...pids].some((pid) => l.includes(`bpf-load hello pid ${pid}`));
      const poke = setInterval(() => pids.add(spawnSync(process.execPath, ['-e', ''], { timeout: 10_000 }).pid), 200);
      const lines: string[] = [];
      const timeout = setTimeout(() => stop.abort(), 10_000);
      await readTracePipe((l) => {
        lines.push(l);
        if (ours(l)) stop.abort();
      }, stop.signal);
      clearInterval(poke);
      clearTimeout(timeout);
      expect(lines.some(ours)).toBe(true);
    } finally {
      closeBpfFile();
    }
    expect(linksOfPrograms(ids)).toEqual([]);
  });

  kernelTest('perf_event programs land their per-CPU perf fds in eventFd', () => {
    expect(loadBpfFile('c-samples/perf_event_kern.o')).toBe(0);
    try {
      expect(eventFd.length).toBeGreaterThan(0);
    } finally {
      closeBpfFile();
    }
    expect(eventFd).toEqual([]);
  });

  kernelTest('a failing load returns 1 and leaves the verifier log in bpfLogBuf', () => {
    const before = openFdCount();
    expect(loadBpfFile('c-samples/bad_verifier_kern.o')).toBe(1);
    expect(bpfLogBuf.value).toContain("invalid mem access 'map_value_or_null'");
    expect(lastError).toBeInstanceOf(VerifierError);
    expect(progFd).toEqual([]);
    expect(loadBpfFile('c-samples/no-such-file.o')).toBe(1);
    expect(bpfLogBuf.value).toBe('c-samples/no-such-file.o: no such file\n');
    expect(openFdCount()).toBe(before);
  });

  kernelTest('the fixup hook edits definitions before maps are created (load_bpf_file_fixup_map)', () => {
    expect(loadBpfFile('c-samples/sockex3_kern.o', (map) => {
      if (map.name === 'slot_hits') map.def.maxEntries = 32;
    })).toBe(0);
    try {
      expect(mapData.find((m) => m.name === 'slot_hits')!.def.maxEntries).toBe(32);
    } finally {
      closeBpfFile();
    }
  });
});
