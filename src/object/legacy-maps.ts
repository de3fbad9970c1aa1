import { ByteReader } from '../base/cursor.js';
import { isMapInMap } from '../base/map-types.js';
import { mapTypeName } from '../base/uapi.js';
import { SpecialSection, SymbolBind, SymbolType, type ElfFile, type ElfSection, type ElfSymbol } from '../elf/index.js';
import { ObjectError } from './errors.js';
import type { MapSpec } from './spec.js';

/** Legacy definition layouts seen in the wild, by size in bytes. */
const LAYOUT_BASIC = 20; // type, key_size, value_size, max_entries, map_flags
const LAYOUT_BPF_LOAD = 28; // + inner_map_idx, numa_node (samples/bpf/bpf_load.h struct bpf_load_map_def)
const LAYOUT_IPROUTE2 = 36; // + id, pinning, inner_id, inner_idx (iproute2 struct bpf_elf_map)
const LAYOUT_GOBPF = 280; // + pinning, namespace[256] (gobpf struct bpf_map_def)


const PINNING = ['none', 'object_ns', 'global_ns'] as const;

/** Sections holding legacy map definitions: `maps`, and iproute2-style `maps/<name>`. */
export function isLegacyMapsSection(name: string): boolean {
  return name === 'maps' || name.startsWith('maps/');
}

/**
 * Reads every legacy map definition. Every symbol in a maps section is a map; they are ordered by offset and that order
 * is the map index (`inner_map_idx` refers to it).
 */
export function readLegacyMaps(elf: ElfFile, firstIndex: number): MapSpec[] {
  const file = elf.file;
  const sections = elf.sections.filter((s) => isLegacyMapsSection(s.name) && s.size > 0);
  const maps: MapSpec[] = [];
  for (const section of sections) {
    const symbols = elf.symbolsIn(section.index)
      .filter((s) => s.type !== SymbolType.SECTION && s.type !== SymbolType.FILE && s.name !== '')
      .sort((a, b) => a.value - b.value);
    if (symbols.length === 0) {
      throw new ObjectError({ file, section: section.name }, `${section.size} bytes of map definitions but no map symbols`);
    }
    if (section.data.byteLength !== section.size) {
      throw new ObjectError({ file, section: section.name }, 'legacy maps section has no file data (SHT_NOBITS)');
    }
    // Symbol sizes when the compiler gave them (static linkers may leave gaps between definitions); otherwise the
    // section size divided by the number of maps, as bpf_load.c did for old objects whose map symbols have size 0.
    const symbolSize = symbols[0]!.size;
    const sized = symbolSize > 0 && symbols.every((s) => s.size === symbolSize);
    if (!sized && section.size % symbols.length !== 0) {
      throw new ObjectError({ file, section: section.name },
        `section size ${section.size} is not a multiple of its ${symbols.length} map definitions`);
    }
    const size = sized ? symbolSize : section.size / symbols.length;
    if (size < LAYOUT_BASIC) {
      throw new ObjectError({ file, section: section.name }, `map definitions of ${size} bytes are too small (at least ${LAYOUT_BASIC})`);
    }
    for (const symbol of symbols) {
      maps.push(readDefinition(elf, section, symbol, size, firstIndex + maps.length));
    }
  }
  // inner_map_idx (and iproute2's inner_id) is resolved once every map has its index.
  return maps.map((m) => {
    if (m.iproute2 !== undefined && m.iproute2.innerId !== 0 && isMapInMap(m.type)) {
      // An inner_id that names no map is left unresolved: --dump shows it, loading names it.
      const inner = maps.find((x) => x !== m && x.iproute2?.id === m.iproute2!.innerId);
      return inner === undefined ? m : { ...m, innerMapIndex: inner.index, innerMap: inner.name };
    }
    if (m.innerMapIndex === undefined) return m;
    const inner = maps[m.innerMapIndex - firstIndex];
    if (inner === undefined || inner === m) {
      throw new ObjectError({ file, section: m.section, symbol: m.name },
        `inner_map_idx ${m.innerMapIndex} does not name another map (the object has ${maps.length} legacy maps)`);
    }
    return { ...m, innerMap: inner.name };
  });
}

