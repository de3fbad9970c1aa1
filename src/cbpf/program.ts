/**
 * The classic BPF program model (struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }) and the checks the
 * kernel's bpf_check_classic() makes before SO_ATTACH_FILTER accepts a program, so a bad filter is refused here with
 * the instruction named instead of by an EINVAL from setsockopt.
 */
import { ByteReader } from '../base/cursor.js';
import { ClassicFilterError } from './errors.js';
import {
  ancillaryAt, CLASSIC_MAX_INSNS, CLASSIC_MEMWORDS, CLASSIC_OPS, ClassicAluOp, ClassicClass, ClassicJmpOp, ClassicMode,
  ClassicSource, classicClass, isConditionalJump, SKF_AD_OFF, SOCK_FILTER_SIZE,
} from './opcodes.js';

export interface SockFilter {
  /** 16-bit opcode (only the values in CLASSIC_OPS are valid). */
  readonly code: number;
  /** Conditional jumps: instructions to skip when true / false. */
  readonly jt: number;
  readonly jf: number;
  /** 32-bit operand, unsigned. */
  readonly k: number;
}

export type ClassicProgram = readonly SockFilter[];

function inRange(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

/**
 * bpf_check_classic()'s rules (net/core/filter.c): length 1..4096; known opcodes only; no division or modulo by a
 * constant zero; constant shifts below 32; memory cells 0..15, each stored on every path before it is loaded; jump
 * targets inside the program; ancillary loads the kernel knows; a `ret` last. Throws ClassicFilterError naming the
 * first offending instruction; returns the program for chaining.
 */
export function checkClassicProgram(program: ClassicProgram, source?: string): ClassicProgram {
  const n = program.length;
  if (n === 0) throw new ClassicFilterError(source, undefined, 'empty program (the kernel needs at least a ret)');
  if (n > CLASSIC_MAX_INSNS) throw new ClassicFilterError(source, undefined, `${n} instructions, more than the kernel's ${CLASSIC_MAX_INSNS}`);
  for (let pc = 0; pc < n; pc++) {
    const insn = program[pc]!;
    const fail = (cause: string): never => {
      throw new ClassicFilterError(source, pc, cause);
    };
    if (!inRange(insn.code, 0xffff) || !inRange(insn.jt, 0xff) || !inRange(insn.jf, 0xff) || !inRange(insn.k, 0xffffffff)) {
      fail(`field out of range (code ${insn.code}, jt ${insn.jt}, jf ${insn.jf}, k ${insn.k})`);
    }
    const op = CLASSIC_OPS.get(insn.code);
    if (op === undefined) fail(`unknown opcode 0x${insn.code.toString(16)}`);
    const code = insn.code;
    const { k } = insn;
    const cls = classicClass(code);
    if (cls === ClassicClass.ALU && (code & ClassicSource.X) === 0) {
      const aluOp = code & 0xf0;
      if ((aluOp === ClassicAluOp.DIV || aluOp === ClassicAluOp.MOD) && k === 0) fail(`${op!.mnemonic} #0: division by zero`);
      if ((aluOp === ClassicAluOp.LSH || aluOp === ClassicAluOp.RSH) && k >= 32) fail(`${op!.mnemonic} #${k}: shift of 32 or more`);
    }
    if ((op!.operand === 'mem') && k >= CLASSIC_MEMWORDS) fail(`${op!.mnemonic} M[${k}]: scratch memory has cells 0..${CLASSIC_MEMWORDS - 1}`);
    if (cls === ClassicClass.LD && (code & 0xe0) === ClassicMode.ABS && k >= SKF_AD_OFF && ancillaryAt(k) === undefined) {
      fail(`${op!.mnemonic} [${k | 0}]: unknown ancillary load (SKF_AD_OFF + ${k - SKF_AD_OFF})`);
    }
    if (code === (ClassicClass.JMP | ClassicJmpOp.JA)) {
      // The kernel compares k against the remaining length: a forward jump inside the program, never backwards.
      if ((k | 0) < 0) fail(`ja: jumps backwards to ${pc + 1 + (k | 0)} (the kernel takes forward jumps only; libpcap emits these for protochain)`);
      if (k >= n - pc - 1) fail(`ja: jump target ${pc + 1 + k} is outside the program (${n} instructions)`);
    } else if (isConditionalJump(code)) {
      const last = Math.max(insn.jt, insn.jf);
      if (pc + 1 + last >= n) fail(`${op!.mnemonic}: jump target ${pc + 1 + last} is outside the program (${n} instructions)`);
    }
  }
  if (classicClass(program[n - 1]!.code) !== ClassicClass.RET) {
    throw new ClassicFilterError(source, n - 1, 'the last instruction is not a ret (the program could run off its end)');
  }
  checkScratchMemory(program, source);
  return program;
}

/** check_load_and_stores(): along every path, M[k] is stored before it is loaded. */
function checkScratchMemory(program: ClassicProgram, source: string | undefined): void {
  const ALL = 0xffff;
  const masks = new Uint16Array(program.length).fill(ALL);
  let valid = 0;
  for (let pc = 0; pc < program.length; pc++) {
    valid &= masks[pc]!;
    const { code, k, jt, jf } = program[pc]!;
    const cls = classicClass(code);
    if (cls === ClassicClass.ST || cls === ClassicClass.STX) {
      valid |= 1 << k;
    } else if (code === (ClassicClass.LD | ClassicMode.MEM) || code === (ClassicClass.LDX | ClassicMode.MEM)) {
      if ((valid & (1 << k)) === 0) throw new ClassicFilterError(source, pc, `load of M[${k}] that is not stored on every path before it`);
    } else if (code === (ClassicClass.JMP | ClassicJmpOp.JA)) {
      masks[pc + 1 + k] = masks[pc + 1 + k]! & valid;
      valid = ALL;
    } else if (isConditionalJump(code)) {
      masks[pc + 1 + jt] = masks[pc + 1 + jt]! & valid;
      masks[pc + 1 + jf] = masks[pc + 1 + jf]! & valid;
      valid = ALL;
    }
  }
}

function rawError(source: string | undefined) {
  return (what: string, offset: number, size: number, limit: number): Error =>
    new ClassicFilterError(source, Math.floor(offset / SOCK_FILTER_SIZE), `${what}: ${size} bytes at offset ${offset} exceed ${limit}`);
}

export interface ClassicParseOptions {
  /** Check the program like the kernel does (default true); off to read programs only libpcap runs, e.g. protochain's loops. */
  readonly kernelCheck?: boolean;
}

/**
 * Raw struct sock_filter records, 8 bytes each, in the host's (little-endian) byte order — what a C program passes in
 * struct sock_fprog. The result is checked like the kernel checks it.
 */
export function decodeClassicProgram(bytes: Uint8Array, source?: string, options: ClassicParseOptions = {}): SockFilter[] {
  if (bytes.byteLength % SOCK_FILTER_SIZE !== 0) {
    throw new ClassicFilterError(source, undefined, `${bytes.byteLength} bytes is not a whole number of ${SOCK_FILTER_SIZE}-byte sock_filter records`);
  }
  const reader = new ByteReader(bytes, true, rawError(source));
  const program: SockFilter[] = [];
  for (let off = 0; off < bytes.byteLength; off += SOCK_FILTER_SIZE) {
    program.push({ code: reader.u16(off, 'code'), jt: reader.u8(off + 2, 'jt'), jf: reader.u8(off + 3, 'jf'), k: reader.u32(off + 4, 'k') });
  }
  if (options.kernelCheck !== false) checkClassicProgram(program, source);
  return program;
}

/** The program as struct sock_filter bytes (little-endian), ready for SO_ATTACH_FILTER. */
export function encodeClassicProgram(program: ClassicProgram): Buffer {
  const out = Buffer.alloc(program.length * SOCK_FILTER_SIZE);
  program.forEach((insn, i) => {
    out.writeUInt16LE(insn.code, i * SOCK_FILTER_SIZE);
    out.writeUInt8(insn.jt, i * SOCK_FILTER_SIZE + 2);
    out.writeUInt8(insn.jf, i * SOCK_FILTER_SIZE + 3);
    out.writeUInt32LE(insn.k, i * SOCK_FILTER_SIZE + 4);
  });
  return out;
}
