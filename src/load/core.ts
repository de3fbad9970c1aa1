/**
 * CO-RE (Compile Once – Run Everywhere) relocation, after libbpf's relo_core.c: every `.BTF.ext` core_relo record of
 * the functions placed in a relocated program is resolved against a target BTF (normally the running kernel's) and its
 * instruction patched — an ALU immediate, a load/store offset (and width), or both halves of a ld_imm64.
 *
 * Pure: the target BTF is an argument, so tests resolve against any BTF they like. No syscalls.
 *
 * Where this differs from libbpf: one target BTF (no fallback to kernel-module BTF); candidates pruned by earlier
 * relocations of a type are remembered for one call (one program), not the whole object; 32-bit enum values keep
 * their enum's signedness when widened to 64 bits (libbpf always sign-extends).
 *
 * The parts: core-spec.ts (access specs), core-compat.ts (type compatibility, candidate matching), core-patch.ts
 * (writing instructions); this file resolves each relocation and computes its values.
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import { BtfError, type Btf, type BtfCoreRelo, type BtfType, type CoreReloKind } from '../btf/index.js';
import type { BpfObjectSpec, ProgramSpec, SubprogramSpec } from '../object/index.js';
import { matchSpec } from './core-compat.js';
import { patchInstruction, type Resolution } from './core-patch.js';
import {
  type CoreSpec, describeAccess, ENUMVAL_KINDS, essentialName, FIELD_KINDS, isEnum, kindsCompatible, parseLocalSpec, Problem, problem,
  safeTypeName,
} from './core-spec.js';
import type { RelocatedProgram } from './relocate.js';
import { INSN_SLOT_SIZE as SLOT } from '../insn/index.js';

export { CORE_POISON_HELPER } from './core-patch.js';
export { essentialName } from './core-spec.js';


type Fn = ProgramSpec | SubprogramSpec;

/** Where a relocation sits and what it asks for; shared by the applied, poisoned and error reports. */
export interface CoreRelocationSite {
  /** Instruction index in the relocated program (what the verifier log counts). */
  readonly insn: number;
  /** The function holding the instruction (the program itself or an appended subprogram) and its section. */
  readonly function: string;
  readonly section: string;
  /** Index of the instruction inside its section, as llvm-objdump numbers it. */
  readonly sectionInsn: number;
  readonly kind: CoreReloKind;
  readonly localTypeId: number;
  readonly access: string;
  /** The local access in C-like form: `struct s.a (0:1)`, `enum e::ONE`, `s_t`. */
  readonly description: string;
}

export interface AppliedCoreRelocation extends CoreRelocationSite {
  /** The value the compiler assumed (checked against the instruction) and the one written. */
  readonly localValue: bigint;
  readonly targetValue: bigint;
  /** The target type the access resolved to; undefined when nothing matched (an existence check that yields 0). */
  readonly targetTypeId: number | undefined;
  /** Load/store width change, in bytes, when the target field has another size. */
  readonly memSize: { readonly from: number; readonly to: number } | undefined;
}

export interface PoisonedCoreRelocation extends CoreRelocationSite {
  /** Why it could not be satisfied. */
  readonly reason: string;
  /** One line for a warning: `insn 4: enumval_value enum nonexist_enum::NON_EXIST: <reason>`. */
  readonly message: string;
}

export interface CoreResult {
  readonly applied: readonly AppliedCoreRelocation[];
  readonly poisoned: readonly PoisonedCoreRelocation[];
}

/** A CO-RE relocation that cannot be applied at all (ambiguous target, instruction that disagrees, bad record). */
export class CoreError extends BpfLoadError {
  override name = 'CoreError';
  readonly program: string;
  readonly section: string;
  readonly insn: number;
  readonly kind: CoreReloKind;
  /** C-like name of the local type the access starts from. */
  readonly localType: string;
  readonly access: string;

  constructor(init: {
    file: string | undefined; program: string; section: string; insn: number; where: string; kind: CoreReloKind;
    localType: string; access: string; description: string; cause: string;
  }) {
    super(withContext([init.file, `program ${init.program} (section ${init.section})`, init.where, `${init.kind} ${init.description}`], init.cause));
    this.program = init.program;
    this.section = init.section;
    this.insn = init.insn;
    this.kind = init.kind;
    this.localType = init.localType;
    this.access = init.access;
  }
}

/**
 * Resolves and applies the CO-RE relocations of every function in `layout` (from relocateProgram) to `insns`, the
 * relocated program in the object's byte order, which is patched in place. `target` is the BTF to resolve against:
 * the running kernel's (runningKernelBtf()) when loading.
 *
 * Unsatisfiable accesses follow libbpf: existence checks resolve to 0, type-based ones (size, id) to 0, and the rest
 * poison their instruction (see CORE_POISON_HELPER). Throws CoreError when a relocation is ambiguous, malformed, or
 * its instruction does not hold the value the compiler's local type implies.
 */
