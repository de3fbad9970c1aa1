/**
 * Match sets against tcpdump: every expression is run over one synthetic capture by `tcpdump -r`, by the JavaScript
 * matcher and by the kernel (the eBPF translation under BPF_PROG_TEST_RUN); the three must pick the same packets,
 * and the JavaScript and kernel return values must agree on every packet.
 */
import { spawnSync } from 'node:child_process'; // runs tcpdump -r as the oracle, argument array: no shell
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileClassicToJs, decodeClassicProgram, parseClassicDecimal } from '../../src/cbpf/index.js';
import { KernelClassicMatcher } from '../../src/load/index.js';
import { readCapture, writePcap } from '../../src/pcap/index.js';
import { pcapCompile } from '../../src/sys/index.js';
import { kernelTest } from '../helpers/kernel.js';
import { syntheticCapture } from '../pcap/frames.js';
import { EXPRESSIONS } from './expressions.js';
import { libpcapPath, TCPDUMP, tcpdumpCompile } from './oracle.js';

const dir = mkdtempSync(join(tmpdir(), 'bpf-load-capture-'));
const capturePath = join(dir, 'mixed.pcap');
const captureBytes = writePcap(syntheticCapture(800));
writeFileSync(capturePath, captureBytes);
const packets = [...readCapture(captureBytes, capturePath)];

/** Indices tcpdump -r picks: each synthetic packet's timestamp is its 1-based index in seconds. */
function tcpdumpMatches(expression: string): number[] {
  const r = spawnSync(TCPDUMP!, ['-r', capturePath, '-n', '-tt', expression], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tcpdump -r failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => /^\d+\.\d{6} /.test(l)).map((l) => Number(l.slice(0, l.indexOf('.'))));
}

/**
 * A shift by X ≥ 32: libpcap's interpreter (tcpdump -r) yields 0, the kernel masks the count to 5 bits (its eBPF
 * interpreter and JITs alike), and bpf-load follows the kernel. Per expression: the packets where that happens.
 */
const SHIFT_DIVERGENCE: Readonly<Record<string, (frame: Uint8Array) => boolean>> = {
  // ip[1] of an untagged IPv4 frame; the program only reaches the shift for those.
  'ip[0] << ip[1] > 0': (f) => f[12] === 0x08 && f[13] === 0x00 && f[15]! >= 32,
};

function symmetricDifference(a: readonly number[], b: readonly number[]): number[] {
  const sa = new Set(a);
  const sb = new Set(b);
  return [...a.filter((x) => !sb.has(x)), ...b.filter((x) => !sa.has(x))].sort((x, y) => x - y);
}

// protochain compiles to loops, which only libpcap runs (the kernel takes forward jumps only).
const runnable = EXPRESSIONS.filter((e) => e.optimize && !e.expression.includes('protochain'));

describe.runIf(TCPDUMP !== undefined)('match sets agree with tcpdump -r', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the capture mixes what the expressions tell apart', () => {
    expect(packets).toHaveLength(800);
    expect(tcpdumpMatches('tcp dst port 8080').length).toBeGreaterThan(5);
    expect(tcpdumpMatches('vlan').length).toBeGreaterThan(20);
  });

  for (const { expression } of runnable) {
    it(`JavaScript matcher: ${expression}`, () => {
      const program = parseClassicDecimal(tcpdumpCompile(expression, '-ddd'), expression);
      const match = compileClassicToJs(program, expression);
      const ours = packets.filter((p) => match(p.data) !== 0).map((p) => p.index);
      const theirs = tcpdumpMatches(expression);
      const divergence = SHIFT_DIVERGENCE[expression];
      if (divergence === undefined) {
        expect(ours).toEqual(theirs);
        return;
      }
      // Only packets whose shift count reaches 32 may differ, and some do: the divergence is real and understood.
      const differing = symmetricDifference(ours, theirs);
      expect(differing.length).toBeGreaterThan(0);
      expect(differing.filter((i) => !divergence(packets[i - 1]!.data))).toEqual([]);
    });
  }

  kernelTest('the kernel (BPF_PROG_TEST_RUN) returns what the JavaScript matcher returns, on every packet', () => {
    let compared = 0;
    for (const { expression } of runnable) {
      const program = parseClassicDecimal(tcpdumpCompile(expression, '-ddd'), expression);
      const js = compileClassicToJs(program, expression);
      using kernel = new KernelClassicMatcher(program, { name: 'agreement' });
      const mismatches = packets.filter((p) => kernel.match(p.data) !== js(p.data)).map((p) => p.index);
      expect({ expression, mismatches: mismatches.slice(0, 5) }).toEqual({ expression, mismatches: [] });
      compared += packets.length;
    }
    expect(compared).toBe(runnable.length * 800);
  }, 120_000);
});

describe.runIf(libpcapPath() !== undefined && TCPDUMP !== undefined)('pcap_compile through koffi', () => {
  it('compiles exactly what tcpdump compiles, optimized or not', () => {
    for (const { expression, optimize } of EXPRESSIONS) {
      const ours = decodeClassicProgram(pcapCompile(expression, { optimize }), expression, { kernelCheck: !expression.includes('protochain') });
      expect(ours, expression).toEqual(parseClassicDecimal(tcpdumpCompile(expression, '-ddd', optimize), expression, { kernelCheck: false }));
    }
  });
});
