/**
 * The classic-BPF formatter and parsers against tcpdump: every expression of expressions.ts compiled by tcpdump
 * (-ddd and -dd read by our parsers) must print exactly as `tcpdump -d` prints it; and every opcode, with operands
 * chosen to hit each formatting case, must print exactly as libpcap's bpf_image prints it.
 */
import { describe, expect, it } from 'vitest';
import {
  ANCILLARY, checkClassicProgram, CLASSIC_OPS, formatClassicC, formatClassicDecimal, formatClassicInsn, formatClassicProgram,
  parseClassicCArray, parseClassicDecimal, SKF_AD_OFF,
} from '../../src/cbpf/index.js';
import { EXPRESSIONS } from './expressions.js';
import { bpfImageOracle, TCPDUMP, tcpdumpCompile } from './oracle.js';
import { oracleUnavailable } from '../helpers/kernel.js';

describe.runIf(TCPDUMP !== undefined)('tcpdump -d agreement over pcap-filter expressions', () => {
  it(`has at least 200 programs (${EXPRESSIONS.length})`, () => {
    expect(EXPRESSIONS.length).toBeGreaterThanOrEqual(200);
  });
  for (const { expression, optimize } of EXPRESSIONS) {
    it(`${optimize ? '' : '-O '}${expression}`, () => {
      const decimal = tcpdumpCompile(expression, '-ddd', optimize);
      // protochain compiles to a loop, which only libpcap's own interpreter runs: the kernel refuses backward jumps.
      const loops = expression.includes('protochain');
      const program = parseClassicDecimal(decimal, 'tcpdump -ddd', { kernelCheck: !loops });
      if (loops) expect(() => checkClassicProgram(program, 'protochain')).toThrow(/ja: jumps backwards to \d+/);
      expect(formatClassicProgram(program)).toBe(tcpdumpCompile(expression, '-d', optimize));
      // The other text forms round-trip through our parsers and printers byte for byte.
      expect(formatClassicDecimal(program)).toBe(decimal);
      const cArray = tcpdumpCompile(expression, '-dd', optimize);
      expect(formatClassicC(program)).toBe(cArray);
      expect(parseClassicCArray(cArray, 'tcpdump -dd', { kernelCheck: !loops })).toEqual(program);
    });
  }
});

const oracle = bpfImageOracle();
if (typeof oracle === 'string') oracleUnavailable(`libpcap's bpf_image cannot be reached (${oracle})`);

describe.runIf(typeof oracle !== 'string')('formatClassicInsn agrees with libpcap bpf_image on every opcode', () => {
  it('all 256 low opcodes and some wider ones, with signed, unsigned, ancillary and jump operands', () => {
    const ks = [0, 1, 5, 14, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xffe00000, 0xfff00000, SKF_AD_OFF + 64,
      ...ANCILLARY.map((a) => SKF_AD_OFF + a.offset)];
    const jumps = [[0, 0], [1, 2], [255, 254]] as const;
    const insns: Array<{ code: number; jt: number; jf: number; k: number }> = [];
    for (let code = 0; code < 256; code++) for (const k of ks) for (const [jt, jf] of jumps) insns.push({ code, jt, jf, k });
    for (const code of [0x128, 0x8000, 0xffff]) insns.push({ code, jt: 0, jf: 0, k: 1 });
    const expected = (oracle as (input: string) => string)(insns.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k}`).join('\n')).split('\n');
    let compared = 0;
    const mismatches: string[] = [];
    insns.forEach((insn, index) => {
      // libpcap has no text for `ldx #pktlen`, which the kernel accepts: we print it like its `ld` sibling.
      if (insn.code === 0x81) return;
      compared++;
      const ours = formatClassicInsn(insn, index);
      if (ours !== expected[index]) mismatches.push(`${JSON.stringify(insn)}: ours ${JSON.stringify(ours)}, libpcap ${JSON.stringify(expected[index])}`);
    });
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(compared).toBeGreaterThan(256 * 20);
    expect(formatClassicInsn({ code: 0x81, jt: 0, jf: 0, k: 0 }, 3)).toBe('(003) ldx      #pktlen');
    expect(CLASSIC_OPS.size).toBe(49);
  });
});
