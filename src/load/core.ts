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
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import { BtfError, type Btf, type BtfCoreRelo, type BtfType, type CoreReloKind } from '../btf/index.js';
import {
  AluOp, decodeInsns, encodeInsns, InsnClass, insnClass, insnMode, insnOp, insnSize, InsnSize, insnSource, InsnSource,
  Opcode, sizeBytes, withImm64, type Insn,
} from '../insn/index.js';
import type { BpfObjectSpec, ProgramSpec, SubprogramSpec } from '../object/index.js';
import type { RelocatedProgram } from './relocate.js';

/**
 * The helper id a poisoned instruction calls: no such helper exists, so the verifier rejects the program with
 * "invalid func unknown#195896080" if (and only if) the poisoned code is reachable. libbpf's "bad relo".
 */
export const CORE_POISON_HELPER = 0xbad2310;

/** libbpf's BPF_CORE_SPEC_MAX_LEN: the deepest access path (fields + array indices) a relocation may have. */
const MAX_SPEC_LEN = 64;
/** libbpf's recursion limit when comparing types. */
const MAX_TYPE_DEPTH = 32;
const SLOT = 8;
const S16_MAX = 0x7fff;

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

/** Internal: why one relocation failed; turned into a CoreError with the full context by applyCoreRelocations. */
class Problem extends Error {}
const problem = (cause: string): Problem => new Problem(cause);

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
          localType: local.typeLabel(relo.typeId), access: relo.access, description: site.description, cause: e.message,
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
// Relocation classes and names

const FIELD_KINDS: ReadonlySet<CoreReloKind> = new Set([
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64', 'field_rshift_u64',
]);
const TYPE_KINDS: ReadonlySet<CoreReloKind> = new Set(['type_id_local', 'type_id_target', 'type_exists', 'type_matches', 'type_size']);
const ENUMVAL_KINDS: ReadonlySet<CoreReloKind> = new Set(['enumval_exists', 'enumval_value']);

/**
 * The name without its flavour: everything from the last `___` (between two non-underscores) on is dropped, so
 * `task_struct___old` is a local variant of `task_struct`.
 */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== '_' && name[i + 1] === '_' && name[i + 2] === '_' && name[i + 3] === '_' && name[i + 4] !== '_') {
      return name.slice(0, i + 1);
    }
  }
  return name;
}

function isEnum(t: BtfType): t is Extract<BtfType, { kind: 'enum' | 'enum64' }> {
  return t.kind === 'enum' || t.kind === 'enum64';
}

function isComposite(t: BtfType): t is Extract<BtfType, { kind: 'struct' | 'union' }> {
  return t.kind === 'struct' || t.kind === 'union';
}

/** libbpf's btf_kind_core_compat: the same kind, with enum and enum64 interchangeable. */
function kindsCompatible(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isEnum(a) && isEnum(b));
}

/** Typedefs and qualifiers skipped. */
function concrete(btf: Btf, id: number): BtfType {
  return btf.type(btf.resolve(id));
}

// ---------------------------------------------------------------------------------------------------------------
// Access specs

interface Accessor {
  /** The composite a named member belongs to; the element type of an array access; the root type for the first. */
  readonly typeId: number;
  readonly idx: number;
  /** Named field or enumerator; undefined for array (or pointer-as-array) indices. */
  readonly name: string | undefined;
}

/**
 * An access resolved in one BTF: the high-level path (named fields and array indices), the raw path (every step,
 * anonymous members included: the access string's numbers), and the bit offset it reaches.
 */
interface CoreSpec {
  readonly btf: Btf;
  readonly rootTypeId: number;
  readonly accessors: Accessor[];
  readonly raw: number[];
  bitOffset: number;
}

function parseAccessString(access: string): number[] {
  if (!/^\d+(:\d+)*$/.test(access)) throw problem(`malformed access string "${access}"`);
  const raw = access.split(':').map(Number);
  if (raw.length > MAX_SPEC_LEN) throw problem(`access string has ${raw.length} steps (at most ${MAX_SPEC_LEN})`);
  if (raw.some((n) => n > 0x7fffffff)) throw problem(`access string "${access}" has an index beyond 2^31`);
  return raw;
}

