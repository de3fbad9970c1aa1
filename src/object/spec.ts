import type { AttachTypeName, MapTypeName, ProgTypeName } from '../base/uapi.js';
import type { Btf, BtfExt } from '../btf/index.js';
import type { AttachKind } from './section-table.js';

/** What a section is for, as the spec understands it (shown by --dump). */
export type SectionRole =
  | 'program' | 'subprograms' | 'maps' | 'btf_maps' | 'struct_ops' | 'data' | 'rodata' | 'bss' | 'license' | 'version'
  | 'btf' | 'btf_ext' | 'relocations' | 'symbols' | 'strings' | 'debug' | 'other';

export interface SectionSpec {
  readonly index: number;
  readonly name: string;
  /** ELF sh_type and sh_flags. */
  readonly type: number;
  readonly flags: number;
  readonly size: number;
  readonly role: SectionRole;
}

/**
 * A map definition. Legacy definitions (`maps` sections) carry bpf_load.c's fields; the loader creates maps in
 * `index` order, which is also what `innerMapIndex` refers to.
 */
export interface MapSpec {
  readonly name: string;
  /** Position among the object's maps (legacy maps first, sorted by offset, as bpf_load.c numbered them). */
  readonly index: number;
  readonly source: 'legacy' | 'btf' | 'data';
  readonly section: string;
  /** Byte offset of the definition in its section (bpf_load.c's elf_offset). */
  readonly offset: number;
  readonly type: number;
  readonly typeName: MapTypeName | `unknown(${number})`;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** Only meaningful with BPF_F_NUMA_NODE in flags. */
  readonly numaNode: number;
  /** Legacy: index (into the object's maps) of the inner map template of a map-in-map. */
  readonly innerMapIndex: number | undefined;
  /** Name of the inner map template (legacy: resolved from innerMapIndex). */
  readonly innerMap: string | undefined;
  /**
   * Pin by name under the pin root ('by_name'), in iproute2's object or global namespace, or not at all. A value no
   * loader convention defines is kept as `unknown(N)`: --dump shows it, loading refuses it.
   */
  readonly pinning: 'none' | 'by_name' | 'object_ns' | 'global_ns' | `unknown(${number})`;
  /** iproute2's `struct bpf_elf_map` fields beyond the basic ones: the map's own id, and its map-in-map links. */
  readonly iproute2?: IpRoute2MapFields;
  /** Size of the definition in the file (20, 28, 36, 280 …) for legacy maps. */
  readonly definitionSize: number;
  /** Legacy definition bytes (a view), for bpf_load.c's mapData[].def and for the fixup hook. */
  readonly definition: Uint8Array;
  /** Initial contents (global data maps: the section bytes; zero-filled for .bss). */
  readonly contents?: Uint8Array;
  /** Global data maps: `.rodata*` are read-only to programs and frozen after filling. */
  readonly readOnly?: boolean;
  /** BTF type ids of key and value, when the object has BTF for this map. */
  readonly btfKeyTypeId?: number;
  readonly btfValueTypeId?: number;
  readonly mapExtra?: bigint;
  /** BTF map-in-map: the inner map definition (`__array(values, struct {…})`), created as the template. */
  readonly innerDefinition?: MapSpec;
  /** Static initial contents of prog arrays / map-of-maps: key → program or map name. */
  readonly initialSlots?: ReadonlyArray<{ readonly key: number; readonly target: string }>;
}

/**
 * iproute2 (lib/bpf_legacy.c): `id` names the map for `inner_id` and for `ID/KEY` tail-call sections. A map-in-map
 * whose `innerId` is non-zero uses the map with that id as its inner template; a map with an `id` (and `innerId` 0)
 * is stored into slot `innerIdx` of every map-in-map whose `innerId` is that id (`innerIdx` 0xffffffff: nowhere).
 */
export interface IpRoute2MapFields {
  readonly id: number;
  readonly innerId: number;
  readonly innerIdx: number;
}

export type RelocationKind =
  /** ld_imm64 of a map: becomes BPF_PSEUDO_MAP_FD with the map's fd. */
  | 'map'
  /** ld_imm64 of a global variable: becomes BPF_PSEUDO_MAP_VALUE (data map fd, offset). */
  | 'data'
  /** bpf-to-bpf call to a function in an executable section. */
  | 'call'
  /** ld_imm64 of a function address (callbacks): BPF_PSEUDO_FUNC. */
  | 'func_addr'
  /** A symbol the object does not define (kfunc, ksym, .kconfig, inline-asm constant). */
  | 'extern';

