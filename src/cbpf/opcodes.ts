/**
 * Classic BPF (struct sock_filter) opcodes, include/uapi/linux/filter.h and bpf_common.h, as data.
 *
 * A classic opcode is 16 bits wide in the struct but only the low 8 carry meaning: `class | size | mode` for loads
 * and stores, `class | source | operation` for ALU and jumps, `class | rval` for ret, `class | op` for misc.
 */

export const ClassicClass = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, RET: 0x06, MISC: 0x07 } as const;
export const ClassicSize = { W: 0x00, H: 0x08, B: 0x10 } as const;
export const ClassicMode = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, LEN: 0x80, MSH: 0xa0 } as const;
export const ClassicSource = { K: 0x00, X: 0x08 } as const;
export const ClassicAluOp = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90, XOR: 0xa0,
} as const;
export const ClassicJmpOp = { JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40 } as const;
/** ret's operand: the constant k, or the accumulator. */
export const ClassicRval = { K: 0x00, A: 0x10 } as const;
export const ClassicMiscOp = { TAX: 0x00, TXA: 0x80 } as const;

/** Scratch memory cells M[0..15] (BPF_MEMWORDS). */
export const CLASSIC_MEMWORDS = 16;
/** The kernel's limit on a classic program's length (BPF_MAXINSNS). */
export const CLASSIC_MAX_INSNS = 4096;
/** Bytes per struct sock_filter. */
export const SOCK_FILTER_SIZE = 8;

/**
 * Linux's ancillary data loads: `ld [SKF_AD_OFF + n]` reads packet metadata instead of packet bytes. Offsets are the
 * uapi's SKF_AD_*; names are libpcap's (what tcpdump -d prints, e.g. `ld [proto]`).
 */
export const SKF_AD_OFF = 0xfffff000; // -0x1000 as u32
export const ANCILLARY = [
  { offset: 0, name: 'proto', what: 'SKF_AD_PROTOCOL' },
  { offset: 4, name: 'type', what: 'SKF_AD_PKTTYPE' },
  { offset: 8, name: 'ifidx', what: 'SKF_AD_IFINDEX' },
  { offset: 12, name: 'nla', what: 'SKF_AD_NLATTR' },
  { offset: 16, name: 'nlan', what: 'SKF_AD_NLATTR_NEST' },
  { offset: 20, name: 'mark', what: 'SKF_AD_MARK' },
  { offset: 24, name: 'queue', what: 'SKF_AD_QUEUE' },
  { offset: 28, name: 'hatype', what: 'SKF_AD_HATYPE' },
  { offset: 32, name: 'rxhash', what: 'SKF_AD_RXHASH' },
  { offset: 36, name: 'cpu', what: 'SKF_AD_CPU' },
  { offset: 40, name: 'xor_x', what: 'SKF_AD_ALU_XOR_X' },
  { offset: 44, name: 'vlan_tci', what: 'SKF_AD_VLAN_TAG' },
  { offset: 48, name: 'vlanp', what: 'SKF_AD_VLAN_TAG_PRESENT' },
  { offset: 52, name: 'poff', what: 'SKF_AD_PAY_OFFSET' },
  { offset: 56, name: 'random', what: 'SKF_AD_RANDOM' },
  { offset: 60, name: 'vlan_tpid', what: 'SKF_AD_VLAN_TPID' },
] as const;
export type Ancillary = (typeof ANCILLARY)[number];

/** The ancillary load `k` names, or undefined for an ordinary (or unknown) offset. */
export function ancillaryAt(k: number): Ancillary | undefined {
  if (k < SKF_AD_OFF) return undefined;
  const rel = k - SKF_AD_OFF;
  return rel % 4 === 0 ? ANCILLARY[rel / 4] : undefined;
}

/** How an instruction's operand reads in tcpdump -d (libpcap's bpf_image). */
export type OperandKind =
  | 'none' // tax, txa, neg, ret a
  | 'imm-hex' // ld #0x5, and/or/xor #0x5
  | 'imm-dec' // add/sub/mul/div/mod/lsh/rsh #5, ret #5
  | 'abs' // [12], or an ancillary name
  | 'ind' // [x + 12]
  | 'mem' // M[3]
  | 'len' // #pktlen
  | 'msh' // 4*([14]&0xf)
  | 'x' // the X register
  | 'ja' // absolute target
  | 'cond-hex' // jeq #0x800 with jt/jf
  | 'cond-x'; // jeq x with jt/jf

