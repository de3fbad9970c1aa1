/**
 * Typed skeletons: one TypeScript module per object, generated from its spec and BTF (spec in, source text out; no
 * files, no kernel). Each map gets its key and value types and a codec — generated decode/encode functions with the
 * offsets, widths and byte order written in — so reading a map costs DataView reads, not the run-time BTF walk.
 * The module imports only the package's public API ('bpf-load'), whose gen/runtime*.ts hold what codecs share.
 *
 * The parts: types.ts (types and codecs from BTF), maps.ts (map handles, event readers, globals), programs.ts
 * (program handles), header.ts (header, the object, the import); this file puts the module together.
 */
import type { BtfKindName } from '../btf/index.js';
import type { BpfObjectSpec } from '../object/index.js';
import { header, importLine, objectSource, type ObjectSourceOptions } from './header.js';
import { checkEventTypes, mapField, variableFields, type MapField, type VariableField } from './maps.js';
import { programDeclarations, programField, programNames, skeletonPrograms, type ProgramField } from './programs.js';
import { TypeEmitter } from './types.js';
import { baseName, doc, pascal, propertyKey } from './text.js';

export { GenerateError } from './types.js';

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

export interface GeneratedSkeleton {
  readonly code: string;
  readonly className: string;
  /** The BTF kinds the generated types were built from (the tests hold the generator to every kind). */
  readonly btfKinds: ReadonlySet<BtfKindName>;
}

/** The generated module's source text. Deterministic: the same object and options give the same bytes. */
export function generateTypes(spec: BpfObjectSpec, options: GenerateOptions = {}): string {
  return generateSkeleton(spec, options).code;
}

export function generateSkeleton(spec: BpfObjectSpec, options: GenerateOptions = {}): GeneratedSkeleton {
  const objectName = options.objectName ?? baseName(spec.file ?? 'object.o');
  const source: ObjectSourceOptions = { objectName, objectPath: options.objectPath ?? `./${objectName}`, embed: options.embed };
  const eventTypes = options.eventTypes ?? {};
  checkEventTypes(spec, eventTypes, objectName);
  const types = new TypeEmitter(spec.btf, spec.littleEndian, objectName);
  const className = types.claim(pascal(options.name ?? objectName.replace(/\.o$/, '').replace(/\.bpf$/, '')) || 'Skeleton');
  // Maps first, then variables: the order codecs are emitted in, which the output's byte-stability depends on.
  const maps = spec.maps.filter((m) => m.source !== 'data').map((m) => mapField(types, m, eventTypes, objectName));
  const variables = variableFields(types, spec);
  const programs = skeletonPrograms(spec);
  if (programs.length > 0) types.kinds.add('func');
  // LoadOptions.globals goes by variable name: one entry per name.
  const rodata = variables.filter((v, i) => v.spec.readOnly && variables.findIndex((w) => w.spec.name === v.spec.name) === i);

  const out: string[] = [];
  if (types.declarations.length > 0) out.push(`// ---- Types, from the object's BTF\n\n${types.declarations.join('\n\n')}`);
  if (types.functions.length > 0) out.push(`// ---- Codecs: generated reads and writes of each type, in the object's byte order\n\n${types.functions.join('\n\n')}`);
  if (types.codecs.length > 0) out.push(`// ---- Codecs of keys, values and variables, exported for raw bytes (a pinned map's values, records)\n\n${types.codecs.join('\n')}`);
  out.push(objectSource(source));
  out.push(programNames(programs));
  out.push(...openOptions(rodata));
  out.push(classText(className, objectName, maps, variables, programs.map(programField)));
  const build = `(object) => new ${className}(object)`;
  const openBody = rodata.length > 0
    ? `  const { rodata = {}, ...load } = options;\n  return openSkeleton(loadSkeletonObject(OBJECT, { ...load, globals: encodeGlobals(rodata, RODATA_CODECS) }), ${build});`
    : `  return openSkeleton(loadSkeletonObject(OBJECT, options), ${build});`;
  out.push(`/** Reads, parses and loads ${objectName}; attach with attach()/attachAll(), release with close() (or \`using\`). */\nexport function open(options: OpenOptions = {}): ${className} {\n${openBody}\n}`);
  const text = out.join('\n\n');
  return { code: `${header(spec, source)}\n\n${importLine(text)}\n\n${text}\n`, className, btfKinds: types.kinds };
}

