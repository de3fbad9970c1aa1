/**
 * The generated module's types and codecs: a TypeScript type and a pair of generated decode/encode functions for each
 * BTF type a key, value, variable or record uses, emitted once each, with the offsets, widths and byte order
 * written in. Objects without BTF get types by size (scalars.ts).
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import type { Btf, BtfComposite, BtfEnum, BtfEnum64, BtfKindName, BtfType } from '../btf/index.js';
import { RUNTIME_NAMES } from './header.js';
import { bytesShape, floatShape, intShape, readInt, sizedShape, syntheticInt, writeInt, type Shape } from './scalars.js';
import { accessor, camel, doc, indent, pascal, propertyKey } from './text.js';

export class GenerateError extends BpfLoadError {
  override name = 'GenerateError';
}

/** A struct/union member after anonymous members are flattened into their parent, as C does. */
type FieldNode =
  | { readonly kind: 'field'; readonly name: string; readonly typeId: number; readonly bitOffset: number; readonly bitfieldSize: number; readonly tags: readonly string[] }
  | { readonly kind: 'group'; readonly union: boolean; readonly size: number; readonly members: readonly FieldNode[] };

/** Names a generated module must not shadow (globals it uses, TypeScript's own types, what it imports) or redeclare. */
const RESERVED: readonly string[] = [
  'Array', 'ArrayBuffer', 'BigInt', 'Boolean', 'Buffer', 'DataView', 'Date', 'Error', 'Function', 'Map', 'Math', 'Number', 'Object',
  'Partial', 'Promise', 'Readonly', 'Record', 'Set', 'String', 'Symbol', 'Uint8Array', 'URL', 'Omit', 'Pick', 'JSON',
  'SkeletonError', 'ProgramName', 'PROGRAMS', 'OpenOptions', 'Rodata', 'OBJECT', 'RODATA_CODECS', 'open', ...RUNTIME_NAMES,
];

/** Emits types and codecs into the module's sections; owns the module's names, so none is declared twice. */
export class TypeEmitter {
  readonly btf: Btf | undefined;
  readonly le: boolean;
  /** The BTF kinds the generated types were built from. */
  readonly kinds = new Set<BtfKindName>();
  /** `export interface` / `export type` text, in the order first reached. */
  readonly declarations: string[] = [];
  /** The generated decode/encode functions. */
  readonly functions: string[] = [];
  /** `export const xCodec` lines. */
  readonly codecs: string[] = [];
  private readonly objectName: string;
  private readonly used = new Set(RESERVED);
  /** Composite types already emitted, by type id. */
  private readonly named = new Map<number, Shape>();
  /** Enums already emitted, by type id. */
  private readonly enumNames = new Map<number, string>();
  private readonly codecNames = new Map<string, string>();

  constructor(btf: Btf | undefined, littleEndian: boolean, objectName: string) {
    this.btf = btf;
    this.le = littleEndian;
    this.objectName = objectName;
  }

  /** A named codec constant for a key, value or variable: from its BTF type, else from its size alone. */
  codecFor(typeId: number | undefined, size: number, hint: string): { shape: Shape; codec: string } {
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

  sizeOf(id: number): number | undefined {
    try {
      return this.btf!.sizeof(id);
    } catch {
      return undefined;
    }
  }

  cTypeName(id: number | undefined, size: number): string {
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

  claim(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}${i}`;
    this.used.add(name);
    return name;
  }

  private fail(typeId: number, cause: string): GenerateError {
    return new GenerateError(withContext([this.objectName, `BTF type [${typeId}]`], cause));
  }
}

// ---- helpers

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