export interface ClassicOp {
  readonly code: number;
  readonly mnemonic: string;
  readonly operand: OperandKind;
}

const C = ClassicClass;
const S = ClassicSize;
const M = ClassicMode;
const A = ClassicAluOp;
const J = ClassicJmpOp;
const X = ClassicSource.X;

function aluOps(): ClassicOp[] {
  const hexImm: ReadonlySet<number> = new Set([A.AND, A.OR, A.XOR]);
  const ops: ClassicOp[] = [];
  for (const [name, op] of Object.entries(A) as Array<[string, number]>) {
    if (op === A.NEG) continue;
    const mnemonic = name.toLowerCase();
    ops.push({ code: C.ALU | op, mnemonic, operand: hexImm.has(op) ? 'imm-hex' : 'imm-dec' });
    ops.push({ code: C.ALU | op | X, mnemonic, operand: 'x' });
  }
  return ops;
}

function jumpOps(): ClassicOp[] {
  const ops: ClassicOp[] = [{ code: C.JMP | J.JA, mnemonic: 'ja', operand: 'ja' }];
  for (const [name, op] of Object.entries(J) as Array<[string, number]>) {
    if (op === J.JA) continue;
    ops.push({ code: C.JMP | op, mnemonic: name.toLowerCase(), operand: 'cond-hex' });
    ops.push({ code: C.JMP | op | X, mnemonic: name.toLowerCase(), operand: 'cond-x' });
  }
  return ops;
}

/**
 * Every opcode the kernel accepts (net/core/filter.c, chk_code_allowed), and nothing else. tcpdump -d's mnemonics:
 * libpcap has none for `ldx #pktlen` (it prints `unimp 0x81`), so that one reads the way its `ld` sibling does.
 */
export const CLASSIC_OPS: ReadonlyMap<number, ClassicOp> = new Map([
  { code: C.LD | M.IMM, mnemonic: 'ld', operand: 'imm-hex' },
  { code: C.LD | S.W | M.ABS, mnemonic: 'ld', operand: 'abs' },
  { code: C.LD | S.H | M.ABS, mnemonic: 'ldh', operand: 'abs' },
  { code: C.LD | S.B | M.ABS, mnemonic: 'ldb', operand: 'abs' },
  { code: C.LD | S.W | M.IND, mnemonic: 'ld', operand: 'ind' },
  { code: C.LD | S.H | M.IND, mnemonic: 'ldh', operand: 'ind' },
  { code: C.LD | S.B | M.IND, mnemonic: 'ldb', operand: 'ind' },
  { code: C.LD | M.MEM, mnemonic: 'ld', operand: 'mem' },
  { code: C.LD | S.W | M.LEN, mnemonic: 'ld', operand: 'len' },
  { code: C.LDX | M.IMM, mnemonic: 'ldx', operand: 'imm-hex' },
  { code: C.LDX | M.MEM, mnemonic: 'ldx', operand: 'mem' },
  { code: C.LDX | S.W | M.LEN, mnemonic: 'ldx', operand: 'len' },
  { code: C.LDX | S.B | M.MSH, mnemonic: 'ldxb', operand: 'msh' },
  { code: C.ST, mnemonic: 'st', operand: 'mem' },
  { code: C.STX, mnemonic: 'stx', operand: 'mem' },
  ...aluOps(),
  { code: C.ALU | A.NEG, mnemonic: 'neg', operand: 'none' },
  ...jumpOps(),
  { code: C.RET | ClassicRval.K, mnemonic: 'ret', operand: 'imm-dec' },
  { code: C.RET | ClassicRval.A, mnemonic: 'ret', operand: 'none' },
  { code: C.MISC | ClassicMiscOp.TAX, mnemonic: 'tax', operand: 'none' },
  { code: C.MISC | ClassicMiscOp.TXA, mnemonic: 'txa', operand: 'none' },
].map((op) => [op.code, op as ClassicOp]));

export function classicClass(code: number): number {
  return code & 0x07;
}
/** A conditional jump (jeq/jgt/jge/jset, K or X): the only instructions whose jt/jf mean something. */
export function isConditionalJump(code: number): boolean {
  return classicClass(code) === C.JMP && (code & 0xf0) !== J.JA;
}
