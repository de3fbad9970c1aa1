/**
 * BPF opcode fields (include/uapi/linux/bpf_common.h, bpf.h) as `as const` data.
 *
 * The 8-bit opcode is `class | size | mode` for loads and stores, `class | source | operation` for ALU and jumps.
 */

/** Low 3 bits: the instruction class. */
export const InsnClass = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;

/** Bits 3-4 of a load/store: access width. */
export const InsnSize = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;

/** Bits 5-7 of a load/store: addressing mode. */
export const InsnMode = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, MEMSX: 0x80, ATOMIC: 0xc0 } as const;

/** Bit 3 of an ALU/jump: operand is the immediate (K) or the source register (X). For END: to-LE / to-BE. */
export const InsnSource = { K: 0x00, X: 0x08 } as const;

/** Bits 4-7 of an ALU/ALU64 opcode. */
export const AluOp = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70,
  NEG: 0x80, MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0,
} as const;

/** Bits 4-7 of a JMP/JMP32 opcode. */
export const JmpOp = {
  JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70,
  CALL: 0x80, EXIT: 0x90, JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0, JCOND: 0xe0,
} as const;

/** The imm field of a BPF_ATOMIC instruction: the operation, optionally or'ed with FETCH. */
export const AtomicOp = {
  ADD: 0x00, OR: 0x40, AND: 0x50, XOR: 0xa0, FETCH: 0x01, XCHG: 0xe0 | 0x01, CMPXCHG: 0xf0 | 0x01,
} as const;

/** Whole opcodes the rest of the project tests for by value. */
export const Opcode = {
  LD_IMM64: InsnClass.LD | InsnSize.DW | InsnMode.IMM, // 0x18
  CALL: InsnClass.JMP | JmpOp.CALL, // 0x85
  CALLX: InsnClass.JMP | InsnSource.X | JmpOp.CALL, // 0x8d
  EXIT: InsnClass.JMP | JmpOp.EXIT, // 0x95
  JA: InsnClass.JMP | JmpOp.JA, // 0x05
  GOTOL: InsnClass.JMP32 | JmpOp.JA, // 0x06
  MAY_GOTO: InsnClass.JMP | JmpOp.JCOND, // 0xe5
  MOV64_IMM: InsnClass.ALU64 | InsnSource.K | AluOp.MOV, // 0xb7
  MOV64_REG: InsnClass.ALU64 | InsnSource.X | AluOp.MOV, // 0xbf
} as const;

export { INSN_SLOT_SIZE } from '../base/uapi.js';

/** Registers r0..r10 are the ISA's; LLVM also names r11 (its internal frame register) and prints it. */
export const MAX_LLVM_REG = 11;

export function insnClass(opcode: number): number {
  return opcode & 0x07;
}
/** InsnSize.* of a load/store opcode. */
export function insnSize(opcode: number): number {
  return opcode & 0x18;
}
/** InsnMode.* of a load/store opcode. */
export function insnMode(opcode: number): number {
  return opcode & 0xe0;
}
/** InsnSource.* of an ALU/jump opcode. */
export function insnSource(opcode: number): number {
  return opcode & 0x08;
}
/** AluOp.* or JmpOp.* of an ALU/jump opcode. */
export function insnOp(opcode: number): number {
  return opcode & 0xf0;
}

/** Width in bytes of an InsnSize value. */
export function sizeBytes(size: number): number {
  return size === InsnSize.DW ? 8 : size === InsnSize.W ? 4 : size === InsnSize.H ? 2 : 1;
}