/** open()'s options: LoadOptions, with `.rodata` constants typed (they are fixed once loaded). */
function openOptions(rodata: readonly VariableField[]): string[] {
  if (rodata.length === 0) return [`export type OpenOptions = Omit<LoadOptions, 'globals'>;`];
  return [
    `/** \`.rodata\` constants: fixed once loaded (the verifier relies on them), so they are set through open(). */\nexport interface Rodata {\n${rodata.map((v) => `${doc(v.comment, '  ')}  ${propertyKey(v.spec.name)}: ${v.shape.ts};`).join('\n')}\n}\n\nconst RODATA_CODECS = {\n${rodata.map((v) => `  ${propertyKey(v.spec.name)}: ${v.codec},`).join('\n')}\n};`,
    `export interface OpenOptions extends Omit<LoadOptions, 'globals'> {\n  /** Values of \`.rodata\` constants, written before load; the rest keep the object's values. */\n  readonly rodata?: Partial<Rodata>;\n}`,
  ];
}

function classText(
  className: string, objectName: string, maps: readonly MapField[], variables: readonly VariableField[], programs: readonly ProgramField[],
): string {
  const varType = (v: VariableField) => `${v.spec.readOnly ? 'ReadonlyVariable' : 'TypedVariable'}<${v.shape.ts}>`;
  const lines: string[] = [];
  lines.push(`/** ${objectName} loaded: typed maps and globals; programs by name for attach(). Close it (or \`using\`) to release everything. */`);
  lines.push(`export class ${className} extends Skeleton<ProgramName> {`);
  lines.push(`  /** The maps, typed by their BTF (or by size); a typed handle's \`.handle\` is the MapHandle underneath, for raw bytes. */`);
  if (maps.length === 0) lines.push(`  readonly maps: Record<string, never>;`);
  else lines.push(`  readonly maps: {`, ...maps.map((m) => `${doc(m.comment, '    ')}    readonly ${propertyKey(m.property)}: ${m.ts};`), `  };`);
  lines.push(`  /** Global variables: \`.bss\` and \`.data\` read and written live, \`.rodata\` read (set it with open({ rodata })). */`);
  if (variables.length === 0) lines.push(`  readonly globals: Record<string, never>;`);
  else lines.push(`  readonly globals: {`, ...variables.map((v) => `${doc(v.comment, '    ')}    readonly ${propertyKey(v.property)}: ${varType(v)};`), `  };`);
  lines.push(...programDeclarations(programs));
  lines.push(``);
  lines.push(`  constructor(object: LoadedObject) {`);
  lines.push(`    super(object);`);
  // Maps and globals through loadedFields: open({ programs }) may leave some of them out of the load.
  lines.push(maps.length === 0 ? `    this.maps = {};` : `    this.maps = loadedFields({\n${maps.map((m) => `      ${propertyKey(m.property)}: () => ${m.init},`).join('\n')}\n    });`);
  lines.push(variables.length === 0 ? `    this.globals = {};` : `    this.globals = loadedFields({\n${variables.map((v) => `      ${propertyKey(v.property)}: () => new TypedVariable(object, ${JSON.stringify(v.spec.section)}, ${JSON.stringify(v.spec.name)}, ${v.codec}),`).join('\n')}\n    });`);
  lines.push(programs.length === 0 ? `    this.programs = {};` : `    this.programs = {\n${programs.map((p) => `      ${propertyKey(p.name)}: ${p.init},`).join('\n')}\n    };`);
  lines.push(`  }`);
  lines.push(`}`);
  return lines.join('\n');
}
