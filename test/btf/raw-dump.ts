/** Our parse, rendered in the shape of bpftool's raw dump, so the two can be compared field by field. */
import type { BtfType } from '../../src/btf/index.js';
import type { RawDumpType } from './support.js';

const anon = (name: string) => (name === '' ? '(anon)' : name);

export function toRawDump(t: BtfType): RawDumpType {
  const base = { id: t.id, name: anon(t.name), children: [] as RawDumpType['children'] };
  switch (t.kind) {
    case 'void':
      throw new Error('void is not dumped');
    case 'int':
      return {
        ...base, kind: 'INT',
        attrs: {
          size: `${t.size}`, bits_offset: `${t.bitOffset}`, nr_bits: `${t.bits}`,
          encoding: t.signed ? 'SIGNED' : t.char ? 'CHAR' : t.bool ? 'BOOL' : '(none)',
        },
      };
    case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag':
      return { ...base, kind: t.kind.toUpperCase(), attrs: { type_id: `${t.type}` } };
    case 'array':
      return { ...base, kind: 'ARRAY', attrs: { type_id: `${t.type}`, index_type_id: `${t.indexType}`, nr_elems: `${t.nelems}` } };
    case 'struct': case 'union':
      return {
        ...base, kind: t.kind.toUpperCase(), attrs: { size: `${t.size}`, vlen: `${t.members.length}` },
        children: t.members.map((m) => ({
          name: anon(m.name),
          attrs: {
            type_id: `${m.type}`, bits_offset: `${m.bitOffset}`,
            ...(m.bitfieldSize !== 0 ? { bitfield_size: `${m.bitfieldSize}` } : {}),
          },
        })),
      };
    case 'enum': case 'enum64':
      return {
        ...base, kind: t.kind.toUpperCase(),
        attrs: { encoding: t.signed ? 'SIGNED' : 'UNSIGNED', size: `${t.size}`, vlen: `${t.values.length}` },
        children: t.values.map((v) => ({ name: anon(v.name), attrs: { val: `${v.value}` } })),
      };
    case 'fwd':
      return { ...base, kind: 'FWD', attrs: { fwd_kind: t.fwdKind } };
    case 'func':
      return { ...base, kind: 'FUNC', attrs: { type_id: `${t.type}`, linkage: t.linkage } };
    case 'func_proto': {
      const params = t.params.map((p) => ({ name: anon(p.name), attrs: { type_id: `${p.type}` } }));
      if (t.variadic) params.push({ name: '(anon)', attrs: { type_id: '0' } });
      return { ...base, kind: 'FUNC_PROTO', attrs: { ret_type_id: `${t.returnType}`, vlen: `${params.length}` }, children: params };
    }
    case 'var':
      return { ...base, kind: 'VAR', attrs: { type_id: `${t.type}`, linkage: t.linkage } };
    case 'datasec':
      return {
        ...base, kind: 'DATASEC', attrs: { size: `${t.size}`, vlen: `${t.vars.length}` },
        children: t.vars.map((v) => ({ attrs: { type_id: `${v.type}`, offset: `${v.offset}`, size: `${v.size}` } })),
      };
    case 'float':
      return { ...base, kind: 'FLOAT', attrs: { size: `${t.size}` } };
    case 'decl_tag':
      return { ...base, kind: 'DECL_TAG', attrs: { type_id: `${t.type}`, component_idx: `${t.componentIdx}` } };
  }
}

/** bpftool prints enum64 values with a C suffix (1ULL, -1LL); ours are plain. */
export function normalizeRawDump(t: RawDumpType): RawDumpType {
  if (t.kind !== 'ENUM64') return t;
  return { ...t, children: t.children.map((c) => ({ ...c, attrs: { ...c.attrs, val: (c.attrs['val'] ?? '').replace(/U?LL$/, '') } })) };
}
