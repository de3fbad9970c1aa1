/**
 * Typed skeletons: one TypeScript module per object, generated from its spec and BTF (spec in, source text out; no
 * files, no kernel). Each map gets its key and value types and a codec — generated decode/encode functions with the
 * offsets, widths and byte order written in — so reading a map costs DataView reads, not the run-time BTF walk.
 * The module imports only the package's public API ('bpf-load'), whose gen/runtime.ts holds what codecs share.
 */
import { createHash } from 'node:crypto';
import { BpfLoadError, withContext } from '../base/errors.js';
import { mapTypeTraits } from '../base/map-types.js';
import type { Btf, BtfComposite, BtfEnum, BtfEnum64, BtfInt, BtfKindName, BtfType } from '../btf/index.js';
import type { BpfObjectSpec, MapSpec, VariableSpec } from '../object/index.js';

export interface GenerateOptions {
  /** Base of the skeleton's class name (default: the object's file name, `skel_kern.o` → `SkelKern`). */
  readonly name?: string;
  /** The object's file name as the header and messages show it (default: the spec's, without directories). */
  readonly objectName?: string;
  /** Where the module finds the object at run time, relative to the module (default `./<objectName>`). */
  readonly objectPath?: string;
  /** The object's bytes, embedded in the module (base64) instead of read from objectPath at open(). */
  readonly embed?: Uint8Array;
  /**
   * Record types of ring buffers and perf event arrays: map name → BTF struct, union or typedef name. Maps not named
   * here use a struct called `event` when the BTF has one (the libbpf-tools convention).
   */
  readonly eventTypes?: Readonly<Record<string, string>>;
}

export interface GeneratedSkeleton {
  readonly code: string;
  readonly className: string;
  /** The BTF kinds the generated types were built from (the tests hold the generator to every kind). */
  readonly btfKinds: ReadonlySet<BtfKindName>;
}

export class GenerateError extends BpfLoadError {
  override name = 'GenerateError';
}

/** The generated module's source text. Deterministic: the same object and options give the same bytes. */
export function generateTypes(spec: BpfObjectSpec, options: GenerateOptions = {}): string {
  return generateSkeleton(spec, options).code;
}

export function generateSkeleton(spec: BpfObjectSpec, options: GenerateOptions = {}): GeneratedSkeleton {
  return new SkeletonWriter(spec, options).write();
}

/** How a value of some type is read, written and typed; `off` is a JS expression for its byte offset in `v`. */
interface Shape {
  readonly ts: string;
  /** Bytes the value occupies (what a union compares to pick the member it writes). */
  readonly size: number;
  read(off: string, depth: number): string;
  write(off: string, x: string, depth: number): string;
  /** Composites: the generated decode/encode functions, which a codec can use as they are. */
  readonly functions?: { readonly decode: string; readonly encode: string };
}

/** A struct/union member after anonymous members are flattened into their parent, as C does. */
type FieldNode =
  | { readonly kind: 'field'; readonly name: string; readonly typeId: number; readonly bitOffset: number; readonly bitfieldSize: number; readonly tags: readonly string[] }
  | { readonly kind: 'group'; readonly union: boolean; readonly size: number; readonly members: readonly FieldNode[] };

