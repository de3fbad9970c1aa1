import { createSocket } from 'node:dgram';
import { describe, expect } from 'vitest';
import { openObject } from '../../src/index.js';
import { corpusFiles, corpusKernelTest, eventually, missingCorpusFile, openFdCount } from '../helpers/kernel.js';
import { linksOfPrograms, programExists } from '../helpers/leftovers.js';

describe('tc programs on tcx links', () => {
  corpusKernelTest('the cilium tcx example counts lo traffic on ingress; detaching leaves no link', async () => {
    const path = corpusFiles('cilium', (n) => n === 'bpf_bpfel.o')?.find((p) => p.includes('/tcx/'));
    if (path === undefined) throw missingCorpusFile();
    const before = openFdCount();
    const obj = openObject(path);
    let ids: number[] = [];
    try {
      ids = obj.programs.map((p) => p.id);
      const links = obj.programs.map((p) => obj.attach(p, { iface: 'lo' }));
      expect(links.map((l) => l.target)).toEqual(['lo (ingress)', 'lo (ingress)']);
      const udp = createSocket('udp4');
      const sink = createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      for (let i = 0; i < 10; i++) await new Promise<void>((r) => udp.send(Buffer.alloc(64), sink.address().port, '127.0.0.1', () => r()));
      udp.close();
      sink.close();
      expect(Number(obj.variable('ingress_pkt_count').get())).toBeGreaterThanOrEqual(10);
      for (const l of links) l.detach();
      expect(linksOfPrograms(ids)).toEqual([]);
    } finally {
      obj.close();
    }
    for (const id of ids) expect(eventually(() => !programExists(id))).toBe(true);
    expect(openFdCount()).toBe(before);
  });
});
