/**
 * Classic → extended BPF, the way the kernel's bpf_convert_filter() turns an attached classic filter into eBPF, so a
 * classic program can be loaded with BPF_PROG_LOAD (and run with BPF_PROG_TEST_RUN) like any other.
 *
 * Registers as the kernel assigns them: A in r0, X in r7, a temporary in r8, the context (struct __sk_buff *) in r6
 * (the register ld_abs/ld_ind read the packet through), M[0..15] in the 64 bytes below r10. Packet loads stay
 * ld_abs/ld_ind, whose out-of-bounds case ends the program with 0 exactly as classic BPF does.
 *
 * Two departures, both for user space: conditional jumps use the JMP32 class (kernels ≥ 5.1) instead of the kernel's
 * zero-extending move into a temporary, since classic comparisons are unsigned 32-bit; and ancillary loads read
 * the matching `struct __sk_buff` field instead of the kernel-internal sk_buff (hatype comes in as a fact about the
 * device; netlink attributes and the payload offset, which have no such field, are refused).
 */
import type { Insn } from '../insn/insn.js';
import { AluOp, InsnClass, InsnMode, InsnSize, InsnSource, JmpOp, Opcode } from '../insn/opcodes.js';
import { ClassicFilterError } from './errors.js';
import {
  ancillaryAt, CLASSIC_MEMWORDS, ClassicAluOp, ClassicClass, ClassicJmpOp, ClassicMiscOp, ClassicMode, ClassicRval,
  ClassicSource, classicClass,
} from './opcodes.js';
import { checkClassicProgram, type ClassicProgram } from './program.js';

const R_A = 0;
const R_CTX = 6;
const R_X = 7;
const R_TMP = 8;
const R_FP = 10;

/** struct __sk_buff offsets (include/uapi/linux/bpf.h) of the fields ancillary loads map to. */
const SK_BUFF = { len: 0, pkt_type: 4, mark: 8, queue_mapping: 12, protocol: 16, vlan_present: 20, vlan_tci: 24, vlan_proto: 28, ifindex: 40, hash: 68 } as const;

/** Helper ids (enum bpf_func_id). */
const HELPER = { get_prandom_u32: 7, get_smp_processor_id: 8 } as const;

const ALU32 = InsnClass.ALU;
const JMP32 = InsnClass.JMP32;

function insn(opcode: number, dst: number, src: number, off: number, imm: number): Insn {
  return { opcode, dst, src, off, imm: imm | 0 };
}
const mov32Imm = (dst: number, imm: number) => insn(ALU32 | InsnSource.K | AluOp.MOV, dst, 0, 0, imm);
const mov32Reg = (dst: number, src: number) => insn(ALU32 | InsnSource.X | AluOp.MOV, dst, src, 0, 0);
const mov64Reg = (dst: number, src: number) => insn(Opcode.MOV64_REG, dst, src, 0, 0);
const alu32Imm = (op: number, dst: number, imm: number) => insn(ALU32 | InsnSource.K | op, dst, 0, 0, imm);
const loadWord = (dst: number, base: number, off: number) => insn(InsnClass.LDX | InsnMode.MEM | InsnSize.W, dst, base, off, 0);
const storeWord = (base: number, off: number, src: number) => insn(InsnClass.STX | InsnMode.MEM | InsnSize.W, base, src, off, 0);
const exit = () => insn(Opcode.EXIT, 0, 0, 0, 0);
const memOffset = (k: number) => -(CLASSIC_MEMWORDS - k) * 4;

/** Classic jump operations → eBPF ones, and the inverse used when only the false branch jumps. */
const JMP_OPS: Readonly<Record<number, { readonly op: number; readonly inverse?: number }>> = {
  [ClassicJmpOp.JEQ]: { op: JmpOp.JEQ, inverse: JmpOp.JNE },
  [ClassicJmpOp.JGT]: { op: JmpOp.JGT, inverse: JmpOp.JLE },
  [ClassicJmpOp.JGE]: { op: JmpOp.JGE, inverse: JmpOp.JLT },
  [ClassicJmpOp.JSET]: { op: JmpOp.JSET },
};

/** What the translation cannot read from the packet's context: facts about where the program will run. */
export interface ClassicTranslationFacts {
  /**
   * ARPHRD_* of the device the program runs on, for SKF_AD_HATYPE (skb->dev->type: no struct __sk_buff field holds
   * it). BPF_PROG_TEST_RUN runs on the loopback device (ARPHRD_LOOPBACK, 772). Without it, hatype is refused.
   */
  readonly deviceType?: number;
}

function ancillary(k: number, source: string | undefined, index: number, facts: ClassicTranslationFacts): Insn[] {
  const anc = ancillaryAt(k)!;
  const field = (off: number) => [loadWord(R_A, R_CTX, off)];
  // __sk_buff.protocol and vlan_proto hold the network-order 16-bit value; classic BPF sees it in host order.
  const be16 = insn(ALU32 | InsnSource.X | AluOp.END, R_A, 0, 0, 16);
  switch (anc.name) {
    case 'proto': return [...field(SK_BUFF.protocol), be16];
    case 'type': return field(SK_BUFF.pkt_type);
    case 'ifidx': return field(SK_BUFF.ifindex);
    case 'mark': return field(SK_BUFF.mark);
    case 'queue': return field(SK_BUFF.queue_mapping);
    case 'rxhash': return field(SK_BUFF.hash);
    case 'vlan_tci': return field(SK_BUFF.vlan_tci);
    case 'vlanp': return field(SK_BUFF.vlan_present);
    case 'vlan_tpid': return [...field(SK_BUFF.vlan_proto), be16];
    case 'xor_x': return [insn(ALU32 | InsnSource.X | AluOp.XOR, R_A, R_X, 0, 0)];
    case 'hatype':
      if (facts.deviceType === undefined) {
        throw new ClassicFilterError(source, index, 'ancillary load [hatype] (SKF_AD_HATYPE) reads the device type, which no struct __sk_buff field holds: give the device\'s type (deviceType) to translate it');
      }
      return [mov32Imm(R_A, facts.deviceType)];
    case 'cpu': return [insn(Opcode.CALL, 0, 0, 0, HELPER.get_smp_processor_id)];
    case 'random': return [insn(Opcode.CALL, 0, 0, 0, HELPER.get_prandom_u32)];
    default:
      throw new ClassicFilterError(source, index, `ancillary load [${anc.name}] (${anc.what}) has no struct __sk_buff field an eBPF program could read instead`);
  }
}

