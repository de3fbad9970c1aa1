/**
 * Classic programs compiled to JavaScript functions, for filtering captures fast: a BPF_PROG_TEST_RUN costs a
 * system call per packet, a compiled function a few nanoseconds. The kernel stays the reference: the tests run both
 * over the same captures and compare every verdict.
 *
 * Classic jumps only go forward, so the program becomes straight-line code inside nested labelled blocks: a jump
 * to instruction t is `break L<t>`, and block L<t> closes right before instruction t. The generated source holds
 * only numbers from the checked program, never text from the user.
 */
import { ClassicFilterError } from './errors.js';
import {
  ancillaryAt, ClassicAluOp, ClassicClass, ClassicJmpOp, ClassicMiscOp, ClassicMode, ClassicRval, ClassicSize,
  ClassicSource, classicClass, SKF_AD_OFF,
} from './opcodes.js';
import { checkClassicProgram, type ClassicProgram } from './program.js';

/**
 * Runs the filter over one packet and returns the classic return value (0: no match, else the number of bytes to
 * keep). Throws KernelOnlyError for loads only the kernel can answer (negative offsets relative to the link or
 * network header reached through X).
 */
export interface ClassicMatcher {
  /** Over a packet's captured bytes. */
  (packet: Uint8Array): number;
  /**
   * Over `length` bytes at `offset` of `bytes`, read through `view` (a DataView over all of `bytes`): filtering a
   * whole capture this way allocates nothing per packet.
   */
  at(bytes: Uint8Array, view: DataView, offset: number, length: number): number;
}

/** A load the JavaScript matcher cannot answer without the kernel's view of the packet. */
export class KernelOnlyError extends Error {
  override name = 'KernelOnlyError';
}

const SIGNED_MIN_SPECIAL = 0xffe00000; // SKF_LL_OFF as u32: below it, a negative offset is simply out of bounds.

/** Whether compileClassicToJs can handle the program (no ancillary loads, no absolute loads at negative offsets). */
export function jsCompilable(program: ClassicProgram): boolean {
  return program.every(({ code, k }) => classicClass(code) !== ClassicClass.LD || (code & 0xe0) !== ClassicMode.ABS || (k < SIGNED_MIN_SPECIAL && k < SKF_AD_OFF));
}

/** A packet load: `o` is the offset inside the packet, `b` where the packet starts in `p`, `n` its length. */
function load(size: number, offsetExpr: string): string {
  const width = size === ClassicSize.W ? 4 : size === ClassicSize.H ? 2 : 1;
  const read = width === 4 ? 'v.getUint32(b + o)' : width === 2 ? 'v.getUint16(b + o)' : 'p[b + o]';
  return `o = ${offsetExpr}; if (o > n - ${width}) return 0; a = ${read};`;
}

export function compileClassicToJs(program: ClassicProgram, source?: string): ClassicMatcher {
  checkClassicProgram(program, source);
  if (!jsCompilable(program)) {
    const bad = program.findIndex((i) => !jsCompilable([i]));
    const anc = ancillaryAt(program[bad]!.k);
    throw new ClassicFilterError(source, bad, anc === undefined ? 'absolute load at a negative offset: only the kernel can run it' : `ancillary load [${anc.name}]: only the kernel can run it`);
  }
  const targets = new Set<number>();
  program.forEach(({ code, jt, jf, k }, pc) => {
    if (classicClass(code) !== ClassicClass.JMP) return;
    if ((code & 0xf0) === ClassicJmpOp.JA) targets.add(pc + 1 + k);
    else {
      if (jt !== 0) targets.add(pc + 1 + jt);
      if (jf !== 0) targets.add(pc + 1 + jf);
    }
  });
  const opened = [...targets].sort((x, y) => y - x);
  const usesMemory = program.some(({ code }) => code === ClassicClass.ST || code === ClassicClass.STX);
  const lines: string[] = ['"use strict";', `let a = 0, x = 0, o = 0;${usesMemory ? ' const m = new Uint32Array(16);' : ''}`];
  lines.push(...opened.map((t) => `L${t}: {`));
  for (let pc = 0; pc < program.length; pc++) {
    if (targets.has(pc)) lines.push(`} // L${pc}`);
    lines.push(statement(program[pc]!, pc));
  }
  // Every path ends in a ret (checked), so control never leaves the last block; the return keeps engines sure of it.
  lines.push('return 0;');
  const body = new Function('KernelOnly', `return function classicFilter(p, v, b, n) {\n${lines.join('\n')}\n};`)(KernelOnlyError) as
    (p: Uint8Array, v: DataView, b: number, n: number) => number;
  const matcher = (packet: Uint8Array) => body(packet, new DataView(packet.buffer, packet.byteOffset, packet.byteLength), 0, packet.byteLength);
  matcher.at = (bytes: Uint8Array, view: DataView, offset: number, length: number) => body(bytes, view, offset, length);
  return matcher;
}