export function applyCoreRelocations(
  spec: BpfObjectSpec, layout: RelocatedProgram['layout'], insns: Uint8Array, target: Btf,
): CoreResult {
  const applied: AppliedCoreRelocation[] = [];
  const poisoned: PoisonedCoreRelocation[] = [];
  const local = spec.btf;
  const ext = spec.btfExt;
  const program = layout[0]?.fn;
  if (local === undefined || ext === undefined || program === undefined) return { applied, poisoned };
  // Candidates of a local type that matched once are the only ones later relocations of that type consider (libbpf's
  // pruning: a flavour ruled out by one access stays out).
  const candidateCache = new Map<number, readonly number[]>();
  const totalSlots = insns.byteLength / SLOT;

  for (const { fn, start } of layout) {
    const end = fn.offset + fn.bytes.byteLength;
    for (const relo of ext.coreRelos.get(fn.section) ?? []) {
      if (relo.insnOff < fn.offset || relo.insnOff >= end) continue;
      const insn = start + (relo.insnOff - fn.offset) / SLOT;
      const site = siteOf(local, relo, fn, insn);
      const where = `insn ${insn}${fn === program ? '' : ` (${fn.name} insn ${insn - start})`}`;
      try {
        if (insn >= totalSlots) throw problem(`instruction ${insn} is past the end of the program (${totalSlots} instructions)`);
        if (relo.kind !== 'type_id_local' && spec.littleEndian !== target.littleEndian) {
          throw problem(`the object is ${endianName(spec.littleEndian)}-endian but the target BTF is ${endianName(target.littleEndian)}-endian`);
        }
        const resolution = resolveRelocation(local, relo, target, candidateCache, spec.littleEndian);
        const outcome = patchInstruction(insns, insn, spec.littleEndian, resolution);
        if (outcome.poisoned !== undefined) {
          poisoned.push({ ...site, reason: outcome.poisoned, message: `${where}: ${relo.kind} ${site.description}: ${outcome.poisoned}` });
        } else {
          applied.push({
            ...site, localValue: resolution.origVal, targetValue: resolution.newVal, targetTypeId: resolution.targetTypeId,
            memSize: outcome.memSize,
          });
        }
      } catch (e) {
        if (!(e instanceof Problem) && !(e instanceof BtfError)) throw e;
        throw new CoreError({
          file: spec.file, program: program.name, section: program.section, insn, where, kind: relo.kind,
          localType: safeTypeName(local, relo.typeId), access: relo.access, description: site.description, cause: e.message,
        });
      }
    }
  }
  return { applied, poisoned };
}

function endianName(little: boolean): string {
  return little ? 'little' : 'big';
}