/** Names a generated module must not shadow (globals it uses, TypeScript's own types) or redeclare. */
const RESERVED = new Set([
  'Array', 'ArrayBuffer', 'BigInt', 'Boolean', 'Buffer', 'DataView', 'Date', 'Error', 'Function', 'Map', 'Math', 'Number', 'Object',
  'Partial', 'Promise', 'Readonly', 'Record', 'Set', 'String', 'Symbol', 'Uint8Array', 'URL', 'Omit', 'Pick', 'JSON',
  'Codec', 'LoadedObject', 'LoadOptions', 'MapHandle', 'PerCpuMap', 'ReadonlyVariable', 'Skeleton', 'SkeletonError',
  'SkeletonSource', 'TypedMap', 'TypedVariable', 'ProgramName', 'PROGRAMS', 'OpenOptions', 'Rodata', 'OBJECT', 'RODATA_CODECS',
  'open', 'checkArray', 'checkBigInt', 'checkInt', 'checkNumber', 'encodeGlobals', 'enumValue', 'getBits', 'getBitsBig',
  'getBytes', 'getCString', 'getInt128', 'loadSkeletonObject', 'setBits', 'setBitsBig', 'setBytes', 'setCString', 'setInt128',
]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

class SkeletonWriter {
  private readonly spec: BpfObjectSpec;
  private readonly options: GenerateOptions;
  private readonly btf: Btf | undefined;
  private readonly le: boolean;
  private readonly used = new Set(RESERVED);
  private readonly kinds = new Set<BtfKindName>();
  private readonly declarations: string[] = [];
  private readonly functions: string[] = [];
  private readonly codecs: string[] = [];
  /** Composite types already emitted, by type id. */
  private readonly named = new Map<number, Shape>();
  /** Enums already emitted, by type id. */
  private readonly enumNames = new Map<number, string>();
  private readonly codecNames = new Map<string, string>();
  private readonly objectName: string;

  constructor(spec: BpfObjectSpec, options: GenerateOptions) {
    this.spec = spec;
    this.options = options;
    this.btf = spec.btf;
    this.le = spec.littleEndian;
    this.objectName = options.objectName ?? baseName(spec.file ?? 'object.o');
  }

  write(): GeneratedSkeleton {
    for (const name of Object.keys(this.options.eventTypes ?? {})) {
      const map = this.spec.maps.find((m) => m.name === name);
      if (map?.typeName !== 'ringbuf' && map?.typeName !== 'perf_event_array') {
        const candidates = this.spec.maps.filter((m) => m.typeName === 'ringbuf' || m.typeName === 'perf_event_array').map((m) => m.name);
        throw new GenerateError(withContext([this.objectName, `event type for ${name}`],
          `no ring buffer or perf event array of that name (${candidates.length === 0 ? 'the object has none' : `it has ${candidates.join(', ')}`})`));
      }
    }
    const className = this.claim(pascal(this.options.name ?? this.objectName.replace(/\.o$/, '').replace(/\.bpf$/, '')) || 'Skeleton');
    const mapFields = this.spec.maps.filter((m) => m.source !== 'data').map((m) => this.mapField(m));
    const variables = this.variableFields();
    const programs = [...new Set(this.spec.programs.filter((p) => p.type !== 'unspecified').map((p) => p.name))];
    if (programs.length > 0) this.kinds.add('func');
    // LoadOptions.globals goes by variable name: one entry per name.
    const rodata = variables.filter((v, i) => v.spec.readOnly && variables.findIndex((w) => w.spec.name === v.spec.name) === i);

    const out: string[] = [];
    if (this.declarations.length > 0) out.push(`// ---- Types, from the object's BTF\n\n${this.declarations.join('\n\n')}`);
    if (this.functions.length > 0) out.push(`// ---- Codecs: generated reads and writes of each type, in the object's byte order\n\n${this.functions.join('\n\n')}`);
    if (this.codecs.length > 0) out.push(`// ---- Codecs of keys, values and variables, exported for raw bytes (a pinned map's values, records)\n\n${this.codecs.join('\n')}`);
    out.push(this.objectSource());
    out.push(programs.length === 0 ? 'export type ProgramName = never;' : `/** The object's programs. */\nexport type ProgramName = ${programs.map((p) => JSON.stringify(p)).join(' | ')};\nexport const PROGRAMS: readonly ProgramName[] = [${programs.map((p) => JSON.stringify(p)).join(', ')}];`);
    if (rodata.length > 0) {
      out.push(`/** \`.rodata\` constants: fixed once loaded (the verifier relies on them), so they are set through open(). */\nexport interface Rodata {\n${rodata.map((v) => `${doc(v.comment, '  ')}  ${propertyKey(v.spec.name)}: ${v.shape.ts};`).join('\n')}\n}\n\nconst RODATA_CODECS = {\n${rodata.map((v) => `  ${propertyKey(v.spec.name)}: ${v.codec},`).join('\n')}\n};`);
      out.push(`export interface OpenOptions extends Omit<LoadOptions, 'globals'> {\n  /** Values of \`.rodata\` constants, written before load; the rest keep the object's values. */\n  readonly rodata?: Partial<Rodata>;\n}`);
    } else {
      out.push(`export type OpenOptions = Omit<LoadOptions, 'globals'>;`);
    }
    out.push(this.classText(className, mapFields, variables));
    const openBody = rodata.length > 0
      ? `  const { rodata = {}, ...load } = options;\n  return new ${className}(loadSkeletonObject(OBJECT, { ...load, globals: encodeGlobals(rodata, RODATA_CODECS) }));`
      : `  return new ${className}(loadSkeletonObject(OBJECT, options));`;
    out.push(`/** Reads, parses and loads ${this.objectName}; attach with attach()/attachAll(), release with close() (or \`using\`). */\nexport function open(options: OpenOptions = {}): ${className} {\n${openBody}\n}`);
    const body = out.join('\n\n');
    return { code: `${this.header()}\n\n${importLine(body)}\n\n${body}\n`, className, btfKinds: this.kinds };
  }

  private header(): string {
    const btf = this.btf;
    const btfLine = btf === undefined
      ? `no BTF${this.spec.btfProblem === undefined ? '' : ` (unusable: ${this.spec.btfProblem})`}: keys, values and globals typed by size`
      : `BTF ${btf.types.length - 1} types, ${btf.raw.byteLength} bytes, sha256 ${createHash('sha256').update(btf.raw).digest('hex').slice(0, 16)}`;
    return [
      `// Generated by \`bpf-load gen\` from ${this.objectName} — do not edit; regenerate when the object changes.`,
      `// ${this.spec.littleEndian ? 'little' : 'big'}-endian object; ${btfLine}.`,
      `// The object is ${this.options.embed === undefined ? `read at open() from ${this.objectPath()} (relative to this module)` : 'embedded below'}.`,
    ].join('\n');
  }

  private objectPath(): string {
    return this.options.objectPath ?? `./${this.objectName}`;
  }

  private objectSource(): string {
    const embed = this.options.embed;
    if (embed === undefined) {
      return `const OBJECT: SkeletonSource = { file: ${JSON.stringify(this.objectPath())}, from: import.meta.url };`;
    }
    const base64 = Buffer.from(embed.buffer, embed.byteOffset, embed.byteLength).toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < base64.length; i += 100) lines.push(`  '${base64.slice(i, i + 100)}',`);
    return `/** ${this.objectName}, ${embed.byteLength} bytes, sha256 ${createHash('sha256').update(embed).digest('hex')}. */\nconst OBJECT: SkeletonSource = {\n  name: ${JSON.stringify(this.objectName)},\n  base64: [\n${lines.join('\n')}\n  ].join(''),\n};`;
  }

  // ---- maps and globals

  private mapField(m: MapSpec): { property: string; ts: string; init: string; comment: string } {
    const traits = mapTypeTraits(m.typeName);
    const describe = `${m.typeName}, ${this.cTypeName(m.btfKeyTypeId, m.keySize)} → ${this.cTypeName(m.btfValueTypeId, m.valueSize)}, ${m.maxEntries} entries`;
    const unlistable = traits.unlistable;
    if (m.typeName === 'ringbuf' || m.typeName === 'perf_event_array') {
      const record = this.recordType(m);
      const records = record === undefined
        ? 'records untyped (name their type with --event-type MAP=TYPE)'
        : `records are \`${record.cType}\`, decoded by ${record.codec}`;
      return { property: m.name, ts: 'MapHandle', init: `object.map(${JSON.stringify(m.name)})`, comment: `\`${m.name}\`: ${m.typeName}, ${m.maxEntries} entries; ${records}.` };
    }
    if (unlistable !== undefined || m.keySize === 0) {
      return { property: m.name, ts: 'MapHandle', init: `object.map(${JSON.stringify(m.name)})`, comment: `\`${m.name}\`: ${describe}. Not typed: ${unlistable ?? 'it has no keys'}.` };
    }
    const key = this.codecFor(m.btfKeyTypeId, m.keySize, `${m.name}_key`);
    const value = this.codecFor(m.btfValueTypeId, m.valueSize, `${m.name}_value`);
    const perCpu = traits.perCpu;
    const cls = perCpu ? 'PerCpuMap' : 'TypedMap';
    return {
      property: m.name,
      ts: `${cls}<${key.shape.ts}, ${value.shape.ts}>`,
      init: `new ${cls}(object.map(${JSON.stringify(m.name)}), ${key.codec}, ${value.codec})`,
      comment: `\`${m.name}\`: ${describe}${perCpu ? ' (a value per CPU)' : ''}.`,
    };
  }

  /** The record type of a ring buffer or perf event array: named in options.eventTypes, else `struct event`. */
  private recordType(m: MapSpec): { cType: string; codec: string } | undefined {
    const btf = this.btf;
    const named = this.options.eventTypes?.[m.name];
    if (btf === undefined) {
      if (named !== undefined) throw new GenerateError(withContext([this.objectName, `map ${m.name}`], `event type ${named}: the object has no BTF`));
      return undefined;
    }
    const type = named === undefined
      ? btf.findByName('struct', 'event')
      : btf.findByName('struct', named) ?? btf.findByName('union', named) ?? btf.findByName('typedef', named);
    if (type === undefined) {
      if (named !== undefined) throw new GenerateError(withContext([this.objectName, `map ${m.name}`], `event type ${named}: no struct, union or typedef of that name in the BTF`));
      return undefined;
    }
    const size = this.sizeOf(type.id);
    if (size === undefined) throw new GenerateError(withContext([this.objectName, `map ${m.name}`], `event type ${btf.typeName(type.id)} has no size`));
    return { cType: btf.typeName(type.id), codec: this.codecFor(type.id, size, `${m.name}_record`).codec };
  }

  private variableFields(): Array<{ spec: VariableSpec; property: string; shape: Shape; codec: string; comment: string }> {
    const out: Array<{ spec: VariableSpec; property: string; shape: Shape; codec: string; comment: string }> = [];
    const taken = new Set<string>();
    if (this.btf !== undefined && this.spec.variables.some((v) => v.btfTypeId !== undefined)) {
      this.kinds.add('var');
      this.kinds.add('datasec');
    }
    for (const v of this.spec.variables) {
      if (v.size === 0) continue;
      let property = v.name;
      // Static variables of different sections may share a name: the later ones get their section's.
      if (taken.has(property)) property = `${v.name}_${v.section.replace(/[^A-Za-z0-9_]/g, '_').replace(/^_+/, '')}`;
      taken.add(property);
      const { shape, codec } = this.codecFor(v.btfTypeId, v.size, v.name);
      out.push({ spec: v, property, shape, codec, comment: `\`${this.cTypeName(v.btfTypeId, v.size)} ${v.name}\` in ${v.section}${v.readOnly ? ' (read-only after load)' : ''}` });
    }
    return out;
  }

  private classText(
    className: string,
    maps: ReadonlyArray<{ property: string; ts: string; init: string; comment: string }>,
    variables: ReadonlyArray<{ spec: VariableSpec; property: string; shape: Shape; codec: string; comment: string }>,
  ): string {
    const varType = (v: { spec: VariableSpec; shape: Shape }) => `${v.spec.readOnly ? 'ReadonlyVariable' : 'TypedVariable'}<${v.shape.ts}>`;
    const lines: string[] = [];
    lines.push(`/** ${this.objectName} loaded: typed maps and globals; programs by name for attach(). Close it (or \`using\`) to release everything. */`);
    lines.push(`export class ${className} extends Skeleton<ProgramName> {`);
    if (maps.length === 0) lines.push(`  readonly maps: Record<string, never>;`);
    else lines.push(`  readonly maps: {`, ...maps.map((m) => `${doc(m.comment, '    ')}    readonly ${propertyKey(m.property)}: ${m.ts};`), `  };`);
    lines.push(`  /** Global variables: \`.bss\` and \`.data\` read and written live, \`.rodata\` read (set it with open({ rodata })). */`);
    if (variables.length === 0) lines.push(`  readonly globals: Record<string, never>;`);
    else lines.push(`  readonly globals: {`, ...variables.map((v) => `${doc(v.comment, '    ')}    readonly ${propertyKey(v.property)}: ${varType(v)};`), `  };`);
    lines.push(``);
    lines.push(`  constructor(object: LoadedObject) {`);
    lines.push(`    super(object);`);
    lines.push(maps.length === 0 ? `    this.maps = {};` : `    this.maps = {\n${maps.map((m) => `      ${propertyKey(m.property)}: ${m.init},`).join('\n')}\n    };`);
    lines.push(variables.length === 0 ? `    this.globals = {};` : `    this.globals = {\n${variables.map((v) => `      ${propertyKey(v.property)}: new TypedVariable(object, ${JSON.stringify(v.spec.section)}, ${JSON.stringify(v.spec.name)}, ${v.codec}),`).join('\n')}\n    };`);
    lines.push(`  }`);
    lines.push(`}`);
    return lines.join('\n');
  }

  /** A named codec constant for a key, value or variable: from its BTF type, else from its size alone. */
  private codecFor(typeId: number | undefined, size: number, hint: string): { shape: Shape; codec: string } {
    const btf = this.btf;
    const typed = btf !== undefined && typeId !== undefined && typeId !== 0 && this.sizeOf(typeId) === size;
    const shape = typed ? this.shapeOf(typeId, pascal(hint), btf.typeName(typeId).replace(/^((const|volatile) )+/, '')) : sizedShape(size, this.le);
    const fns = shape.functions;
    const body = fns !== undefined
      ? `{ size: ${size}, decode: ${fns.decode}, encode: ${fns.encode} };`
      : `{\n  size: ${size},\n  decode: (v, o) => ${shape.read('o', 0)},\n  encode: (v, o, x) => {\n${indent(shape.write('o', 'x', 0), '    ')}\n  },\n};`;
    // Types that differ only in qualifiers or typedefs generate the same code: one codec serves them all.
    const key = `${shape.ts}\n${body}`;
    let name = this.codecNames.get(key);
    if (name === undefined) {
      name = this.claim(`${camel(codecBaseName(typed ? btf : undefined, typeId, shape, size))}Codec`);
      this.codecNames.set(key, name);
      this.codecs.push(`export const ${name}: Codec<${shape.ts}> = ${body}`);
    }
    return { shape, codec: name };
  }

  private sizeOf(id: number): number | undefined {
    try {
      return this.btf!.sizeof(id);
    } catch {
      return undefined;
    }
  }

  private cTypeName(id: number | undefined, size: number): string {
    if (this.btf === undefined || id === undefined || id === 0) return `${size} bytes`;
    return this.btf.typeName(id);
  }

  // ---- types

  /**
   * The shape of a value of type `id`. `hint` names anonymous structs, unions and enums (from the member, map or
   * variable holding them); the qualifiers and typedefs on the way are recorded as kinds seen.
   */
  private shapeOf(id: number, hint: string, what: string): Shape {
    const btf = this.btf!;
    let current = id;
    let name = hint;
    for (let steps = 0; steps <= btf.types.length; steps++) {
      const t = btf.type(current);
      this.noteKind(t);
      switch (t.kind) {
        case 'typedef':
          name = pascal(t.name) || name;
          current = t.type;
          continue;
        case 'const': case 'volatile': case 'restrict': case 'type_tag':
          current = t.type;
          continue;
        default:
          return this.concreteShape(t, name, what);
      }
    }
    throw this.fail(id, 'typedef/qualifier chain never ends');
  }

  private concreteShape(t: BtfType, hint: string, what: string): Shape {
    switch (t.kind) {
      case 'int': return intShape(t, this.le, what);
      case 'float': return floatShape(t.size, this.le, what);
      case 'ptr':
        this.notePointee(t.type);
        return { ...intShape(syntheticInt(8, false), this.le, what), ts: 'bigint' };
      case 'enum': case 'enum64': return this.enumShape(t, hint, what);
      case 'array': return this.arrayShape(t.type, t.nelems, hint, what);
      case 'struct': case 'union': return this.compositeShape(t, hint);
      default:
        throw this.fail(t.id, `a value of kind ${t.kind} has no TypeScript representation`);
    }
  }

  private arrayShape(elemId: number, nelems: number, hint: string, what: string): Shape {
    const btf = this.btf!;
    const elemType = btf.type(btf.resolve(elemId));
    const elemSize = btf.sizeof(elemId);
    if (elemType.kind === 'int' && elemType.size === 1 && !elemType.bool && elemType.bits === 8 && elemType.bitOffset === 0) {
      // Walk the element's chain for its kinds (the shapes below do not recurse into it).
      this.shapeOf(elemId, hint, what);
      if (elemType.char || elemType.name === 'char') {
        return { ts: 'string', size: nelems, read: (off) => `getCString(v, ${off}, ${nelems})`, write: (off, x) => `setCString(v, ${off}, ${nelems}, ${x}, ${JSON.stringify(what)});` };
      }
      if (!elemType.signed) return bytesShape(nelems, what);
    }
    const elem = this.shapeOf(elemId, hint, what);
    const ts = /^[A-Za-z0-9_]+$/.test(elem.ts) ? `${elem.ts}[]` : `Array<${elem.ts}>`;
    return {
      ts,
      size: elemSize * nelems,
      read: (off, depth) => `Array.from({ length: ${nelems} }, (_, i${depth}) => ${elem.read(`${off} + i${depth} * ${elemSize}`, depth + 1)})`,
      write: (off, x, depth) => `{\n  const a${depth} = checkArray(${x}, ${nelems}, ${JSON.stringify(what)});\n  for (let i${depth} = 0; i${depth} < ${nelems}; i${depth}++) {\n${indent(elem.write(`${off} + i${depth} * ${elemSize}`, `a${depth}[i${depth}]!`, depth + 1), '    ')}\n  }\n}`,
    };
  }

  private enumShape(t: BtfEnum | BtfEnum64, hint: string, what: string): Shape {
    const wide = t.kind === 'enum64';
    const read = readInt(t.size, t.signed, this.le);
    if (t.values.length === 0) {
      return { ts: wide ? 'bigint' : 'number', size: t.size, read: (off) => read(off, wide), write: (off, x) => writeInt(t.size, t.signed, this.le, off, x, wide, what) };
    }
    const typeName = this.enumTypeName(t, hint);
    return {
      ts: `${typeName} | ${wide ? 'bigint' : 'number'}`,
      size: t.size,
      read: (off) => `${camel(typeName)}Name(${read(off, wide)})`,
      write: (off, x) => writeInt(t.size, t.signed, this.le, off, `enumValue(${typeName}, ${x}, ${JSON.stringify(what)})`, wide, what),
    };
  }

  /** The enum's TypeScript name: its string union of value names, the table of their values, and a decoder. */
  private enumTypeName(t: BtfEnum | BtfEnum64, hint: string): string {
    const known = this.enumNames.get(t.id);
    if (known !== undefined) return known;
    const wide = t.kind === 'enum64';
    const typeName = this.claim(pascal(t.name) || hint || 'Enum');
    this.enumNames.set(t.id, typeName);
    const literal = (v: number | bigint) => (wide ? `${v}n` : String(v));
    const firstOfValue = new Map<string, string>();
    for (const v of t.values) if (!firstOfValue.has(String(v.value))) firstOfValue.set(String(v.value), v.name);
    this.declarations.push([
      `/** \`enum ${t.name || '(anon)'}\` (${t.size} bytes): read as the name of its value (the number when it has none). */`,
      `export type ${typeName} = ${t.values.map((v) => JSON.stringify(v.name)).join(' | ')};`,
      `export const ${typeName} = {\n${t.values.map((v) => `  ${propertyKey(v.name)}: ${literal(v.value)},`).join('\n')}\n} as const;`,
    ].join('\n'));
    this.functions.push(`function ${camel(typeName)}Name(n: ${wide ? 'bigint' : 'number'}): ${typeName} | ${wide ? 'bigint' : 'number'} {\n  switch (n) {\n${[...firstOfValue].map(([value, name]) => `    case ${wide ? `${value}n` : value}: return ${JSON.stringify(name)};`).join('\n')}\n    default: return n;\n  }\n}`);
    return typeName;
  }

  private compositeShape(t: BtfComposite, hint: string): Shape {
    const cached = this.named.get(t.id);
    if (cached !== undefined) return cached;
    const typeName = this.claim(pascal(t.name) || hint || 'Anon');
    const shape: Shape = {
      ts: typeName,
      size: t.size,
      read: (off) => `decode${typeName}(v, ${off})`,
      write: (off, x) => `encode${typeName}(v, ${off}, ${x});`,
      functions: { decode: `decode${typeName}`, encode: `encode${typeName}` },
    };
    // Registered before the members are walked: a member's type may be reached again (never by value: sizes bound it).
    this.named.set(t.id, shape);
    const label = `${t.kind} ${t.name || '(anon)'}`;
    const root: FieldNode = { kind: 'group', union: t.kind === 'union', size: t.size, members: this.fieldsOf(t, 0) };
    const leaves: Array<{ field: Extract<FieldNode, { kind: 'field' }>; optional: boolean; shape: Shape; comment: string }> = [];
    const collect = (node: FieldNode, optional: boolean): void => {
      if (node.kind === 'group') {
        for (const m of node.members) collect(m, optional || node.union);
        return;
      }
      const shape = this.memberShape(node, `${typeName}${pascal(node.name)}`, `${label}.${node.name}`);
      const where = node.bitfieldSize > 0 ? `bits ${node.bitOffset}..${node.bitOffset + node.bitfieldSize - 1}` : `byte ${node.bitOffset / 8}`;
      const tags = node.tags.length > 0 ? `; decl_tag ${node.tags.map((s) => JSON.stringify(s)).join(', ')}` : '';
      const cType = this.btf!.typeName(node.typeId);
      leaves.push({ field: node, optional, shape, comment: `\`${cType}${cType.endsWith('*') ? '' : ' '}${node.name}${node.bitfieldSize > 0 ? ` : ${node.bitfieldSize}` : ''}\`, ${where}${tags}` });
    };
    collect(root, false);
    const shapes = new Map(leaves.map((l) => [l.field, l.shape]));
    const typeTags = this.declTags(t.id, -1);
    this.declarations.push([
      `/** \`${label}\` (${t.size} bytes)${t.kind === 'union' ? ': all members are read; a write stores the largest member given' : ''}${typeTags.length > 0 ? `; decl_tag ${typeTags.map((s) => JSON.stringify(s)).join(', ')}` : ''}. */`,
      `export interface ${typeName} {`,
      ...leaves.map((l) => `${doc(l.comment, '  ')}  ${propertyKey(l.field.name)}${l.optional ? '?' : ''}: ${l.shape.ts};`),
      `}`,
    ].join('\n'));
    const readLines = leaves.map((l) => `    ${propertyKey(l.field.name)}: ${l.shape.read(fieldOffset(l.field), 0)},`);
    this.functions.push(`function decode${typeName}(v: DataView, o: number): ${typeName} {\n  return {\n${readLines.join('\n')}\n  };\n}`);
    this.functions.push(`function encode${typeName}(v: DataView, o: number, x: ${typeName}): void {\n${indent(this.writeNode(root, shapes, false), '  ')}\n}`);
    return shape;
  }

  /** Statements writing a group: every member of a struct; the largest member present of a union. */
  private writeNode(node: FieldNode, shapes: ReadonlyMap<FieldNode, Shape>, optional: boolean): string {
    if (node.kind === 'field') {
      const shape = shapes.get(node)!;
      return shape.write(fieldOffset(node), `x${accessor(node.name)}${optional ? '!' : ''}`, 0);
    }
    if (!node.union) return node.members.map((m) => this.writeNode(m, shapes, optional)).filter((s) => s !== '').join('\n');
    const bySize = [...node.members].sort((a, b) => nodeSize(b, shapes) - nodeSize(a, shapes));
    const branches = bySize.map((m) => {
      const first = firstField(m);
      if (first === undefined) return undefined;
      return `if (x${accessor(first.name)} !== undefined) {\n${indent(this.writeNode(m, shapes, true), '  ')}\n}`;
    }).filter((b): b is string => b !== undefined);
    return branches.join(' else ');
  }

  private fieldsOf(t: BtfComposite, base: number): FieldNode[] {
    const btf = this.btf!;
    const out: FieldNode[] = [];
    t.members.forEach((m, index) => {
      const bitOffset = base + m.bitOffset;
      const resolved = btf.type(btf.resolve(m.type));
      if (m.name === '' && (resolved.kind === 'struct' || resolved.kind === 'union')) {
        // Walk the chain for its kinds; the anonymous member itself is flattened, not named.
        this.shapeOfChainOnly(m.type);
        out.push({ kind: 'group', union: resolved.kind === 'union', size: resolved.size, members: this.fieldsOf(resolved, bitOffset) });
        return;
      }
      if (m.name === '') return; // an unnamed bitfield: padding
      out.push({ kind: 'field', name: m.name, typeId: m.type, bitOffset, bitfieldSize: m.bitfieldSize, tags: this.declTags(t.id, index) });
    });
    return out;
  }

  private shapeOfChainOnly(id: number): void {
    const btf = this.btf!;
    let current = id;
    for (let steps = 0; steps <= btf.types.length; steps++) {
      const t = btf.type(current);
      this.noteKind(t);
      if (t.kind !== 'typedef' && t.kind !== 'const' && t.kind !== 'volatile' && t.kind !== 'restrict' && t.kind !== 'type_tag') return;
      current = t.type;
    }
  }

  private memberShape(field: Extract<FieldNode, { kind: 'field' }>, hint: string, what: string): Shape {
    const btf = this.btf!;
    const resolved = btf.type(btf.resolve(field.typeId));
    const intBits = resolved.kind === 'int' && (resolved.bitOffset !== 0 || resolved.bits !== resolved.size * 8);
    if (field.bitfieldSize === 0 && field.bitOffset % 8 === 0 && !intBits) return this.shapeOf(field.typeId, hint, what);
    // A bitfield: kind_flag's explicit width, or (the old encoding) an int whose bits/offset describe it.
    this.shapeOfChainOnly(field.typeId);
    if (resolved.kind !== 'int' && resolved.kind !== 'enum' && resolved.kind !== 'enum64') {
      throw this.fail(resolved.id, `${what}: a bitfield of kind ${resolved.kind}`);
    }
    const width = field.bitfieldSize !== 0 ? field.bitfieldSize : resolved.kind === 'int' ? resolved.bits : resolved.size * 8;
    const start = field.bitOffset + (resolved.kind === 'int' && field.bitfieldSize === 0 ? resolved.bitOffset : 0);
    if (width > 128) throw this.fail(resolved.id, `${what}: a ${width}-bit bitfield`);
    // Offsets inside composites are relative to the composite; getBits takes the start from `o`.
    const signed = resolved.signed;
    const big = width > 32;
    const get = `${big ? 'getBitsBig' : 'getBits'}(v, o, ${start}, ${width}, ${signed}, ${this.le})`;
    const set = (value: string) => `${big ? 'setBitsBig' : 'setBits'}(v, o, ${start}, ${width}, ${signed}, ${this.le}, ${value}, ${JSON.stringify(what)});`;
    if (resolved.kind === 'enum' || resolved.kind === 'enum64') {
      const e = this.enumShape(resolved, hint, what);
      const wide = resolved.kind === 'enum64';
      const named = resolved.values.length > 0;
      const enumName = named ? this.enumTypeName(resolved, hint) : '';
      const nameFn = `${camel(enumName)}Name`;
      const asWide = (expr: string) => (wide && !big ? `BigInt(${expr})` : !wide && big ? `Number(${expr})` : expr);
      const asStored = (expr: string) => (wide && !big ? `Number(${expr})` : !wide && big ? `BigInt(${expr})` : expr);
      return {
        ts: e.ts,
        size: Math.ceil(width / 8),
        read: () => (named ? `${nameFn}(${asWide(get)})` : asWide(get)),
        write: (_off, x) => set(asStored(named ? `enumValue(${enumName}, ${x}, ${JSON.stringify(what)})` : x)),
      };
    }
    if (resolved.bool) {
      return { ts: 'boolean', size: 1, read: () => `${get} !== 0`, write: (_off, x) => set(`${x} ? 1 : 0`) };
    }
    return { ts: big ? 'bigint' : 'number', size: Math.ceil(width / 8), read: () => get, write: (_off, x) => set(x) };
  }

  /** decl_tag strings on a type (componentIdx -1) or on one of its members. */
  private declTags(typeId: number, componentIdx: number): string[] {
    const out: string[] = [];
    for (const t of this.btf!.types) {
      if (t.kind === 'decl_tag' && t.type === typeId && t.componentIdx === componentIdx) {
        this.kinds.add('decl_tag');
        out.push(t.name);
      }
    }
    return out;
  }

  /** The kinds a pointer's target goes through (shown in the member's C type; the value is an address). */
  private notePointee(id: number): void {
    const btf = this.btf!;
    const seen = new Set<number>();
    const visit = (current: number): void => {
      if (seen.has(current)) return;
      seen.add(current);
      const t = btf.type(current);
      this.noteKind(t);
      switch (t.kind) {
        case 'ptr': case 'typedef': case 'const': case 'volatile': case 'restrict': case 'type_tag': case 'array': case 'var': case 'func':
          visit(t.type);
          return;
        case 'func_proto':
          visit(t.returnType);
          for (const p of t.params) visit(p.type);
          return;
        default:
          return;
      }
    };
    visit(id);
  }

  private noteKind(t: BtfType): void {
    this.kinds.add(t.kind);
  }

  private claim(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}${i}`;
    this.used.add(name);
    return name;
  }

  private fail(typeId: number, cause: string): GenerateError {
    return new GenerateError(withContext([this.objectName, `BTF type [${typeId}]`], cause));
  }
}

// ---- scalar shapes

function syntheticInt(size: number, signed: boolean): BtfInt {
  return { kind: 'int', id: 0, name: '', size, signed, char: false, bool: false, bitOffset: 0, bits: size * 8 };
}

function intShape(t: BtfInt, le: boolean, what: string): Shape {
  if (t.bitOffset !== 0 || t.bits !== t.size * 8) {
    // An int carrying its own bit range outside a struct: read it as a bitfield of its storage.
    const big = t.bits > 32;
    return {
      ts: big ? 'bigint' : 'number',
      size: t.size,
      read: (off) => `${big ? 'getBitsBig' : 'getBits'}(v, ${off}, ${t.bitOffset}, ${t.bits}, ${t.signed}, ${le})`,
      write: (off, x) => `${big ? 'setBitsBig' : 'setBits'}(v, ${off}, ${t.bitOffset}, ${t.bits}, ${t.signed}, ${le}, ${x}, ${JSON.stringify(what)});`,
    };
  }
  if (t.bool && t.size === 1) {
    return { ts: 'boolean', size: 1, read: (off) => `v.getUint8(${off}) !== 0`, write: (off, x) => `v.setUint8(${off}, ${x} ? 1 : 0);` };
  }
  if (t.size === 16) {
    return {
      ts: 'bigint',
      size: 16,
      read: (off) => `getInt128(v, ${off}, ${t.signed}, ${le})`,
      write: (off, x) => `setInt128(v, ${off}, checkBigInt(${x}, 128, ${t.signed}, ${JSON.stringify(what)}), ${le});`,
    };
  }
  if (t.size !== 1 && t.size !== 2 && t.size !== 4 && t.size !== 8) return bytesShape(t.size, what);
  const wide = t.size === 8;
  return {
    ts: wide ? 'bigint' : 'number',
    size: t.size,
    read: (off) => readInt(t.size, t.signed, le)(off, wide),
    write: (off, x) => writeInt(t.size, t.signed, le, off, x, wide, what),
  };
}

/** An expression reading a 1/2/4/8-byte integer; `asBigint` says which JS type the caller wants. */
function readInt(size: number, signed: boolean, le: boolean): (off: string, asBigint: boolean) => string {
  return (off, asBigint) => {
    const bits = size * 8;
    if (size === 8) {
      const expr = `v.get${signed ? 'BigInt64' : 'BigUint64'}(${off}, ${le})`;
      return asBigint ? expr : `Number(${expr})`;
    }
    const expr = size === 1 ? `v.get${signed ? 'Int8' : 'Uint8'}(${off})` : `v.get${signed ? 'Int' : 'Uint'}${bits}(${off}, ${le})`;
    return asBigint ? `BigInt(${expr})` : expr;
  };
}

/** A statement writing a 1/2/4/8-byte integer from `x` (a bigint when `isBigint`), range-checked. */
function writeInt(size: number, signed: boolean, le: boolean, off: string, x: string, isBigint: boolean, what: string): string {
  const bits = size * 8;
  if (size === 8) {
    const value = isBigint ? `checkBigInt(${x}, 64, ${signed}, ${JSON.stringify(what)})` : `BigInt(checkInt(${x}, ${signed ? '-Number.MAX_SAFE_INTEGER' : '0'}, Number.MAX_SAFE_INTEGER, ${JSON.stringify(what)}))`;
    return `v.set${signed ? 'BigInt64' : 'BigUint64'}(${off}, ${value}, ${le});`;
  }
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const n = isBigint ? `Number(checkBigInt(${x}, ${bits}, ${signed}, ${JSON.stringify(what)}))` : `checkInt(${x}, ${min}, ${max}, ${JSON.stringify(what)})`;
  return size === 1 ? `v.set${signed ? 'Int8' : 'Uint8'}(${off}, ${n});` : `v.set${signed ? 'Int' : 'Uint'}${bits}(${off}, ${n}, ${le});`;
}

function floatShape(size: number, le: boolean, what: string): Shape {
  if (size !== 4 && size !== 8) return bytesShape(size, what);
  const bits = size * 8;
  return {
    ts: 'number',
    size,
    read: (off) => `v.getFloat${bits}(${off}, ${le})`,
    write: (off, x) => `v.setFloat${bits}(${off}, checkNumber(${x}, ${JSON.stringify(what)}), ${le});`,
  };
}

function bytesShape(size: number, what: string): Shape {
  return { ts: 'Uint8Array', size, read: (off) => `getBytes(v, ${off}, ${size})`, write: (off, x) => `setBytes(v, ${off}, ${size}, ${x}, ${JSON.stringify(what)});` };
}

/** Keys, values and variables without BTF: unsigned numbers for 1/2/4 bytes, bigint for 8, bytes otherwise. */
function sizedShape(size: number, le: boolean): Shape {
  if (size === 1 || size === 2 || size === 4 || size === 8) return intShape(syntheticInt(size, false), le, `${size}-byte value`);
  return bytesShape(size, `${size}-byte value`);
}

// ---- text helpers

function fieldOffset(field: { bitOffset: number; bitfieldSize: number }): string {
  if (field.bitfieldSize > 0 || field.bitOffset % 8 !== 0) return 'o';
  const bytes = field.bitOffset / 8;
  return bytes === 0 ? 'o' : `o + ${bytes}`;
}

function firstField(node: FieldNode): Extract<FieldNode, { kind: 'field' }> | undefined {
  if (node.kind === 'field') return node;
  for (const m of node.members) {
    const f = firstField(m);
    if (f !== undefined) return f;
  }
  return undefined;
}

function nodeSize(node: FieldNode, shapes: ReadonlyMap<FieldNode, Shape>): number {
  return node.kind === 'group' ? node.size : shapes.get(node)!.size;
}

function codecBaseName(btf: Btf | undefined, typeId: number | undefined, shape: Shape, size: number): string {
  if (btf !== undefined && typeId !== undefined) {
    const tsName = shape.ts.split(' | ')[0]!;
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(tsName) && !['number', 'bigint', 'boolean', 'string', 'Uint8Array'].includes(tsName)) return tsName;
    const cName = btf.typeName(typeId).replace(/^((const|volatile) )+/, '').replace(/\[(\d+)\]/g, '_$1').replace(/[^A-Za-z0-9_]+/g, '_');
    return cName.replace(/^_+/, '') || `bytes${size}`;
  }
  return `bytes${size}`;
}

/** `flow_key` → `FlowKey`, `__sk_buff` → `SkBuff`; a leading digit gets an underscore. */
export function pascal(name: string): string {
  const out = name.split(/[^A-Za-z0-9]+/).filter((p) => p !== '').map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

function camel(name: string): string {
  const p = pascal(name);
  return p === '' ? p : p[0]!.toLowerCase() + p.slice(1);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** A property name as written in an object literal or interface (quoted unless a plain identifier). */
function propertyKey(name: string): string {
  // `__proto__: …` in a literal would set the prototype; quoted in brackets it is a plain own property.
  if (name === '__proto__') return `['__proto__']`;
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

function accessor(name: string): string {
  return IDENTIFIER.test(name) && name !== '__proto__' ? `.${name}` : `[${JSON.stringify(name)}]`;
}

function doc(text: string, pad: string): string {
  return `${pad}/** ${text.replace(/\*\//g, '*\\/')} */\n`;
}

function indent(text: string, pad: string): string {
  return text.split('\n').map((l) => (l === '' ? l : pad + l)).join('\n');
}

const RUNTIME_VALUES = [
  'PerCpuMap', 'Skeleton', 'TypedMap', 'TypedVariable', 'checkArray', 'checkBigInt', 'checkInt', 'checkNumber', 'encodeGlobals',
  'enumValue', 'getBits', 'getBitsBig', 'getBytes', 'getCString', 'getInt128', 'loadSkeletonObject', 'setBits', 'setBitsBig',
  'setBytes', 'setCString', 'setInt128',
];
const RUNTIME_TYPES = ['Codec', 'LoadOptions', 'LoadedObject', 'MapHandle', 'ReadonlyVariable', 'SkeletonSource'];

/** The import of exactly what the body uses (found in its code, not its comments): unused imports fail strict builds. */
function importLine(body: string): string {
  const code = body.split('\n').filter((l) => !/^\s*(\/\/|\/\*\*)/.test(l)).join('\n');
  const uses = (name: string) => new RegExp(`\\b${name}\\b`).test(code);
  const names = [
    ...RUNTIME_VALUES.filter(uses).map((n) => [n, n] as const),
    ...RUNTIME_TYPES.filter(uses).map((n) => [n, `type ${n}`] as const),
  ].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, text]) => text);
  return `import {\n${wrapList(names, '  ')}\n} from 'bpf-load';`;
}

function wrapList(items: readonly string[], pad: string): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    const next = line === '' ? item : `${line}, ${item}`;
    if (pad.length + next.length > 110 && line !== '') {
      lines.push(`${pad}${line},`);
      line = item;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(`${pad}${line},`);
  return lines.join('\n');
}
