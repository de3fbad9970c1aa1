import { toHex } from '../base/cursor.js';
import { CallSrc, helperCallText, INSN_SLOT_SIZE, mapTypeName } from '../base/uapi.js';
import { SectionType } from '../elf/index.js';
import { decodeInsns, formatInsn, type Insn, insnSlots, isCall } from '../insn/index.js';
import type { BpfObjectSpec, MapSpec, ProgramSpec, RelocationSpec, SectionRole, SubprogramSpec } from './spec.js';

/** One instruction as --dump shows it. `text` is exactly llvm-objdump's; `annotation` is what we add. */
export interface InsnDump {
  /** Index within the section, in 8-byte slots, as llvm-objdump numbers them. */
  readonly index: number;
  /** Hex of the instruction's bytes in file order (16 bytes for ld_imm64). */
  readonly raw: string;
  readonly text: string;
  /** Relocation target, e.g. `map[my_map]`, `call add`, `.bss+0x8`. */
  readonly annotation?: string;
  /** Helper calls: the helper, as bpftool names it (`bpf_map_lookup_elem#1`). */
  readonly helper?: string;
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
    /** iproute2's id, inner_id and inner_idx (struct bpf_elf_map), for maps that have them. */
    iproute2: { id: number; innerId: number; innerIdx: number } | null;
    /** What loading will need or refuse (max_entries 0, unknown pinning, an unresolved reference); shown, not fatal. */
    notes: string[];
  }>;
  readonly variables: ReadonlyArray<{ name: string; section: string; offset: number; size: number; type: string | null }>;
  readonly programs: ReadonlyArray<{
    section: string; name: string; type: string; attachType: string | null; attach: string; attachTarget: string;
    /** In 8-byte slots (a 64-bit immediate load is two), as the listing's indexes and the kernel count them. */
    tailCallSlot: number | null;
    /** iproute2 `ID/KEY` sections: the id of the prog array the slot is in. */
    tailCallMapId: number | null;
    /** 'section' when the section name gave the type, 'user' when programTypes (--type) did. */
    typeSource: 'section' | 'user';
    insnCount: number; insns: InsnDump[];
    notes: string[];
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
  /** false: `relocations` is left empty, for a caller that lists them from the spec row by row (the streamed text). */
  readonly relocations?: boolean;
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
      iproute2: m.iproute2 === undefined ? null : { ...m.iproute2 }, notes: mapNotes(spec, m),
    })),
    variables: spec.variables.map((v) => ({ name: v.name, section: v.section, offset: v.offset, size: v.size, type: btfTypeName(spec, v.btfTypeId) })),
    programs: spec.programs.map((p) => {
      const insns = insnsOf(p);
      return {
        section: p.section, name: p.name, type: p.type, attachType: p.attachType ?? null, attach: p.attach,
        attachTarget: p.attachTarget, tailCallSlot: p.tailCallSlot ?? null, tailCallMapId: p.tailCallMapId ?? null,
        typeSource: p.typeSource, insnCount: Math.ceil(p.bytes.byteLength / INSN_SLOT_SIZE), insns, notes: programNotes(spec, p),
      };
    }),
    subprograms: spec.subprograms.map((s) => {
      const insns = insnsOf(s);
      return { section: s.section, name: s.name, global: s.global, insnCount: Math.ceil(s.bytes.byteLength / INSN_SLOT_SIZE), insns };
    }),
    relocations: options.relocations === false ? [] : spec.relocations.map((r) => ({
      section: r.section, insn: r.insn, program: r.program, symbol: r.symbol, kind: r.kind, target: r.target,
    })),
  };
}

