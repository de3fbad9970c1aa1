/**
 * Reading and editing instruction fields in place, by slot index, in either byte order: what relocation (load) and
 * relocation parsing (object) need without decoding a whole program. CO-RE patching decodes and re-encodes single
 * instructions through decode.ts instead, since it changes opcodes too.
 */
import { INSN_SLOT_SIZE } from '../base/uapi.js';

export class InsnSlots {
  readonly bytes: Uint8Array;
  readonly littleEndian: boolean;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, littleEndian: boolean) {
    this.bytes = bytes;
    this.littleEndian = littleEndian;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Whole slots (a trailing partial slot is not counted). */
  get count(): number {
    return Math.floor(this.bytes.byteLength / INSN_SLOT_SIZE);
  }

  opcode(at: number): number {
    return this.view.getUint8(at * INSN_SLOT_SIZE);
  }

  /** The source register: the high nibble of the registers byte in little-endian objects, the low one in big-endian. */
  src(at: number): number {
    const regs = this.view.getUint8(at * INSN_SLOT_SIZE + 1);
    return this.littleEndian ? regs >> 4 : regs & 0xf;
  }

  imm(at: number): number {
    return this.view.getInt32(at * INSN_SLOT_SIZE + 4, this.littleEndian);
  }

  setSrc(at: number, src: number): void {
    const o = at * INSN_SLOT_SIZE + 1;
    const regs = this.view.getUint8(o);
    this.view.setUint8(o, this.littleEndian ? (regs & 0x0f) | (src << 4) : (regs & 0xf0) | (src & 0xf));
  }

  setOff(at: number, off: number): void {
    this.view.setInt16(at * INSN_SLOT_SIZE + 2, off, this.littleEndian);
  }

  setImm(at: number, imm: number): void {
    this.view.setInt32(at * INSN_SLOT_SIZE + 4, imm, this.littleEndian);
  }

  /** A ld_imm64's source and both immediate halves (the second slot's imm is the high 32 bits). */
  setImm64(at: number, src: number, lo: number, hi: number): void {
    this.setSrc(at, src);
    this.setImm(at, lo);
    this.setImm(at + 1, hi);
  }
}
