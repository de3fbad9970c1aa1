/** CO-RE compatibility: whether a target type can stand in for a local one, and the target spec of a candidate. */
import type { Btf, BtfType, CoreReloKind } from '../btf/index.js';
import {
  type Accessor, type CoreSpec, emptySpec, ENUMVAL_KINDS, essentialName, isComposite, isEnum, isFlexArray, kindsCompatible, concrete,
  MAX_SPEC_LEN, MAX_TYPE_DEPTH, problem, TYPE_KINDS,
} from './core-spec.js';

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
export function matchSpec(localSpec: CoreSpec, kind: CoreReloKind, target: Btf, candidateId: number): CoreSpec | undefined {
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