/** Map metadata that only loading would object to: --dump says it and goes on. */
function mapNotes(spec: BpfObjectSpec, m: MapSpec): string[] {
  const notes: string[] = [];
  const mapInMap = m.typeName === 'array_of_maps' || m.typeName === 'hash_of_maps';
  // Perf event arrays default to one entry per CPU; local storages must be 0.
  const zeroIsFine = ['perf_event_array', 'sk_storage', 'inode_storage', 'task_storage', 'cgrp_storage', 'cgroup_storage', 'percpu_cgroup_storage'];
  if (m.maxEntries === 0 && !zeroIsFine.includes(m.typeName)) notes.push(`max_entries 0: its own loader sets it at run time (--max-entries ${m.name}=N)`);
  if (m.pinning.startsWith('unknown(')) notes.push(`pinning ${m.pinning.slice(8, -1)} is no convention bpf-load knows: loading creates it unpinned`);
  if (m.pinning === 'object_ns' && m.iproute2 !== undefined) notes.push(`pinned in iproute2's object namespace: <pin root>/tc/${spec.iproute2ObjectId}/${m.name}`);
  if (m.pinning === 'global_ns' && m.iproute2 !== undefined) notes.push(`pinned in iproute2's global namespace: <pin root>/tc/globals/${m.name}`);
  if (m.iproute2 !== undefined && mapInMap && m.iproute2.innerId !== 0 && m.innerMap === undefined) {
    notes.push(`inner_id ${m.iproute2.innerId} is the id of no map: loading refuses it`);
  }
  if (m.iproute2 !== undefined && m.iproute2.id !== 0 && m.iproute2.innerId === 0 && m.iproute2.innerIdx !== 0xffffffff) {
    const outers = spec.maps.filter((o) => o.iproute2?.innerId === m.iproute2!.id && (o.typeName === 'array_of_maps' || o.typeName === 'hash_of_maps'));
    for (const o of outers) notes.push(`stored into ${o.name}[${m.iproute2.innerIdx}] (iproute2 inner_idx)`);
  }
  return notes;
}

function programNotes(spec: BpfObjectSpec, p: ProgramSpec): string[] {
  const notes: string[] = [];
  if (p.type === 'unspecified') notes.push(`section ${p.section} names no program type: loading skips it unless given one (--type)`);
  if (p.tailCallMapId !== undefined) {
    const target = spec.maps.find((m) => m.iproute2?.id === p.tailCallMapId);
    notes.push(target === undefined
      ? `tail-call section for the map with id ${p.tailCallMapId}, which no map has`
      : `goes into ${target.name}[${p.tailCallSlot}] (iproute2 tail-call section)`);
  }
  return notes;
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
    const helper = isCall(insn) && insn.src === CallSrc.HELPER ? helperCallText(insn.imm) : undefined;
    out.push({ index: slot, raw, text, ...(reloc === undefined ? {} : { annotation: annotate(reloc) }), ...(helper === undefined ? {} : { helper }) });
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
  let slot = fn.offset / INSN_SLOT_SIZE;
  let byte = 0;
  for (const insn of decodeInsns(fn.bytes, fn.littleEndian)) {
    const size = insn.truncated?.byteLength ?? insnSlots(insn) * INSN_SLOT_SIZE;
    visit(insn, slot, byte, size, relocs.get(slot));
    slot += Math.ceil(size / INSN_SLOT_SIZE);
    byte += size;
  }
}

/** What a relocation makes of its instruction, e.g. `map[my_map]`. */
export function annotate(r: RelocationSpec): string {
  const [before, after] = annotationAround(r);
  return `${before}${r.target}${after}`;
}

/** annotate()'s text on either side of the relocation's target name (the only part from the file). */
export function annotationAround(r: RelocationSpec): readonly [before: string, after: string] {
  switch (r.kind) {
    case 'map':
      return MAP_AROUND;
    case 'data':
      return ['', `+0x${r.targetOffset.toString(16)}`];
    case 'call':
      return CALL_AROUND;
    case 'func_addr':
      return FUNC_AROUND;
    case 'extern':
      return EXTERN_AROUND;
  }
}

const MAP_AROUND = ['map[', ']'] as const;
const CALL_AROUND = ['call ', ''] as const;
const FUNC_AROUND = ['func[', ']'] as const;
const EXTERN_AROUND = ['extern[', ']'] as const;

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