function emptySpec(btf: Btf, rootTypeId: number): CoreSpec {
  return { btf, rootTypeId, accessors: [], raw: [], bitOffset: 0 };
}

/** A flexible array member: zero elements, last member of the struct the previous (named) accessor points into. */
function isFlexArray(btf: Btf, previous: Accessor | undefined, nelems: number): boolean {
  if (previous?.name === undefined || nelems > 0) return false;
  const parent = btf.type(previous.typeId);
  return isComposite(parent) && previous.idx === parent.members.length - 1;
}

/** libbpf's bpf_core_parse_spec: the local side of a relocation. */
function parseLocalSpec(btf: Btf, relo: BtfCoreRelo): CoreSpec {
  const spec = emptySpec(btf, relo.typeId);
  if (TYPE_KINDS.has(relo.kind)) {
    if (relo.access !== '0') throw problem(`type-based relocation with access string "${relo.access}" (must be "0")`);
    return spec;
  }
  const raw = parseAccessString(relo.access);
  spec.raw.push(...raw);
  let id = btf.resolve(relo.typeId);
  const root = btf.type(id);
  const first = raw[0]!;

  if (ENUMVAL_KINDS.has(relo.kind)) {
    if (!isEnum(root)) throw problem(`enum value relocation against a ${root.kind}`);
    if (raw.length > 1 || first >= root.values.length) {
      throw problem(`enumerator index "${relo.access}" is outside ${btf.typeLabel(id)} (${root.values.length} values)`);
    }
    spec.accessors.push({ typeId: id, idx: first, name: root.values[first]!.name });
    return spec;
  }

  spec.accessors.push({ typeId: id, idx: first, name: undefined });
  spec.bitOffset = first * btf.sizeof(id) * 8;
  for (let i = 1; i < raw.length; i++) {
    id = btf.resolve(id);
    const t = btf.type(id);
    const idx = raw[i]!;
    if (isComposite(t)) {
      const m = t.members[idx];
      if (m === undefined) throw problem(`step ${i} of "${relo.access}": ${btf.typeLabel(id)} has ${t.members.length} members, not ${idx + 1}`);
      spec.bitOffset += m.bitOffset;
      if (m.name !== '') spec.accessors.push({ typeId: id, idx, name: m.name });
      id = m.type;
    } else if (t.kind === 'array') {
      const element = btf.resolve(t.type);
      if (!isFlexArray(btf, spec.accessors.at(-1), t.nelems) && idx >= t.nelems) {
        throw problem(`step ${i} of "${relo.access}": index ${idx} is outside ${btf.typeLabel(id)}`);
      }
      spec.accessors.push({ typeId: element, idx, name: undefined });
      spec.bitOffset += idx * btf.sizeof(element) * 8;
      id = element;
    } else {
      throw problem(`step ${i} of "${relo.access}" reaches ${btf.typeLabel(id)} (${t.kind}), which has no members or elements`);
    }
  }
  return spec;
}

/** `struct s.a (0:1)`, `struct t.s[2]._1 (0:0:0:2:0)`, `enum e::ONE`, `s_t`: the local access, for messages. */
function describeAccess(btf: Btf, relo: BtfCoreRelo): string {
  const root = btf.typeLabel(relo.typeId);
  if (TYPE_KINDS.has(relo.kind)) return root;
  let spec: CoreSpec;
  try {
    spec = parseLocalSpec(btf, relo);
  } catch {
    return `${root} (${relo.access})`;
  }
  if (ENUMVAL_KINDS.has(relo.kind)) return `${root}::${spec.accessors[0]!.name}`;
  let path = root;
  spec.accessors.forEach((a, i) => {
    if (a.name !== undefined) path += `.${a.name}`;
    else if (i > 0 || a.idx > 0) path += `[${a.idx}]`;
  });
  return `${path} (${relo.access})`;
}

// ---------------------------------------------------------------------------------------------------------------
// Compatibility

/**
 * libbpf's bpf_core_types_are_compat, for type-based relocations (names already match): same kinds after typedefs
 * and qualifiers; composites, enums and forward declarations by kind alone; pointers, arrays and prototypes
 * recursively; ints unless they are old-style bitfield ints.
 */
