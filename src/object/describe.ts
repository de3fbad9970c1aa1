import { toHex } from '../base/cursor.js';
import { mapTypeName } from '../base/uapi.js';
import { SectionType } from '../elf/index.js';
import { decodeInsns, formatInsn, type Insn, insnSlots } from '../insn/index.js';
import type { BpfObjectSpec, ProgramSpec, RelocationSpec, SectionRole, SubprogramSpec } from './spec.js';

/** One instruction as --dump shows it. `text` is exactly llvm-objdump's; `annotation` is what we add. */
export interface InsnDump {
  /** Index within the section, in 8-byte slots, as llvm-objdump numbers them. */
  readonly index: number;
  /** Hex of the instruction's bytes in file order (16 bytes for ld_imm64). */
  readonly raw: string;
  readonly text: string;
  /** Relocation target, e.g. `map[my_map]`, `call add`, `.bss+0x8`. */
  readonly annotation?: string;
}

export interface ObjectDump {
  readonly file: string | null;
  readonly byteOrder: 'little' | 'big';
  readonly machine: string;
  readonly license: string;
  readonly kernVersion: number | null;
  readonly sections: ReadonlyArray<{ index: number; name: string; type: string; size: number; flags: string; role: SectionRole }>;
  readonly maps: ReadonlyArray<{
    name: string; index: number; source: string; section: string; type: string; keySize: number; valueSize: number;
    maxEntries: number; flags: number; innerMap: string | null; pinning: string;
    /** C-like BTF type names of key and value, when the object's BTF describes them. */
    keyType: string | null; valueType: string | null;
  }>;
  readonly variables: ReadonlyArray<{ name: string; section: string; offset: number; size: number; type: string | null }>;
  readonly programs: ReadonlyArray<{
    section: string; name: string; type: string; attachType: string | null; attach: string; attachTarget: string;
    /** In 8-byte slots (a 64-bit immediate load is two), as the listing's indexes and the kernel count them. */
    tailCallSlot: number | null; insnCount: number; insns: InsnDump[];
  }>;
  readonly subprograms: ReadonlyArray<{ section: string; name: string; global: boolean; insnCount: number; insns: InsnDump[] }>;
  readonly relocations: ReadonlyArray<{ section: string; insn: number; program: string; symbol: string; kind: string; target: string }>;
}

const SECTION_TYPE_NAMES = new Map<number, string>(Object.entries(SectionType).map(([k, v]) => [v, k]));

export interface DescribeOptions {
  /**
   * false: every `insns` is left empty (insnCount still counts their slots), for callers that disassemble one function at a
   * time instead of holding the whole object's disassembly (the streamed text --dump).
   */
  readonly disassembly?: boolean;
}

/** Everything --dump shows, as plain data (the CLI prints it as text or JSON). Pure. */
export function describeObject(spec: BpfObjectSpec, options: DescribeOptions = {}): ObjectDump {
  const withInsns = options.disassembly ?? true;
  const insnsOf = (fn: ProgramSpec | SubprogramSpec) => (withInsns ? disassemble(fn) : []);
  return {
    file: spec.file ?? null,
    byteOrder: spec.littleEndian ? 'little' : 'big',
    machine: spec.machine === 247 ? 'bpf' : spec.machine === 0 ? 'none' : String(spec.machine),
    license: spec.license,
    kernVersion: spec.kernVersion ?? null,
    sections: spec.sections.map((s) => ({
      index: s.index, name: s.name, type: SECTION_TYPE_NAMES.get(s.type) ?? `0x${s.type.toString(16)}`, size: s.size,
      flags: sectionFlagLetters(s.flags), role: s.role,
    })),
    maps: spec.maps.map((m) => ({
      name: m.name, index: m.index, source: m.source, section: m.section, type: mapTypeName(m.type), keySize: m.keySize,
      valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags,
      innerMap: m.innerMap ?? (m.innerDefinition === undefined ? null : `${m.innerDefinition.typeName} (inline)`), pinning: m.pinning,
      keyType: btfTypeName(spec, m.btfKeyTypeId), valueType: m.source === 'data' ? null : btfTypeName(spec, m.btfValueTypeId),
    })),
    variables: spec.variables.map((v) => ({ name: v.name, section: v.section, offset: v.offset, size: v.size, type: btfTypeName(spec, v.btfTypeId) })),
    programs: spec.programs.map((p) => {
      const insns = insnsOf(p);
      return {
        section: p.section, name: p.name, type: p.type, attachType: p.attachType ?? null, attach: p.attach,
        attachTarget: p.attachTarget, tailCallSlot: p.tailCallSlot ?? null, insnCount: Math.ceil(p.bytes.byteLength / 8), insns,
      };
    }),
    subprograms: spec.subprograms.map((s) => {
      const insns = insnsOf(s);
      return { section: s.section, name: s.name, global: s.global, insnCount: Math.ceil(s.bytes.byteLength / 8), insns };
    }),
    relocations: spec.relocations.map((r) => ({
      section: r.section, insn: r.insn, program: r.program, symbol: r.symbol, kind: r.kind, target: r.target,
    })),
  };
}