function readDefinition(elf: ElfFile, section: ElfSection, symbol: ElfSymbol, size: number, index: number): MapSpec {
  const where = { file: elf.file, section: section.name, symbol: symbol.name };
  if (symbol.bind === SymbolBind.LOCAL) {
    throw new ObjectError(where, 'map is static: legacy maps must be global symbols (drop `static` from the definition)');
  }
  if (symbol.shndx === SpecialSection.UNDEF || symbol.value % 4 !== 0 || symbol.value + size > section.size) {
    throw new ObjectError(where, `definition at offset ${symbol.value} (${size} bytes) does not fit the section (${section.size} bytes)`);
  }
  const definition = section.data.subarray(symbol.value, symbol.value + size);
  const r = new ByteReader(definition, elf.littleEndian, (what, offset) =>
    new ObjectError(where, `${what} at offset ${offset} lies outside the ${size}-byte definition`));

  const type = r.u32(0, 'type');
  let innerMapIndex: number | undefined;
  let numaNode = 0;
  let pinning: MapSpec['pinning'] = 'none';
  let iproute2: MapSpec['iproute2'];
  let known = LAYOUT_BASIC;
  if (size === LAYOUT_BPF_LOAD) {
    // bpf_load.c read inner_map_idx only for map-in-map types, where 0 is simply the first map.
    if (isMapInMap(type)) innerMapIndex = r.u32(20, 'inner_map_idx');
    numaNode = r.u32(24, 'numa_node');
    known = LAYOUT_BPF_LOAD;
  } else if (size === LAYOUT_IPROUTE2) {
    pinning = pinningName(r.u32(24, 'pinning'));
    iproute2 = { id: r.u32(20, 'id'), innerId: r.u32(28, 'inner_id'), innerIdx: r.u32(32, 'inner_idx') };
    known = LAYOUT_IPROUTE2;
  } else if (size === LAYOUT_GOBPF) {
    pinning = pinningName(r.u32(20, 'pinning'));
    known = LAYOUT_GOBPF; // namespace[256] is a name, any bytes allowed.
  }
  for (let o = known; o < size; o++) {
    if (definition[o] !== 0) {
      const at = o - (o % 4);
      throw new ObjectError(where,
        `definition is ${size} bytes and holds a non-zero value at offset ${at}, where no known layout has a field ` +
        `(known: ${LAYOUT_BASIC}, ${LAYOUT_BPF_LOAD} bpf_load, ${LAYOUT_IPROUTE2} iproute2, ${LAYOUT_GOBPF} gobpf)`);
    }
  }
  const valueSize = r.u32(8, 'value_size');
  return {
    name: symbol.name,
    index,
    source: 'legacy',
    section: section.name,
    offset: symbol.value,
    type,
    typeName: mapTypeName(type) as MapSpec['typeName'],
    keySize: r.u32(4, 'key_size'),
    // The kernel samples declare map-in-maps without a value size: the value is an inner map fd, and bpf_load.c
    // created them with 4 (bpf_create_map_in_map_node takes no value size).
    valueSize: valueSize === 0 && isMapInMap(type) ? 4 : valueSize,
    maxEntries: r.u32(12, 'max_entries'),
    flags: r.u32(16, 'map_flags'),
    numaNode,
    innerMapIndex,
    innerMap: undefined,
    pinning,
    ...(iproute2 === undefined ? {} : { iproute2 }),
    definitionSize: size,
    definition,
  };
}

/** Values no convention defines are kept (`unknown(N)`): inspection shows them, loading is what refuses them. */
function pinningName(value: number): MapSpec['pinning'] {
  return PINNING[value] ?? `unknown(${value})`;
}