function typesAreCompatible(local: Btf, localId: number, target: Btf, targetId: number, level = MAX_TYPE_DEPTH): boolean {
  if (!kindsCompatible(local.type(localId), target.type(targetId))) return false;
  let l = localId;
  let t = targetId;
  for (let depth = 0; depth < MAX_TYPE_DEPTH; depth++) {
    l = local.resolve(l);
    t = target.resolve(t);
    const lt = local.type(l);
    const tt = target.type(t);
    if (!kindsCompatible(lt, tt)) return false;
    switch (lt.kind) {
      case 'void': case 'struct': case 'union': case 'enum': case 'enum64': case 'fwd':
        return true;
      case 'int':
        return lt.bitOffset === 0 && (tt as typeof lt).bitOffset === 0;
      case 'ptr':
        l = lt.type;
        t = (tt as typeof lt).type;
        continue;
      case 'array':
        l = lt.type;
        t = (tt as typeof lt).type;
        continue;
      case 'func_proto': {
        const tp = tt as typeof lt;
        if (lt.params.length !== tp.params.length || lt.variadic !== tp.variadic) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (level <= 0) throw problem('types nest too deeply to compare');
          if (!typesAreCompatible(local, local.resolve(lt.params[i]!.type), target, target.resolve(tp.params[i]!.type), level - 1)) return false;
        }
        l = lt.returnType;
        t = tp.returnType;
        continue;
      }
      default:
        return false;
    }
  }
  throw problem(`types nest more than ${MAX_TYPE_DEPTH} levels deep`);
}

/**
 * libbpf's bpf_core_fields_are_compat, for a field found by name: any two composites; pointers and floats by kind;
 * enums and forward declarations when their flavourless names agree (or one is anonymous); ints of any size and
 * sign (not old-style bitfield ints); arrays by element type.
 */
function fieldsAreCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  let l = localId;
  let t = targetId;
  for (let depth = 0; depth < MAX_TYPE_DEPTH; depth++) {
    const lt = concrete(local, l);
    const tt = concrete(target, t);
    if (isComposite(lt) && isComposite(tt)) return true;
    if (!kindsCompatible(lt, tt)) return false;
    switch (lt.kind) {
      case 'ptr': case 'float':
        return true;
      case 'fwd': case 'enum': case 'enum64': {
        const ln = essentialName(lt.name);
        const tn = essentialName(tt.name);
        return ln === '' || tn === '' || ln === tn;
      }
      case 'int':
        return lt.bitOffset === 0 && (tt as typeof lt).bitOffset === 0;
      case 'array':
        l = lt.type;
        t = (tt as typeof lt).type;
        continue;
      default:
        return false;
    }
  }
  throw problem(`field types nest more than ${MAX_TYPE_DEPTH} levels deep`);
}

/** libbpf's bpf_core_names_match: flavourless names equal; an anonymous target matches only an anonymous local. */
function namesMatch(localName: string, targetName: string): boolean {
  if (targetName === '') return localName === '';
  return essentialName(localName) === essentialName(targetName);
}

/**
 * libbpf's bpf_core_types_match (TYPE_MATCHES, bpf_core_type_matches()): stricter than compatibility. Ints by size
 * and sign, enums by size and enumerator names, composites member by member (only by name and kind behind a
 * pointer), arrays by length, prototypes by parameters.
 */