function statement(insn: { code: number; jt: number; jf: number; k: number }, pc: number): string {
  const { code, jt, jf } = insn;
  const k = insn.k >>> 0;
  const cls = classicClass(code);
  const mode = code & 0xe0;
  const size = code & 0x18;
  const operand = (code & ClassicSource.X) !== 0 ? 'x' : String(k);
  switch (cls) {
    case ClassicClass.LD:
    case ClassicClass.LDX: {
      const reg = cls === ClassicClass.LD ? 'a' : 'x';
      if (mode === ClassicMode.IMM) return `${reg} = ${k};`;
      if (mode === ClassicMode.MEM) return `${reg} = m[${k}];`;
      if (mode === ClassicMode.LEN) return `${reg} = n;`;
      if (mode === ClassicMode.ABS) return load(size, String(k));
      if (mode === ClassicMode.IND) {
        // X + k as the kernel computes it: a 32-bit signed offset; negative ones address link/network headers.
        return `o = (x + ${k}) | 0; if (o < 0) { if (o >= ${SIGNED_MIN_SPECIAL | 0}) throw new KernelOnly(); return 0; } ${load(size, 'o')}`;
      }
      return `if (${k} >= n) return 0; x = (p[b + ${k}] & 0xf) << 2;`; // ldxb 4*([k]&0xf)
    }
    case ClassicClass.ST: return `m[${k}] = a;`;
    case ClassicClass.STX: return `m[${k}] = x;`;
    case ClassicClass.ALU: {
      const op = code & 0xf0;
      switch (op) {
        case ClassicAluOp.ADD: return `a = (a + ${operand}) >>> 0;`;
        case ClassicAluOp.SUB: return `a = (a - ${operand}) >>> 0;`;
        case ClassicAluOp.MUL: return `a = Math.imul(a, ${operand}) >>> 0;`;
        case ClassicAluOp.DIV: return operand === 'x' ? 'if (x === 0) return 0; a = Math.floor(a / x) >>> 0;' : `a = Math.floor(a / ${k}) >>> 0;`;
        case ClassicAluOp.MOD: return operand === 'x' ? 'if (x === 0) return 0; a = (a % x) >>> 0;' : `a = (a % ${k}) >>> 0;`;
        case ClassicAluOp.OR: return `a = (a | ${operand}) >>> 0;`;
        case ClassicAluOp.AND: return `a = (a & ${operand}) >>> 0;`;
        case ClassicAluOp.XOR: return `a = (a ^ ${operand}) >>> 0;`;
        // The kernel masks 32-bit shift counts to 5 bits, as JavaScript does.
        case ClassicAluOp.LSH: return `a = (a << ${operand}) >>> 0;`;
        case ClassicAluOp.RSH: return `a = a >>> ${operand};`;
        default: return 'a = (-a) >>> 0;'; // NEG
      }
    }
    case ClassicClass.JMP: {
      const op = code & 0xf0;
      if (op === ClassicJmpOp.JA) return `break L${pc + 1 + k};`;
      const cond = op === ClassicJmpOp.JEQ ? `a === ${operand}` : op === ClassicJmpOp.JGT ? `a > ${operand}`
        : op === ClassicJmpOp.JGE ? `a >= ${operand}` : `(a & ${operand}) !== 0`;
      const branch = (skip: number) => (skip === 0 ? '' : `break L${pc + 1 + skip};`);
      if (jt === jf) return branch(jt);
      return `if (${cond}) { ${branch(jt)} } else { ${branch(jf)} }`;
    }
    case ClassicClass.RET: return (code & 0x18) === ClassicRval.A ? 'return a;' : `return ${k};`;
    default: return (code & 0xf8) === ClassicMiscOp.TAX ? 'x = a;' : 'a = x;';
  }
}
