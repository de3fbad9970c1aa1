/**
 * The skeleton's maps and globals: a typed handle per map (keys and values through their codecs), a typed reader per
 * ring buffer / perf event array whose record type is known, and a typed variable per global.
 */
import { withContext } from '../base/errors.js';
import { mapTypeTraits } from '../base/map-types.js';
import type { BpfObjectSpec, MapSpec, VariableSpec } from '../object/index.js';
import type { Shape } from './scalars.js';
import { GenerateError, type TypeEmitter } from './types.js';

/** One property of the class's `maps`: its type, the expression that builds it (in the constructor), its doc. */
export interface MapField {
  readonly property: string;
  readonly ts: string;
  readonly init: string;
  readonly comment: string;
}

export interface VariableField {
  readonly spec: VariableSpec;
  readonly property: string;
  readonly shape: Shape;
  readonly codec: string;
  readonly comment: string;
}

/** Record types by map name: each must name a ring buffer or perf event array of the object. */
export function checkEventTypes(spec: BpfObjectSpec, eventTypes: Readonly<Record<string, string>>, objectName: string): void {
  for (const name of Object.keys(eventTypes)) {
    const map = spec.maps.find((m) => m.name === name);
    if (map === undefined || !isEventMap(map)) {
      const candidates = spec.maps.filter(isEventMap).map((m) => m.name);
      throw new GenerateError(withContext([objectName, `event type for ${name}`],
        `no ring buffer or perf event array of that name (${candidates.length === 0 ? 'the object has none' : `it has ${candidates.join(', ')}`})`));
    }
  }
}

function isEventMap(m: MapSpec): boolean {
  return m.typeName === 'ringbuf' || m.typeName === 'perf_event_array';
}

export function mapField(types: TypeEmitter, m: MapSpec, eventTypes: Readonly<Record<string, string>>, objectName: string): MapField {
  const traits = mapTypeTraits(m.typeName);
  const name = JSON.stringify(m.name);
  if (isEventMap(m)) {
    const record = recordType(types, m, eventTypes[m.name], objectName);
    if (record === undefined) {
      return { property: m.name, ts: 'MapHandle', init: `object.map(${name})`, comment: `\`${m.name}\`: ${m.typeName}, ${m.maxEntries} entries; records untyped (name their type with --event-type MAP=TYPE).` };
    }
    const cls = m.typeName === 'ringbuf' ? 'RingBuffer' : 'PerfBuffer';
    return {
      property: m.name,
      ts: `${cls}<${record.shape.ts}>`,
      init: `new ${cls}(this.bpf, ${name}, ${record.codec}, ${JSON.stringify(record.cType)})`,
      comment: `\`${m.name}\`: ${m.typeName}, ${m.maxEntries} entries; records are \`${record.cType}\`, decoded by ${record.codec}: \`.read()\` yields them.`,
    };
  }
  const describe = `${m.typeName}, ${types.cTypeName(m.btfKeyTypeId, m.keySize)} → ${types.cTypeName(m.btfValueTypeId, m.valueSize)}, ${m.maxEntries} entries`;
  const unlistable = traits.unlistable;
  if (unlistable !== undefined || m.keySize === 0) {
    return { property: m.name, ts: 'MapHandle', init: `object.map(${name})`, comment: `\`${m.name}\`: ${describe}. Not typed: ${unlistable ?? 'it has no keys'}.` };
  }
  const key = types.codecFor(m.btfKeyTypeId, m.keySize, `${m.name}_key`);
  const value = types.codecFor(m.btfValueTypeId, m.valueSize, `${m.name}_value`);
  const cls = traits.perCpu ? 'PerCpuMap' : 'TypedMap';
  return {
    property: m.name,
    ts: `${cls}<${key.shape.ts}, ${value.shape.ts}>`,
    init: `new ${cls}(object.map(${name}), ${key.codec}, ${value.codec})`,
    comment: `\`${m.name}\`: ${describe}${traits.perCpu ? ' (a value per CPU)' : ''}.`,
  };
}

/**
 * The record type of a ring buffer or perf event array: the one `named` (--event-type), else `struct event` (the
 * libbpf-tools convention, as the CLI and EventOptions.type follow it).
 */
function recordType(types: TypeEmitter, m: MapSpec, named: string | undefined, objectName: string): { cType: string; shape: Shape; codec: string } | undefined {
  const btf = types.btf;
  if (btf === undefined) {
    if (named !== undefined) throw new GenerateError(withContext([objectName, `map ${m.name}`], `event type ${named}: the object has no BTF`));
    return undefined;
  }
  const type = named === undefined
    ? btf.findByName('struct', 'event')
    : btf.findByName('struct', named) ?? btf.findByName('union', named) ?? btf.findByName('typedef', named);
  if (type === undefined) {
    if (named !== undefined) throw new GenerateError(withContext([objectName, `map ${m.name}`], `event type ${named}: no struct, union or typedef of that name in the BTF`));
    return undefined;
  }
  const size = types.sizeOf(type.id);
  if (size === undefined) throw new GenerateError(withContext([objectName, `map ${m.name}`], `event type ${btf.typeName(type.id)} has no size`));
  return { cType: btf.typeName(type.id), ...types.codecFor(type.id, size, `${m.name}_record`) };
}

export function variableFields(types: TypeEmitter, spec: BpfObjectSpec): VariableField[] {
  const out: VariableField[] = [];
  const taken = new Set<string>();
  if (types.btf !== undefined && spec.variables.some((v) => v.btfTypeId !== undefined)) {
    types.kinds.add('var');
    types.kinds.add('datasec');
  }
  for (const v of spec.variables) {
    if (v.size === 0) continue;
    let property = v.name;
    // Static variables of different sections may share a name: the later ones get their section's.
    if (taken.has(property)) property = `${v.name}_${v.section.replace(/[^A-Za-z0-9_]/g, '_').replace(/^_+/, '')}`;
    taken.add(property);
    const { shape, codec } = types.codecFor(v.btfTypeId, v.size, v.name);
    out.push({ spec: v, property, shape, codec, comment: `\`${types.cTypeName(v.btfTypeId, v.size)} ${v.name}\` in ${v.section}${v.readOnly ? ' (read-only after load)' : ''}` });
  }
  return out;
}
