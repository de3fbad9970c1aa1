export {
  type Insn, isLdImm64, isCall, isPseudoCall, isKfuncCall, insnSlots, slotOffsets, totalSlots, ldImm64Value, withImm64,
} from './insn.js';
export { countInsns, decodeInsns, encodeInsns } from './decode.js';
export { formatInsn, insnSizeAt, MAX_INSN_TEXT, writeInsnText } from './format.js';
export { formatRawHex, writeRawHex } from './operands.js';
export { InsnError } from './errors.js';
export { InsnSlots } from './edit.js';
export {
  InsnClass, InsnSize, InsnMode, InsnSource, AluOp, JmpOp, AtomicOp, Opcode, INSN_SLOT_SIZE, MAX_LLVM_REG,
  insnClass, insnSize, insnMode, insnSource, insnOp, sizeBytes,
} from './opcodes.js';
