/**
 * The classic checker and text parsers: each kernel rule refused with the instruction named; malformed text refused
 * with the record named; and, against the kernel itself, the checker accepts exactly what SO_ATTACH_FILTER accepts
 * over thousands of mutated programs.
 */
import { describe, expect, it } from 'vitest';
import {
  checkClassicProgram, ClassicFilterError, classicTextForm, decodeClassicProgram, encodeClassicProgram, formatClassicBytecode,
  parseClassicCArray, parseClassicDecimal, type SockFilter,
} from '../../src/cbpf/index.js';
import { attachClassicSocketFilter, closeFd, Errno, openRawSocket, SysError } from '../../src/sys/index.js';
import { kernelTest } from '../helpers/kernel.js';
import { prng } from '../pcap/frames.js';

const RET0: SockFilter = { code: 0x06, jt: 0, jf: 0, k: 0 };
const insn = (code: number, k = 0, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k });

/** tcpdump -ddd 'ip and tcp dst port 8080': the seeds' filter. */
const SEED_DECIMAL = `11
40 0 0 12
21 0 8 2048
48 0 0 23
21 0 6 6
40 0 0 20
69 4 0 8191
177 0 0 14
72 0 0 16
21 0 1 8080
6 0 0 262144
6 0 0 0
`;