function typesMatch(local: Btf, localId: number, target: Btf, targetId: number, behindPtr: boolean, level: number): boolean {
  if (level <= 0) throw problem('types nest too deeply to match');
  let l = localId;
  let t = targetId;
  let behind = behindPtr;
  for (let depth = 0; depth < MAX_TYPE_DEPTH; depth++) {
    l = local.resolve(l);
    t = target.resolve(t);
    const lt = local.type(l);
    const tt = target.type(t);
    if (!namesMatch(lt.name, tt.name)) return false;
    switch (lt.kind) {
      case 'void':
        return tt.kind === 'void';
      case 'fwd': {
        const localUnion = lt.fwdKind === 'union';
        if (tt.kind === 'fwd') return localUnion === (tt.fwdKind === 'union');
        if (!behind) return false;
        return (tt.kind === 'struct' && !localUnion) || (tt.kind === 'union' && localUnion);
      }
      case 'enum': case 'enum64': {
        if (!isEnum(tt) || lt.size !== tt.size || lt.values.length > tt.values.length) return false;
        return lt.values.every((v) => tt.values.some((w) => namesMatch(v.name, w.name)));
      }
      case 'struct': case 'union': {
        if (behind) {
          if (lt.kind === tt.kind) return true;
          return tt.kind === 'fwd' && (lt.kind === 'union') === (tt.fwdKind === 'union');
        }
        if (lt.kind !== tt.kind) return false;
        const tc = tt as typeof lt;
        if (lt.members.length > tc.members.length) return false;
        return lt.members.every((lm) => tc.members.some((tm) =>
          namesMatch(lm.name, tm.name) && typesMatch(local, lm.type, target, tm.type, behind, level - 1)));
      }
      case 'int': {
        if (tt.kind !== 'int') return false;
        return lt.size === tt.size && lt.signed === tt.signed;
      }
      case 'ptr':
        if (tt.kind !== 'ptr') return false;
        behind = true;
        l = lt.type;
        t = tt.type;
        continue;
      case 'array':
        if (tt.kind !== 'array' || lt.nelems !== tt.nelems) return false;
        l = lt.type;
        t = tt.type;
        continue;
      case 'func_proto': {
        if (tt.kind !== 'func_proto' || lt.params.length !== tt.params.length || lt.variadic !== tt.variadic) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (!typesMatch(local, lt.params[i]!.type, target, tt.params[i]!.type, behind, level - 1)) return false;
        }
        l = lt.returnType;
        t = tt.returnType;
        continue;
      }
      default:
        return false;
    }
  }
  throw problem(`types nest more than ${MAX_TYPE_DEPTH} levels deep`);
}

// ---------------------------------------------------------------------------------------------------------------
// Matching a local spec against one candidate

/**
 * Finds the local accessor's field by name in the target composite, descending into anonymous members, and extends
 * the target spec with it. Returns the field's type id, or undefined when no compatible field has that name.
 */
function matchMember(local: Btf, accessor: Accessor, target: Btf, targetId: number, spec: CoreSpec): number | undefined {
  const composite = concrete(target, targetId);
  if (!isComposite(composite)) return undefined;
  const localMember = (local.type(accessor.typeId) as Extract<BtfType, { kind: 'struct' | 'union' }>).members[accessor.idx]!;
  for (let i = 0; i < composite.members.length; i++) {
    const m = composite.members[i]!;
    if (spec.raw.length === MAX_SPEC_LEN) throw problem(`the target's path to ${localMember.name} is more than ${MAX_SPEC_LEN} steps deep`);
    spec.bitOffset += m.bitOffset;
    spec.raw.push(i);
    if (m.name === '') {
      const found = matchMember(local, accessor, target, m.type, spec);
      if (found !== undefined) return found;
    } else if (m.name === localMember.name) {
      if (fieldsAreCompatible(local, localMember.type, target, m.type)) {
        spec.accessors.push({ typeId: composite.id, idx: i, name: m.name });
        return m.type;
      }
      // Names are unique within a composite: an incompatible namesake ends the search at this level.
      spec.bitOffset -= m.bitOffset;
      spec.raw.pop();
      return undefined;
    }
    spec.bitOffset -= m.bitOffset;
    spec.raw.pop();
  }
  return undefined;
}

