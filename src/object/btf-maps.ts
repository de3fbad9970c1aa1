import { MAP_TYPE_TRAITS, mapTypeTraits } from '../base/map-types.js';
import { MAP_TYPE_NAMES, mapTypeName } from '../base/uapi.js';
import type { Btf, BtfComposite } from '../btf/index.js';
import { BpfReloc, SectionType, SymbolType, type ElfFile, type ElfSection, type ElfSymbol } from '../elf/index.js';
import { ObjectError } from './errors.js';
import type { MapSpec } from './spec.js';

/** libbpf's map definition fields given as `__uint(name, value)`: a pointer to an array of `value` elements. */
const UINT_FIELDS = ['type', 'max_entries', 'map_flags', 'numa_node', 'key_size', 'value_size', 'pinning', 'map_extra'] as const;
type UintField = (typeof UINT_FIELDS)[number];

/** LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME. */
const PINNING_BY_VALUE = ['none', 'by_name'] as const;

interface BtfMapDef {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  pinning: MapSpec['pinning'];
  mapExtra: bigint;
  keyTypeId: number;
  valueTypeId: number;
  /** `__array(values, …)`: byte offset of the member inside the definition, and what the slots hold. */
  values: { offset: number; holds: 'maps' | 'programs'; inner: BtfMapDef | undefined } | undefined;
}

/**
 * Reads BTF-defined maps (`SEC(".maps")`): each variable of the `.maps` DATASEC is a struct whose members encode the
 * definition the libbpf way (`__uint`, `__type`, `__array`). Static initial contents of prog arrays and map-of-maps
 * come from `.rel.maps`. The section's bytes must all be zero: anything else is an initialiser we cannot honour.
 */
export function readBtfMaps(elf: ElfFile, btf: Btf | undefined, firstIndex: number): MapSpec[] {
  const section = elf.section('.maps');
  if (section === undefined || section.size === 0) return [];
  const file = elf.file;
  if (btf === undefined) throw new ObjectError({ file, section: '.maps' }, 'BTF-defined maps need the object\'s .BTF section (compile with -g)');
  const datasec = btf.findByName('datasec', '.maps');
  if (datasec === undefined) throw new ObjectError({ file, section: '.maps' }, 'no .maps DATASEC in the object\'s BTF');

  const slotRelocs = readSlotRelocations(elf, section);
  const symbolByName = new Map<string, ElfSymbol>();
  for (const s of elf.symbolsIn(section.index)) {
    if (s.type !== SymbolType.SECTION && !symbolByName.has(s.name)) symbolByName.set(s.name, s);
  }
  const maps: MapSpec[] = [];
  for (const secinfo of datasec.vars) {
    const v = btf.type(secinfo.type);
    if (v.kind !== 'var') throw new ObjectError({ file, section: '.maps' }, `DATASEC entry ${secinfo.type} is a ${v.kind}, not a variable`);
    const where = { file, section: '.maps', symbol: v.name };
    const symbol = symbolByName.get(v.name);
    const offset = symbol?.value ?? secinfo.offset;
    // The struct's size leaves out the flexible values[] array; initialised slots extend the symbol beyond it.
    const size = Math.max(btf.sizeof(v.type), symbol?.size ?? 0, secinfo.size);
    if (offset + size > section.size) throw new ObjectError(where, `definition at offset ${offset} (${size} bytes) lies outside .maps (${section.size} bytes)`);
    const def = readDefinition(btf, v.type, where);
    const bytes = section.type === SectionType.NOBITS ? new Uint8Array(size) : section.data.subarray(offset, offset + size);
    const nonZero = bytes.findIndex((b) => b !== 0);
    if (nonZero >= 0) {
      throw new ObjectError(where, `non-zero byte at offset ${nonZero} of the definition: .maps may only be initialised through __array(values, …) slots`);
    }
    const initialSlots = def.values === undefined ? undefined : relocationsIn(slotRelocs, offset + def.values.offset, offset + size)
      .map((r) => {
        const rel = r.offset - offset - def.values!.offset;
        if (rel % 8 !== 0) throw new ObjectError(where, `initial value at offset ${r.offset - offset} is not a values[] slot`);
        return { key: rel / 8, target: r.target };
      });
    maps.push(toSpec(v.name, firstIndex + maps.length, offset, def, initialSlots, bytes));
  }
  return maps;
}