/**
 * The eBPF translation of a (checked) classic program, for a program type whose context is struct __sk_buff
 * (socket_filter, sched_cls). Jumps are resolved; the result encodes with encodeInsns().
 */
// Long: one case per classic instruction class, in the order of the kernel's bpf_convert_filter, to read side by side.
export function classicToEbpf(program: ClassicProgram, source?: string, facts: ClassicTranslationFacts = {}): Insn[] {
  checkClassicProgram(program, source);
  const out: Insn[] = [mov64Reg(R_CTX, 1), mov32Imm(R_A, 0), mov32Imm(R_X, 0)];
  const start = new Array<number>(program.length);
  const fixups: Array<{ at: number; target: number }> = [];
  const jumpTo = (opcode: number, dst: number, src: number, imm: number, target: number) => {
    fixups.push({ at: out.length, target });
    out.push(insn(opcode, dst, src, 0, imm));
  };

  for (let pc = 0; pc < program.length; pc++) {
    start[pc] = out.length;
    const { code, jt, jf, k } = program[pc]!;
    const cls = classicClass(code);
    const mode = code & 0xe0;
    const fromX = (code & ClassicSource.X) !== 0;
    switch (cls) {
      case ClassicClass.LD:
      case ClassicClass.LDX: {
        const dst = cls === ClassicClass.LD ? R_A : R_X;
        if (mode === ClassicMode.IMM) out.push(mov32Imm(dst, k));
        else if (mode === ClassicMode.MEM) out.push(loadWord(dst, R_FP, memOffset(k)));
        else if (mode === ClassicMode.LEN) out.push(loadWord(dst, R_CTX, SK_BUFF.len));
        else if (mode === ClassicMode.ABS) out.push(...(ancillaryAt(k) === undefined ? [insn(code, 0, 0, 0, k)] : ancillary(k, source, pc, facts)));
        else if (mode === ClassicMode.IND) out.push(insn(code, 0, R_X, 0, k));
        else {
          // ldxb 4*([k]&0xf): the byte arrives in r0, which holds A, so A waits in the temporary.
          out.push(mov64Reg(R_TMP, R_A), insn(InsnClass.LD | InsnMode.ABS | InsnSize.B, 0, 0, 0, k), alu32Imm(AluOp.AND, R_A, 0xf),
            alu32Imm(AluOp.LSH, R_A, 2), mov64Reg(R_X, R_A), mov64Reg(R_A, R_TMP));
        }
        break;
      }
      case ClassicClass.ST:
      case ClassicClass.STX:
        out.push(storeWord(R_FP, memOffset(k), cls === ClassicClass.ST ? R_A : R_X));
        break;
      case ClassicClass.ALU: {
        const op = code & 0xf0;
        if (op === ClassicAluOp.NEG) {
          out.push(insn(ALU32 | AluOp.NEG, R_A, 0, 0, 0));
        } else if (fromX) {
          if (op === ClassicAluOp.DIV || op === ClassicAluOp.MOD) {
            // Classic division by a zero X ends the program with 0; eBPF's would yield 0 and go on.
            out.push(insn(JMP32 | InsnSource.K | JmpOp.JNE, R_X, 0, 2, 0), mov32Imm(R_A, 0), exit());
          }
          out.push(insn(ALU32 | InsnSource.X | op, R_A, R_X, 0, 0));
        } else {
          out.push(alu32Imm(op, R_A, k));
        }
        break;
      }
      case ClassicClass.JMP: {
        const op = code & 0xf0;
        if (op === ClassicJmpOp.JA) {
          jumpTo(Opcode.JA, 0, 0, 0, pc + 1 + k);
          break;
        }
        const ops = JMP_OPS[op]!;
        const src = fromX ? R_X : 0;
        const imm = fromX ? 0 : k;
        const source32 = fromX ? InsnSource.X : InsnSource.K;
        if (jt === 0 && jf === 0) break; // both branches fall through
        if (jf === 0) {
          jumpTo(JMP32 | source32 | ops.op, R_A, src, imm, pc + 1 + jt);
        } else if (jt === 0 && ops.inverse !== undefined) {
          jumpTo(JMP32 | source32 | ops.inverse, R_A, src, imm, pc + 1 + jf);
        } else {
          jumpTo(JMP32 | source32 | ops.op, R_A, src, imm, pc + 1 + jt);
          jumpTo(Opcode.JA, 0, 0, 0, pc + 1 + jf);
        }
        break;
      }
      case ClassicClass.RET:
        if ((code & 0x18) === ClassicRval.K) out.push(mov32Imm(R_A, k));
        out.push(exit());
        break;
      default: // MISC
        out.push((code & 0xf8) === ClassicMiscOp.TAX ? mov32Reg(R_X, R_A) : mov32Reg(R_A, R_X));
    }
  }
  for (const { at, target } of fixups) {
    const jump = out[at]!;
    out[at] = { ...jump, off: start[target]! - (at + 1) };
  }
  return out;
}