describe('checkClassicProgram: bpf_check_classic rules', () => {
  const refused: Array<[string, SockFilter[], RegExp]> = [
    ['empty', [], /empty program/],
    ['too long', new Array<SockFilter>(4097).fill(RET0), /4097 instructions, more than the kernel's 4096/],
    ['unknown opcode', [insn(0x0e), RET0], /insn 0: unknown opcode 0xe/],
    ['opcode above 8 bits', [insn(0x106), RET0], /insn 0: unknown opcode 0x106/],
    ['division by zero', [insn(0x34, 0), RET0], /insn 0: div #0: division by zero/],
    ['modulo by zero', [insn(0x94, 0), RET0], /insn 0: mod #0: division by zero/],
    ['shift of 32', [insn(0x64, 32), RET0], /insn 0: lsh #32: shift of 32 or more/],
    ['memory cell 16', [insn(0x02, 16), RET0], /insn 0: st M\[16\]/],
    ['load before store', [insn(0x60, 3), RET0], /insn 0: load of M\[3\] that is not stored/],
    ['store on one path only', [insn(0x15, 1, 0, 1), insn(0x02, 3), insn(0x60, 3), RET0], /insn 2: load of M\[3\]/],
    ['jump past the end', [insn(0x15, 0, 5, 0), RET0], /insn 0: jeq: jump target 6 is outside the program \(2 instructions\)/],
    ['ja past the end', [insn(0x05, 1), RET0], /insn 0: ja: jump target 2 is outside/],
    ['ja backwards', [RET0, insn(0x05, 0xfffffffe), RET0], /insn 1: ja: jumps backwards to 0/],
    ['unknown ancillary', [insn(0x20, 0xfffff000 + 64), RET0], /insn 0: ld \[-4032\]: unknown ancillary load \(SKF_AD_OFF \+ 64\)/],
    ['no final ret', [insn(0x00, 1)], /insn 0: the last instruction is not a ret/],
    ['k beyond 32 bits', [insn(0x06, 2 ** 32)], /insn 0: field out of range/],
  ];
  for (const [what, program, message] of refused) {
    it(`refuses: ${what}`, () => {
      let error: unknown;
      try {
        checkClassicProgram(program, 'f');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ClassicFilterError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/^f: /);
    });
  }

  it('accepts the seeds\' filter, ancillary loads, stores before loads on every path', () => {
    expect(() => checkClassicProgram(parseClassicDecimal(SEED_DECIMAL))).not.toThrow();
    expect(() => checkClassicProgram([insn(0x28, 0xfffff000), insn(0x02, 0), insn(0x15, 0, 1, 0), insn(0x60, 0), insn(0x16)])).not.toThrow();
  });
});

describe('text and raw forms', () => {
  const program = parseClassicDecimal(SEED_DECIMAL, 'seed');

  it('detects each form', () => {
    expect(classicTextForm(SEED_DECIMAL)).toBe('decimal');
    expect(classicTextForm('4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0')).toBe('decimal');
    expect(classicTextForm('{ 0x28, 0, 0, 0x0000000c },')).toBe('c-array');
    expect(classicTextForm('struct sock_filter code[] = {\n{ 0x6, 0, 0, 0 },\n};')).toBe('c-array');
    expect(classicTextForm('ip and tcp dst port 8080')).toBe('expression');
  });

  it('reads the iptables/tc comma form, the C array inside a declaration, and raw bytes alike', () => {
    expect(parseClassicDecimal(formatClassicBytecode(program))).toEqual(program);
    const c = `static const struct sock_filter code[] = {\n${program.map((i) => `  { 0x${i.code.toString(16)}, ${i.jt}, ${i.jf}, 0x${i.k.toString(16)} },`).join('\n')}\n};\n`;
    expect(parseClassicCArray(c)).toEqual(program);
    expect(decodeClassicProgram(encodeClassicProgram(program))).toEqual(program);
  });

  const malformed: Array<[string, () => unknown, RegExp]> = [
    ['count differs', () => parseClassicDecimal('3\n6 0 0 0\n', 'f'), /^f: the count says 3 instructions but 1 follow$/],
    ['count missing', () => parseClassicDecimal('x\n6 0 0 0', 'f'), /record 1: expected the instruction count/],
    ['three fields', () => parseClassicDecimal('1,6 0 0', 'f'), /^f: insn 0: expected 4 fields \(code jt jf k\), got 3$/],
    ['jt too big', () => parseClassicDecimal('1,21 256 0 0', 'f'), /insn 0: jt "256" is not an 8-bit number/],
    ['k too big', () => parseClassicDecimal('1,6 0 0 4294967296', 'f'), /insn 0: k "4294967296" is not a 32-bit number/],
    ['not a number', () => parseClassicDecimal('1,6 0 0 1e3', 'f'), /insn 0: k "1e3"/],
    ['kernel rule in text', () => parseClassicDecimal('2,21 0 9 0,6 0 0 0', 'f'), /insn 0: jeq: jump target 10 is outside/],
    ['junk between entries', () => parseClassicCArray('{ 0x6, 0, 0, 0 }, junk { 0x6, 0, 0, 0 }', 'f'), /insn 1: unexpected text "junk"/],
    ['junk after', () => parseClassicCArray('{ 0x6, 0, 0, 0 }, junk', 'f'), /after the last entry/],
    ['partial record', () => decodeClassicProgram(new Uint8Array(12), 'f'), /^f: 12 bytes is not a whole number of 8-byte sock_filter records$/],
  ];
  for (const [what, run, message] of malformed) {
    it(`refuses: ${what}`, () => {
      expect(run).toThrow(ClassicFilterError);
      expect(run).toThrow(message);
    });
  }
});

/** Programs near the rules' edges: valid seeds with one field changed at random. */
function mutatedPrograms(count: number): SockFilter[][] {
  const rand = prng(0x15);
  const seed = parseClassicDecimal(SEED_DECIMAL);
  const codes = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0e, 0x15, 0x16, 0x1d, 0x20, 0x28, 0x30, 0x34, 0x3c, 0x45, 0x54, 0x60,
    0x61, 0x64, 0x74, 0x80, 0x81, 0x84, 0x87, 0x94, 0xa4, 0xb1, 0xb5, 0xc4, 0x100];
  const ks = [0, 1, 3, 15, 16, 31, 32, 0xfffff000, 0xfffff004, 0xfffff03c, 0xfffff040, 0xffffffff, 12, 8191];
  const out: SockFilter[][] = [];
  for (let n = 0; n < count; n++) {
    const program = seed.map((i) => ({ ...i }));
    const edits = 1 + Math.floor(rand() * 2);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * program.length);
      const field = Math.floor(rand() * 4);
      const i = program[at]!;
      program[at] = field === 0 ? { ...i, code: codes[Math.floor(rand() * codes.length)]! }
        : field === 1 ? { ...i, jt: Math.floor(rand() * 14) }
          : field === 2 ? { ...i, jf: Math.floor(rand() * 14) }
            : { ...i, k: ks[Math.floor(rand() * ks.length)]! };
    }
    if (rand() < 0.1) program.pop();
    out.push(program);
  }
  return out;
}

describe('the checker agrees with the kernel', () => {
  kernelTest('SO_ATTACH_FILTER accepts exactly the mutated programs checkClassicProgram accepts', () => {
    const sock = openRawSocket('lo');
    let accepted = 0;
    let refused = 0;
    const disagreements: string[] = [];
    try {
      for (const program of mutatedPrograms(3000)) {
        let ours = true;
        try {
          checkClassicProgram(program);
        } catch (e) {
          if (!(e instanceof ClassicFilterError)) throw e;
          ours = false;
        }
        let kernels = true;
        try {
          attachClassicSocketFilter(sock, encodeClassicProgram(program));
        } catch (e) {
          if (!(e instanceof SysError) || e.errno !== Errno.EINVAL) throw e;
          kernels = false;
        }
        if (ours !== kernels) disagreements.push(`${formatClassicBytecode(program)}: ours ${ours}, kernel ${kernels}`);
        if (kernels) accepted++;
        else refused++;
      }
    } finally {
      closeFd(sock);
    }
    expect(disagreements.slice(0, 5)).toEqual([]);
    // Both verdicts occur often enough for the agreement to mean something.
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });
});