export interface RelocationSpec {
  /** Section (name and index) holding the instruction. */
  readonly section: string;
  readonly sectionIndex: number;
  /** Instruction index within the section, counted in 8-byte slots as llvm-objdump numbers them. */
  readonly insn: number;
  /** Program or subprogram (function) that contains the instruction. */
  readonly program: string;
  readonly symbol: string;
  readonly kind: RelocationKind;
  /** Map name, data section name, or function name: what the loader resolves by name. */
  readonly target: string;
  /** 'data': byte offset inside the data section. 'call'/'func_addr': byte offset of the callee in its section. */
  readonly targetOffset: number;
  /** ELF relocation type (BpfReloc.*). */
  readonly relocType: number;
  /** The symbol is weak: a missing 'extern' resolves to 0 (or a poisoned call) instead of failing the load. */
  readonly weak: boolean;
}

/** What programs and subprograms share: a function's code and where it lives. */
export interface FunctionSpec {
  /** The function's symbol name, or the section name for old objects without function symbols. */
  readonly name: string;
  readonly section: string;
  readonly sectionIndex: number;
  /** Byte offset of the function inside its section. */
  readonly offset: number;
  /** Instructions as they are in the file (a view; never mutated — the loader works on a copy). */
  readonly bytes: Uint8Array;
  readonly littleEndian: boolean;
  /** Relocations inside this function's instructions; `insn` is relative to the section, as everywhere. */
  readonly relocations: readonly RelocationSpec[];
}

/** A program: an entry point the kernel loads, typed by its section name. */
export interface ProgramSpec extends FunctionSpec {
  /** 'unspecified' for executable sections no table entry matches: --dump shows them, load skips them. */
  readonly type: ProgTypeName | 'unspecified';
  readonly expectedAttachType: AttachTypeName | undefined;
  readonly attachType: AttachTypeName | undefined;
  readonly attach: AttachKind;
  /** What follows the section prefix: tracepoint `sched/sched_switch`, kprobe `do_nanosleep` … */
  readonly attachTarget: string;
  readonly tailCallSlot: number | undefined;
  /** iproute2 `ID/KEY` sections: the `id` of the prog array (`struct bpf_elf_map`) that slot `tailCallSlot` is in. */
  readonly tailCallMapId: number | undefined;
  /** Where the type came from: the section name, or the user (`programTypes`, CLI `--type`). */
  readonly typeSource: 'section' | 'user';
  /** Loaded with BPF_F_SLEEPABLE (`fentry.s/`, `lsm.s/` …). */
  readonly sleepable: boolean;
  readonly isSubprogram: false;
}

/** A function in .text (or a static function in a program section) that programs call. */
export interface SubprogramSpec extends FunctionSpec {
  readonly global: boolean;
  readonly isSubprogram: true;
}

export interface BpfObjectSpec {
  readonly file: string | undefined;
  /** iproute2's object namespace (`<pin root>/tc/<id>/`): SHA-1 of the file, set when a map is pinned there. */
  readonly iproute2ObjectId?: string;
  readonly littleEndian: boolean;
  readonly machine: number;
  /** Contents of the `license` section up to its NUL ('' when absent). */
  readonly license: string;
  /** The `version` section (4 bytes), when present. */
  readonly kernVersion: number | undefined;
  readonly sections: readonly SectionSpec[];
  readonly maps: readonly MapSpec[];
  readonly programs: readonly ProgramSpec[];
  readonly subprograms: readonly SubprogramSpec[];
  /** Every relocation of code, in section order. */
  readonly relocations: readonly RelocationSpec[];
  /** Global variables of .data/.rodata/.bss sections (typed when BTF names them). */
  readonly variables: readonly VariableSpec[];
  /** The object's BTF with DATASEC sizes and offsets fixed up (what BPF_BTF_LOAD receives), when it has one. */
  readonly btf: Btf | undefined;
  readonly btfExt: BtfExt | undefined;
  /** Why the object's BTF could not be used, when it has one we could not parse (legacy objects load without it). */
  readonly btfProblem: string | undefined;
}

/** A global variable: where it lives in its data map, and its BTF type when known. */
export interface VariableSpec {
  readonly name: string;
  /** Data section, which is also the name of the map holding it. */
  readonly section: string;
  readonly offset: number;
  readonly size: number;
  readonly btfTypeId: number | undefined;
  readonly readOnly: boolean;
}
