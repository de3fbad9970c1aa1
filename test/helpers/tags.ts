import { createHash } from 'node:crypto';
import type { BpfObjectSpec } from '../../src/object/index.js';

/**
 * The kernel's program tag, computed here without the loader: SHA-256 over the instructions as the object has them,
 * with each map reference turned into a pseudo map ld_imm64 whose immediates (both halves) are zeroed.
 */
export function expectedTag(s: BpfObjectSpec, programName: string): string {
  const program = s.programs.find((p) => p.name === programName)!;
  const insns = Buffer.from(program.bytes);
  for (const r of program.relocations) {
    const at = (r.insn * 8) - program.offset;
    insns[at + 1] = (insns[at + 1]! & 0x0f) | ((r.kind === 'map' ? 1 : 2) << 4);
    insns.writeInt32LE(0, at + 4);
    insns.writeInt32LE(0, at + 12);
  }
  return createHash('sha256').update(insns).digest('hex').slice(0, 16);
}