function toSpec(name: string, index: number, offset: number, def: BtfMapDef, initialSlots: MapSpec['initialSlots'], definition: Uint8Array): MapSpec {
  const inner = def.values?.inner;
  return {
    name, index, source: 'btf', section: '.maps', offset,
    type: def.type, typeName: mapTypeName(def.type) as MapSpec['typeName'],
    keySize: def.keySize, valueSize: def.valueSize, maxEntries: def.maxEntries, flags: def.flags, numaNode: def.numaNode,
    innerMapIndex: undefined, innerMap: undefined, pinning: def.pinning, definitionSize: definition.byteLength, definition,
    ...(def.keyTypeId !== 0 ? { btfKeyTypeId: def.keyTypeId } : {}),
    ...(def.valueTypeId !== 0 ? { btfValueTypeId: def.valueTypeId } : {}),
    ...(def.mapExtra !== 0n ? { mapExtra: def.mapExtra } : {}),
    ...(initialSlots !== undefined && initialSlots.length > 0 ? { initialSlots } : {}),
    ...(inner !== undefined ? { innerDefinition: toSpec(`${name}.inner`, -1, 0, inner, undefined, new Uint8Array(0)) } : {}),
  };
}

/** `inner`: this is the template of a map-in-map's values, which (as in libbpf) cannot hold maps or programs itself. */
function readDefinition(btf: Btf, typeId: number, where: { file: string | undefined; section: string; symbol: string }, inner = false): BtfMapDef {
  const struct = btf.type(btf.resolve(typeId));
  if (struct.kind !== 'struct') throw new ObjectError(where, `map definition is a ${struct.kind}, expected a struct`);
  const fields: Partial<Record<UintField, number | bigint>> = {};
  let keyTypeId = 0;
  let valueTypeId = 0;
  let values: BtfMapDef['values'];
  for (const m of (struct as BtfComposite).members) {
    const fail = (cause: string) => new ObjectError(where, `field ${m.name}: ${cause}`);
    if ((UINT_FIELDS as readonly string[]).includes(m.name)) {
      fields[m.name as UintField] = uintField(btf, m.type, fail);
    } else if (m.name === 'key' || m.name === 'value') {
      const ptr = btf.type(btf.resolve(m.type));
      if (ptr.kind !== 'ptr') throw fail(`expected __type(${m.name}, T) (a pointer), found ${ptr.kind}`);
      if (m.name === 'key') keyTypeId = ptr.type;
      else valueTypeId = ptr.type;
    } else if (m.name === 'values') {
      const arr = btf.type(btf.resolve(m.type));
      if (arr.kind !== 'array') throw fail(`expected __array(values, …), found ${arr.kind}`);
      // One level only; this also ends a definition whose values[] points back at itself.
      if (inner) throw fail('the inner map of a map-in-map cannot itself hold maps or programs (multi-level map-in-map)');
      const ptr = btf.type(btf.resolve(arr.type));
      if (ptr.kind !== 'ptr') throw fail(`expected an array of pointers, found an array of ${ptr.kind}`);
      const target = btf.type(btf.resolve(ptr.type));
      const offset = m.bitOffset / 8;
      if (target.kind === 'struct') values = { offset, holds: 'maps', inner: readDefinition(btf, target.id, { ...where, symbol: `${where.symbol}.values` }, true) };
      else if (target.kind === 'func_proto') values = { offset, holds: 'programs', inner: undefined };
      else throw fail(`__array(values, …) must point to a map definition or a function prototype, not ${target.kind}`);
    } else {
      throw new ObjectError(where, `unknown field ${JSON.stringify(m.name)} in a BTF map definition`);
    }
  }
  const num = (f: UintField) => Number(fields[f] ?? 0);
  const type = num('type');
  if (fields.type === undefined) throw new ObjectError(where, 'map definition has no type');
  let keySize = keyTypeId !== 0 ? btf.sizeof(keyTypeId) : num('key_size');
  let valueSize = valueTypeId !== 0 ? btf.sizeof(valueTypeId) : num('value_size');
  if (keyTypeId !== 0 && fields.key_size !== undefined && num('key_size') !== keySize) {
    throw new ObjectError(where, `key_size ${num('key_size')} disagrees with the key type's size ${keySize}`);
  }
  if (valueTypeId !== 0 && fields.value_size !== undefined && num('value_size') !== valueSize) {
    throw new ObjectError(where, `value_size ${num('value_size')} disagrees with the value type's size ${valueSize}`);
  }
  if (values !== undefined) {
    // Slots hold fds on the way in (ids on the way out): 4 bytes, whatever the definition says.
    const declared = valueTypeId !== 0 ? btf.sizeof(valueTypeId) : fields.value_size === undefined ? 4 : num('value_size');
    if (declared !== 4) throw new ObjectError(where, `a map with __array(values, …) holds 4-byte fds, but its value is declared as ${declared} bytes`);
    valueSize = 4;
    if (keySize === 0) keySize = 4;
    if (mapTypeTraits(type).valueFds !== values.holds) {
      const expected = MAP_TYPE_NAMES.filter((name) => MAP_TYPE_TRAITS[name].valueFds === values.holds);
      throw new ObjectError(where, `__array(values, …) of ${values.holds} needs a ${expected.join(' or ')} map, not ${mapTypeName(type)}`);
    }
  }
  // Other values belong to some project's own loader: kept for --dump, refused when loading.
  const pinning: MapSpec['pinning'] = PINNING_BY_VALUE[num('pinning')] ?? `unknown(${num('pinning')})`;
  return {
    type, keySize, valueSize, maxEntries: num('max_entries'), flags: num('map_flags'), numaNode: num('numa_node'), pinning,
    mapExtra: BigInt(fields.map_extra ?? 0), keyTypeId: values === undefined ? keyTypeId : 0, valueTypeId: values === undefined ? valueTypeId : 0, values,
  };
}