function siteOf(local: Btf, relo: BtfCoreRelo, fn: Fn, insn: number): CoreRelocationSite {
  return {
    insn, function: fn.name, section: fn.section, sectionInsn: relo.insnOff / SLOT, kind: relo.kind,
    localTypeId: relo.typeId, access: relo.access, description: describeAccess(local, relo),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/** What one side (local or target) of a relocation computes. `poison` is set when there is no value. */
interface SideValue {
  readonly value: bigint;
  /** Load/store width implied by a non-bitfield byte-offset access (0 when none), and that field's type. */
  readonly memSize: number;
  readonly memTypeId: number;
  /** Whether the instruction must hold the local value (false where the compiler may legitimately disagree). */
  readonly validate: boolean;
  readonly poison: boolean;
}

const NO_VALUE: SideValue = { value: 0n, memSize: 0, memTypeId: 0, validate: true, poison: true };
const value = (v: number | bigint, validate = true, memSize = 0, memTypeId = 0): SideValue => (
  { value: BigInt.asUintN(64, BigInt(v)), memSize, memTypeId, validate, poison: false });

/** libbpf's bpf_core_calc_field_relo. Bit shifts follow the object's byte order (which is the target's). */
function fieldValue(kind: CoreReloKind, spec: CoreSpec | undefined, littleEndian: boolean): SideValue {
  if (kind === 'field_exists') return value(spec === undefined ? 0 : 1);
  if (spec === undefined) return NO_VALUE;
  const btf = spec.btf;
  const accessor = spec.accessors.at(-1)!;

  if (accessor.name === undefined) {
    // An array element (or the root itself): only its offset and size mean anything.
    const size = btf.sizeof(accessor.typeId);
    if (kind === 'field_byte_offset') return value(Math.floor(spec.bitOffset / 8), true, size, accessor.typeId);
    if (kind === 'field_byte_size') return value(size);
    throw problem(`${kind} cannot be applied to an array element`);
  }

  const composite = btf.type(accessor.typeId) as Extract<BtfType, { kind: 'struct' | 'union' }>;
  const member = composite.members[accessor.idx]!;
  const fieldTypeId = btf.resolve(member.type);
  const fieldType = btf.type(fieldTypeId);
  const bitOff = spec.bitOffset;
  let bitSize = member.bitfieldSize;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOff: number;
  if (bitfield) {
    if (fieldType.kind !== 'int' && !isEnum(fieldType)) throw problem(`bitfield ${member.name} has type ${fieldType.kind}`);
    // The smallest naturally aligned load, starting from the declared type's size, that covers every bit.
    byteSize = fieldType.size;
    byteOff = Math.floor(Math.floor(bitOff / 8) / byteSize) * byteSize;
    while (bitOff + bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) throw problem(`bitfield ${member.name} cannot be read with one 64-bit load`);
      byteSize *= 2;
      byteOff = Math.floor(Math.floor(bitOff / 8) / byteSize) * byteSize;
    }
  } else {
    byteSize = btf.sizeof(fieldTypeId);
    byteOff = Math.floor(bitOff / 8);
    bitSize = byteSize * 8;
  }
  // For bitfields the compiler may pick another load than this computation: only sign and right shift are checked.
  switch (kind) {
    case 'field_byte_offset':
      return bitfield ? value(byteOff, false) : value(byteOff, true, byteSize, fieldTypeId);
    case 'field_byte_size':
      return value(byteSize, !bitfield);
    case 'field_signed':
      return value((isEnum(fieldType) && fieldType.signed) || (fieldType.kind === 'int' && fieldType.signed) ? 1 : 0);
    case 'field_lshift_u64':
      return value(littleEndian ? 64 - (bitOff + bitSize - byteOff * 8) : (8 - byteSize) * 8 + (bitOff - byteOff * 8), !bitfield);
    case 'field_rshift_u64':
      return value(64 - bitSize);
    default:
      throw problem(`${kind} is not a field relocation`);
  }
}

/** libbpf's bpf_core_calc_type_relo: a missing type gives 0 (never poison). */
function typeValue(kind: CoreReloKind, spec: CoreSpec | undefined): SideValue {
  if (spec === undefined) return value(0);
  switch (kind) {
    // Type ids change when objects are linked: the compiler's id is not checked.
    case 'type_id_target': return value(spec.rootTypeId, false);
    case 'type_exists': case 'type_matches': return value(1);
    case 'type_size': return value(spec.btf.sizeof(spec.rootTypeId));
    default: throw problem(`${kind} is not a type relocation`);
  }
}

/** libbpf's bpf_core_calc_enumval_relo. Values keep the enum's signedness, widened to 64 bits. */
function enumValue(kind: CoreReloKind, spec: CoreSpec | undefined): SideValue {
  if (kind === 'enumval_exists') return value(spec === undefined ? 0 : 1);
  if (spec === undefined) return NO_VALUE;
  const accessor = spec.accessors[0]!;
  const t = spec.btf.type(accessor.typeId);
  if (!isEnum(t)) throw problem(`${safeTypeName(spec.btf, accessor.typeId)} is not an enum`);
  return value(t.values[accessor.idx]!.value);
}

function sideValue(kind: CoreReloKind, spec: CoreSpec | undefined, littleEndian: boolean): SideValue {
  if (FIELD_KINDS.has(kind)) return fieldValue(kind, spec, littleEndian);
  if (ENUMVAL_KINDS.has(kind)) return enumValue(kind, spec);
  return typeValue(kind, spec);
}

/** libbpf's bpf_core_calc_relo for one candidate spec (undefined: nothing matched). */
function calcRelocation(
  kind: CoreReloKind, localSpec: CoreSpec, targetSpec: CoreSpec | undefined, littleEndian: boolean, noMatch: () => string,
): Resolution {
  const orig = sideValue(kind, localSpec, littleEndian);
  if (orig.poison) throw problem('the local type does not have this access');
  const next = sideValue(kind, targetSpec, littleEndian);
  let badResize: string | undefined;
  if (!next.poison && orig.memSize !== next.memSize) {
    const lt = localSpec.btf.type(orig.memTypeId);
    const tt = targetSpec!.btf.type(next.memTypeId);
    // Only zero-extension is safe: pointers (32-bit kernels) and unsigned integers can be read at another width.
    const safe = (lt.kind === 'ptr' && tt.kind === 'ptr') || (lt.kind === 'int' && tt.kind === 'int' && !lt.signed && !tt.signed);
    if (!safe) {
      badResize = `the field is ${next.memSize} bytes in the target but ${orig.memSize} locally, and only unsigned integers and pointers can be loaded or stored at another width`;
    }
  }
  return {
    origVal: orig.value, newVal: next.value, validate: orig.validate,
    poison: next.poison ? noMatch() : undefined, badResize,
    origSize: orig.memSize, newSize: next.poison ? 0 : next.memSize,
    targetTypeId: targetSpec?.rootTypeId,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Candidates

const candidateIndexes = new WeakMap<Btf, Map<string, number[]>>();

/** Target type ids by flavourless name, built once per target BTF (a linear scan of vmlinux is 126k types). */
function candidateIndex(btf: Btf): Map<string, number[]> {
  let index = candidateIndexes.get(btf);
  if (index !== undefined) return index;
  index = new Map();
  const types = btf.types;
  for (let id = 1; id < types.length; id++) {
    const name = types[id]!.name;
    if (name === '') continue;
    const key = essentialName(name);
    const ids = index.get(key);
    if (ids === undefined) index.set(key, [id]);
    else ids.push(id);
  }
  candidateIndexes.set(btf, index);
  return index;
}

/** libbpf's bpf_core_add_cands: same kind (enum ~ enum64) and same flavourless name. */
function findCandidates(local: Btf, localId: number, target: Btf): number[] {
  const localType = local.type(localId);
  const ids = candidateIndex(target).get(essentialName(localType.name)) ?? [];
  return ids.filter((id) => kindsCompatible(target.type(id), localType));
}

function candidateLabel(target: Btf, id: number): string {
  return `${safeTypeName(target, id)} [${id}]`;
}

/** libbpf's bpf_core_calc_relo_insn: every candidate that matches must agree, else the relocation is ambiguous. */
function resolveRelocation(
  local: Btf, relo: BtfCoreRelo, target: Btf, cache: Map<number, readonly number[]>, littleEndian: boolean,
): Resolution {
  const localSpec = parseLocalSpec(local, relo);
  if (relo.kind === 'type_id_local') {
    // The object's own BTF goes to the kernel with the program, so its id is right as it is (not checked: linking
    // may renumber types).
    const id = BigInt(relo.typeId);
    return { origVal: id, newVal: id, validate: false, poison: undefined, badResize: undefined, origSize: 0, newSize: 0, targetTypeId: undefined };
  }
  const localType = local.type(relo.typeId);
  if (localType.name === '') throw problem(`${relo.kind} relocations against anonymous types are not supported (only type_id_local is)`);

  const candidates = cache.get(relo.typeId) ?? findCandidates(local, relo.typeId, target);
  const noMatch = (): string => {
    const name = essentialName(localType.name);
    if (candidates.length === 0) return `the target BTF has no ${localType.kind} named ${name}`;
    const shown = candidates.slice(0, 3).map((id) => candidateLabel(target, id)).join(', ');
    const more = candidates.length > 3 ? ` and ${candidates.length - 3} more` : '';
    const what = ENUMVAL_KINDS.has(relo.kind) ? `enumerator ${localSpec.accessors[0]!.name}`
      : FIELD_KINDS.has(relo.kind) ? 'a compatible field at this path' : 'a compatible type';
    return `no candidate in the target BTF (${shown}${more}) has ${what}`;
  };

  const matched: number[] = [];
  let chosen: { spec: CoreSpec; resolution: Resolution; id: number } | undefined;
  for (const id of candidates) {
    const spec = matchSpec(localSpec, relo.kind, target, id);
    if (spec === undefined) continue;
    const resolution = calcRelocation(relo.kind, localSpec, spec, littleEndian, noMatch);
    if (chosen === undefined) {
      chosen = { spec, resolution, id };
    } else if (spec.bitOffset !== chosen.spec.bitOffset) {
      throw problem(`ambiguous: candidates ${candidateLabel(target, chosen.id)} and ${candidateLabel(target, id)} put the field at different offsets (bit ${chosen.spec.bitOffset} vs ${spec.bitOffset})`);
    } else if ((resolution.poison === undefined) !== (chosen.resolution.poison === undefined) || resolution.newVal !== chosen.resolution.newVal) {
      throw problem(`ambiguous: candidates ${candidateLabel(target, chosen.id)} and ${candidateLabel(target, id)} resolve to different values (${chosen.resolution.newVal} vs ${resolution.newVal})`);
    }
    matched.push(id);
  }
  if (chosen !== undefined) {
    cache.set(relo.typeId, matched);
    return chosen.resolution;
  }
  return calcRelocation(relo.kind, localSpec, undefined, littleEndian, noMatch);
}
