/**
 * CO-RE access specs: the local side of a relocation parsed from its access string, and the helpers every part of
 * the CO-RE code shares (relocation classes, flavour-free names, the internal Problem error).
 */
import type { Btf, BtfCoreRelo, BtfType, CoreReloKind } from '../btf/index.js';

/** libbpf's BPF_CORE_SPEC_MAX_LEN: the deepest access path (fields + array indices) a relocation may have. */
export const MAX_SPEC_LEN = 64;
/** libbpf's recursion limit when comparing types. */
export const MAX_TYPE_DEPTH = 32;

/** Internal: why one relocation failed; turned into a CoreError with the full context by applyCoreRelocations. */
export class Problem extends Error {}
export const problem = (cause: string): Problem => new Problem(cause);

/** A type's name for a message; `[id]` when it cannot be rendered (loops, absurd depth). */
export function safeTypeName(btf: Btf, id: number): string {
  return btf.typeLabel(id);
}

// ---------------------------------------------------------------------------------------------------------------
// Relocation classes and names

export const FIELD_KINDS: ReadonlySet<CoreReloKind> = new Set([
  'field_byte_offset', 'field_byte_size', 'field_exists', 'field_signed', 'field_lshift_u64', 'field_rshift_u64',
]);
export const TYPE_KINDS: ReadonlySet<CoreReloKind> = new Set(['type_id_local', 'type_id_target', 'type_exists', 'type_matches', 'type_size']);
export const ENUMVAL_KINDS: ReadonlySet<CoreReloKind> = new Set(['enumval_exists', 'enumval_value']);

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

export function isEnum(t: BtfType): t is Extract<BtfType, { kind: 'enum' | 'enum64' }> {
  return t.kind === 'enum' || t.kind === 'enum64';
}

export function isComposite(t: BtfType): t is Extract<BtfType, { kind: 'struct' | 'union' }> {
  return t.kind === 'struct' || t.kind === 'union';
}

/** libbpf's btf_kind_core_compat: the same kind, with enum and enum64 interchangeable. */
export function kindsCompatible(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isEnum(a) && isEnum(b));
}

/** Typedefs and qualifiers skipped. */
export function concrete(btf: Btf, id: number): BtfType {
  return btf.type(btf.resolve(id));
}

// ---------------------------------------------------------------------------------------------------------------
// Access specs

export interface Accessor {
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
export interface CoreSpec {
  readonly btf: Btf;
  readonly rootTypeId: number;
  readonly accessors: Accessor[];
  readonly raw: number[];
  bitOffset: number;
}

export function parseAccessString(access: string): number[] {
  if (!/^\d+(:\d+)*$/.test(access)) throw problem(`malformed access string "${access}"`);
  const raw = access.split(':').map(Number);
  if (raw.length > MAX_SPEC_LEN) throw problem(`access string has ${raw.length} steps (at most ${MAX_SPEC_LEN})`);
  if (raw.some((n) => n > 0x7fffffff)) throw problem(`access string "${access}" has an index beyond 2^31`);
  return raw;
}

export function emptySpec(btf: Btf, rootTypeId: number): CoreSpec {
  return { btf, rootTypeId, accessors: [], raw: [], bitOffset: 0 };
}

/** A flexible array member: zero elements, last member of the struct the previous (named) accessor points into. */
export function isFlexArray(btf: Btf, previous: Accessor | undefined, nelems: number): boolean {
  if (previous?.name === undefined || nelems > 0) return false;
  const parent = btf.type(previous.typeId);
  return isComposite(parent) && previous.idx === parent.members.length - 1;
}

/** libbpf's bpf_core_parse_spec: the local side of a relocation. */
export function parseLocalSpec(btf: Btf, relo: BtfCoreRelo): CoreSpec {
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
      throw problem(`enumerator index "${relo.access}" is outside ${safeTypeName(btf, id)} (${root.values.length} values)`);
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
      if (m === undefined) throw problem(`step ${i} of "${relo.access}": ${safeTypeName(btf, id)} has ${t.members.length} members, not ${idx + 1}`);
      spec.bitOffset += m.bitOffset;
      if (m.name !== '') spec.accessors.push({ typeId: id, idx, name: m.name });
      id = m.type;
    } else if (t.kind === 'array') {
      const element = btf.resolve(t.type);
      if (!isFlexArray(btf, spec.accessors.at(-1), t.nelems) && idx >= t.nelems) {
        throw problem(`step ${i} of "${relo.access}": index ${idx} is outside ${safeTypeName(btf, id)}`);
      }
      spec.accessors.push({ typeId: element, idx, name: undefined });
      spec.bitOffset += idx * btf.sizeof(element) * 8;
      id = element;
    } else {
      throw problem(`step ${i} of "${relo.access}" reaches ${safeTypeName(btf, id)} (${t.kind}), which has no members or elements`);
    }
  }
  return spec;
}

/** `struct s.a (0:1)`, `struct t.s[2]._1 (0:0:0:2:0)`, `enum e::ONE`, `s_t`: the local access, for messages. */
export function describeAccess(btf: Btf, relo: BtfCoreRelo): string {
  const root = safeTypeName(btf, relo.typeId);
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