function uintField(btf: Btf, typeId: number, fail: (cause: string) => ObjectError): number | bigint {
  const ptr = btf.type(btf.resolve(typeId));
  // libbpf's __ulong(name, v) is `enum { unique = v } name`: 64-bit values such as map_extra.
  if ((ptr.kind === 'enum' || ptr.kind === 'enum64') && ptr.values.length === 1) return ptr.values[0]!.value;
  if (ptr.kind !== 'ptr') throw fail(`expected __uint(…) (a pointer to an array), found ${ptr.kind}`);
  const arr = btf.type(btf.resolve(ptr.type));
  if (arr.kind !== 'array') throw fail(`expected __uint(…) (a pointer to an array), found a pointer to ${arr.kind}`);
  return arr.nelems;
}

/** The relocations (sorted by offset) with offsets in [start, end): a binary search, not a scan per map. */
function relocationsIn(sorted: ReadonlyArray<{ offset: number; target: string }>, start: number, end: number) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.offset < start) lo = mid + 1;
    else hi = mid;
  }
  const out: Array<{ offset: number; target: string }> = [];
  for (let i = lo; i < sorted.length && sorted[i]!.offset < end; i++) out.push(sorted[i]!);
  return out;
}

/** `.rel.maps`: which program or map each static values[] slot names, sorted by offset. */
function readSlotRelocations(elf: ElfFile, maps: ElfSection): Array<{ offset: number; target: string }> {
  const out: Array<{ offset: number; target: string }> = [];
  for (const s of elf.sections) {
    if ((s.type !== SectionType.REL && s.type !== SectionType.RELA) || s.info !== maps.index) continue;
    for (const r of elf.relocations(s)) {
      if (r.type === BpfReloc.NONE) continue;
      const sym = elf.symbols[r.symbol]!;
      if (sym.name === '') throw new ObjectError({ file: elf.file, section: '.maps' }, `relocation at offset ${r.offset} names no symbol`);
      out.push({ offset: r.offset, target: sym.name });
    }
  }
  return out.sort((a, b) => a.offset - b.offset);
}