/** libbpf's bpf_core_spec_match: the target spec for one candidate, or undefined when the candidate does not fit. */
function matchSpec(localSpec: CoreSpec, kind: CoreReloKind, target: Btf, candidateId: number): CoreSpec | undefined {
  const spec = emptySpec(target, candidateId);
  const local = localSpec.btf;
  if (TYPE_KINDS.has(kind)) {
    const ok = kind === 'type_matches'
      ? typesMatch(local, localSpec.rootTypeId, target, candidateId, false, MAX_TYPE_DEPTH)
      : typesAreCompatible(local, localSpec.rootTypeId, target, candidateId);
    return ok ? spec : undefined;
  }

  if (ENUMVAL_KINDS.has(kind)) {
    const id = target.resolve(candidateId);
    const t = target.type(id);
    if (!isEnum(t)) return undefined;
    const wanted = essentialName(localSpec.accessors[0]!.name!);
    const idx = t.values.findIndex((v) => essentialName(v.name) === wanted);
    if (idx < 0) return undefined;
    spec.accessors.push({ typeId: id, idx, name: t.values[idx]!.name });
    spec.raw.push(idx);
    return spec;
  }

  let id = candidateId;
  for (let i = 0; i < localSpec.accessors.length; i++) {
    const accessor = localSpec.accessors[i]!;
    id = target.resolve(id);
    if (accessor.name !== undefined) {
      const next = matchMember(local, accessor, target, id, spec);
      if (next === undefined) return undefined;
      id = next;
      continue;
    }
    // The first accessor indexes the root type itself (a pointer used as an array); later ones index an array.
    if (i > 0) {
      const t = target.type(id);
      if (t.kind !== 'array') return undefined;
      if (!isFlexArray(target, spec.accessors.at(-1), t.nelems) && accessor.idx >= t.nelems) return undefined;
      id = target.resolve(t.type);
    }
    if (spec.raw.length === MAX_SPEC_LEN) throw problem(`the target's access path is more than ${MAX_SPEC_LEN} steps deep`);
    spec.accessors.push({ typeId: id, idx: accessor.idx, name: undefined });
    spec.raw.push(accessor.idx);
    spec.bitOffset += accessor.idx * target.sizeof(id) * 8;
  }
  return spec;
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
  if (!isEnum(t)) throw problem(`${spec.btf.typeLabel(accessor.typeId)} is not an enum`);
  return value(t.values[accessor.idx]!.value);
}

function sideValue(kind: CoreReloKind, spec: CoreSpec | undefined, littleEndian: boolean): SideValue {
  if (FIELD_KINDS.has(kind)) return fieldValue(kind, spec, littleEndian);
  if (ENUMVAL_KINDS.has(kind)) return enumValue(kind, spec);
  return typeValue(kind, spec);
}