function btfTypeName(spec: BpfObjectSpec, id: number | undefined): string | null {
  if (id === undefined || spec.btf === undefined) return null;
  try {
    return spec.btf.typeName(id);
  } catch {
    return null;
  }
}

/** Disassembles a program or subprogram; instruction indices count slots from the start of the section. */
export function disassemble(fn: ProgramSpec | SubprogramSpec): InsnDump[] {
  const out: InsnDump[] = [];
  forEachInsn(fn, (insn, slot, byte, size, reloc) => {
    const raw = toHex(fn.bytes.subarray(byte, byte + size));
    const text = formatInsn(insn, fn.littleEndian);
    out.push(reloc === undefined ? { index: slot, raw, text } : { index: slot, raw, text, annotation: annotate(reloc) });
  });
  return out;
}

/**
 * Walks a function's instructions with what a listing needs: the slot index within the section, the byte offset and
 * size within the function, and the relocation on that slot. The one walk behind disassemble() and the streamed text.
 */
export function forEachInsn(
  fn: ProgramSpec | SubprogramSpec,
  visit: (insn: Insn, slot: number, byte: number, size: number, reloc: RelocationSpec | undefined) => void,
): void {
  const relocs = new Map<number, RelocationSpec>(fn.relocations.map((r) => [r.insn, r]));
  let slot = fn.offset / 8;
  let byte = 0;
  for (const insn of decodeInsns(fn.bytes, fn.littleEndian)) {
    const size = insn.truncated?.byteLength ?? insnSlots(insn) * 8;
    visit(insn, slot, byte, size, relocs.get(slot));
    slot += Math.ceil(size / 8);
    byte += size;
  }
}

/** What a relocation makes of its instruction, e.g. `map[my_map]`. */
export function annotate(r: RelocationSpec): string {
  switch (r.kind) {
    case 'map':
      return `map[${r.target}]`;
    case 'data':
      return `${r.target}+0x${r.targetOffset.toString(16)}`;
    case 'call':
      return `call ${r.target}`;
    case 'func_addr':
      return `func[${r.target}]`;
    case 'extern':
      return `extern[${r.target}]`;
  }
}

/** The instruction text with the relocation folded in (`r1 = map[my_map] ll`), for human-readable output. */
export function annotatedText(insn: Pick<InsnDump, 'text' | 'annotation'>): string {
  if (insn.annotation === undefined) return insn.text;
  const ld = /^(r\d+) = .* ll$/.exec(insn.text);
  if (ld !== null) return `${ld[1]} = ${insn.annotation} ll`;
  if (insn.annotation.startsWith('call ') && insn.text.startsWith('call')) return insn.annotation;
  return `${insn.text}  ; ${insn.annotation}`;
}

function sectionFlagLetters(flags: number): string {
  let s = '';
  if (flags & 0x1) s += 'W';
  if (flags & 0x2) s += 'A';
  if (flags & 0x4) s += 'X';
  if (flags & 0x10) s += 'M';
  if (flags & 0x20) s += 'S';
  return s;
}