/** A relocation decided: what the instruction should hold now, or why it must be poisoned. */
interface Resolution {
  readonly origVal: bigint;
  readonly newVal: bigint;
  readonly validate: boolean;
  /** Set: the instruction is replaced by a call to CORE_POISON_HELPER. */
  readonly poison: string | undefined;
  /** Set: a load/store of this field would need a width change that does not preserve the value. */
  readonly badResize: string | undefined;
  readonly origSize: number;
  readonly newSize: number;
  readonly targetTypeId: number | undefined;
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
  return `${target.typeLabel(id)} [${id}]`;
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

// ---------------------------------------------------------------------------------------------------------------
// Patching

interface PatchOutcome {
  readonly poisoned: string | undefined;
  readonly memSize: { readonly from: number; readonly to: number } | undefined;
}

const POISON_INSN: Insn = { opcode: Opcode.CALL, dst: 0, src: 0, off: 0, imm: CORE_POISON_HELPER };

function readInsn(insns: Uint8Array, at: number, littleEndian: boolean): Insn {
  const bytes = insns.subarray(at * SLOT, Math.min(insns.byteLength, (at + 2) * SLOT));
  return decodeInsns(bytes, littleEndian)[0]!;
}

function writeInsns(insns: Uint8Array, at: number, littleEndian: boolean, entries: readonly Insn[]): void {
  insns.set(encodeInsns(entries, littleEndian), at * SLOT);
}

/** `imm` as the 64-bit value the kernel sees (sign-extended), or its zero-extended spelling when that is what was meant. */
function immMatches(imm: number, expected: bigint): boolean {
  return BigInt.asUintN(64, BigInt(imm)) === expected || BigInt(imm >>> 0) === expected;
}

/** The 32-bit immediate spelling of a 64-bit value, when it has one. */
function toImm32(v: bigint): number | undefined {
  if (v < 1n << 32n) return Number(BigInt.asIntN(32, v));
  const signed = BigInt.asIntN(64, v);
  return signed < 0n && signed >= -(1n << 31n) ? Number(signed) : undefined;
}

function poison(insns: Uint8Array, at: number, littleEndian: boolean, insn: Insn, reason: string): PatchOutcome {
  // Both halves of a ld_imm64, so the verifier does not stop at "unknown opcode 00" before reaching the call.
  const isWide = insn.opcode === Opcode.LD_IMM64 && insn.truncated === undefined;
  writeInsns(insns, at, littleEndian, isWide ? [POISON_INSN, POISON_INSN] : [POISON_INSN]);
  return { poisoned: reason, memSize: undefined };
}

/** libbpf's bpf_core_patch_insn: check the compiler's value, then write the target's. */
function patchInstruction(insns: Uint8Array, at: number, littleEndian: boolean, r: Resolution): PatchOutcome {
  const insn = readInsn(insns, at, littleEndian);
  if (insn.truncated !== undefined) throw problem('the instruction is truncated');
  if (r.poison !== undefined) return poison(insns, at, littleEndian, insn, r.poison);
  const got = (what: string, v: number | bigint) =>
    problem(`the instruction's ${what} is ${v}, but the local type says ${r.origVal} (the object and its BTF disagree)`);

  switch (insnClass(insn.opcode)) {
    case InsnClass.ALU: case InsnClass.ALU64: {
      if (insnSource(insn.opcode) !== InsnSource.K) throw problem('ALU instruction with a register operand has no immediate to relocate');
      if (insnOp(insn.opcode) === AluOp.END) throw problem('a byte swap has no immediate to relocate');
      if (r.validate && !immMatches(insn.imm, r.origVal)) throw got('immediate', insn.imm);
      const imm = toImm32(r.newVal);
      if (imm === undefined) throw problem(`value ${r.newVal} does not fit the instruction's 32-bit immediate`);
      writeInsns(insns, at, littleEndian, [{ ...insn, imm }]);
      return { poisoned: undefined, memSize: undefined };
    }
    case InsnClass.LDX: case InsnClass.ST: case InsnClass.STX: {
      if (r.validate && BigInt.asUintN(64, BigInt(insn.off)) !== r.origVal) throw got('offset', insn.off);
      if (r.newVal > BigInt(S16_MAX)) throw problem(`offset ${r.newVal} does not fit the instruction's 16-bit offset`);
      if (r.badResize !== undefined) return poison(insns, at, littleEndian, insn, r.badResize);
      let opcode = insn.opcode;
      let memSize: PatchOutcome['memSize'];
      if (r.newSize !== r.origSize) {
        const width = sizeBytes(insnSize(insn.opcode));
        if (width !== r.origSize) throw problem(`the instruction accesses ${width} bytes, but the local field is ${r.origSize}`);
        const size = ({ 1: InsnSize.B, 2: InsnSize.H, 4: InsnSize.W, 8: InsnSize.DW } as Record<number, number>)[r.newSize];
        if (size === undefined) throw problem(`the target field is ${r.newSize} bytes, which no load or store can access`);
        opcode = insnMode(insn.opcode) | size | insnClass(insn.opcode);
        memSize = { from: r.origSize, to: r.newSize };
      }
      writeInsns(insns, at, littleEndian, [{ ...insn, opcode, off: Number(r.newVal) }]);
      return { poisoned: undefined, memSize };
    }
    case InsnClass.LD: {
      if (insn.opcode !== Opcode.LD_IMM64 || insn.src !== 0 || insn.off !== 0 || insn.imm64Reserved !== undefined) {
        throw problem(`only a plain ld_imm64 can be relocated (opcode 0x${insn.opcode.toString(16)}, src ${insn.src}, off ${insn.off})`);
      }
      if (r.validate && insn.imm64 !== r.origVal) throw got('64-bit immediate', insn.imm64 ?? 0n);
      writeInsns(insns, at, littleEndian, [withImm64(insn, r.newVal)]);
      return { poisoned: undefined, memSize: undefined };
    }
    default:
      throw problem(`a jump (opcode 0x${insn.opcode.toString(16)}) cannot be relocated`);
  }
}
