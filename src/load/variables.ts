import { BpfLoadError, withContext } from '../base/errors.js';
import type { BtfValue } from '../btf/index.js';
import type { BpfObjectSpec, MapSpec, VariableSpec } from '../object/index.js';
import { encode, type MapBytes, type MapHandle } from './map-handle.js';

export class VariableError extends BpfLoadError {
  override name = 'VariableError';
}

/**
 * A global variable of a loaded object: a window onto its data map's single value. `.rodata` is frozen after load
 * (the verifier relies on it), so it can only be set before, through LoadOptions.globals.
 */
export class VariableHandle {
  readonly spec: VariableSpec;
  readonly name: string;
  private readonly map: MapHandle;

  constructor(spec: VariableSpec, map: MapHandle) {
    this.spec = spec;
    this.name = spec.name;
    this.map = map;
  }

  /** The variable's bytes as the kernel holds them now. */
  bytes(): Buffer {
    const value = this.map.get(0);
    if (value === undefined) throw new VariableError(`variable ${this.name}: its map ${this.map.name} has no value`);
    return value.subarray(this.spec.offset, this.spec.offset + this.spec.size);
  }

  /** Decoded through BTF when the object describes the variable (structs as objects, enums by name …). */
  get(): BtfValue {
    const bytes = this.bytes();
    if (this.spec.btfTypeId !== undefined && this.map.btf !== undefined) return this.map.btf.formatValue(this.spec.btfTypeId, bytes);
    const v = bytes.byteLength === 8 ? bytes.readBigUInt64LE(0) : undefined;
    if (v !== undefined) return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    return bytes.byteLength === 4 ? bytes.readUInt32LE(0) : bytes.byteLength === 2 ? bytes.readUInt16LE(0) : bytes.byteLength === 1 ? bytes[0]! : bytes.toString('hex');
  }

  /** Writes the variable (the rest of its section is kept). Refused for .rodata, which is frozen after load. */
  set(value: MapBytes): void {
    if (this.spec.readOnly) {
      throw new VariableError(`variable ${this.name}: ${this.spec.section} is frozen after load; set it before with LoadOptions.globals`);
    }
    const whole = this.map.get(0) ?? Buffer.alloc(this.map.valueSize);
    whole.set(encode(value, this.spec.size, `variable ${this.name}`), this.spec.offset);
    this.map.set(0, whole);
  }
}

/**
 * Initial contents of data maps with LoadOptions.globals applied: values by variable name, written over the
 * section's bytes before the map is created (the only way to set .rodata).
 */
export function dataContentsWithGlobals(spec: BpfObjectSpec, map: MapSpec, globals: Readonly<Record<string, MapBytes>>): Uint8Array | undefined {
  if (map.source !== 'data') return undefined;
  let contents: Uint8Array | undefined;
  for (const v of spec.variables) {
    if (v.section !== map.section || !Object.hasOwn(globals, v.name)) continue;
    // .bss has no contents in the spec (the kernel zero-fills it): the buffer exists only once a global is set.
    contents ??= map.contents === undefined ? new Uint8Array(map.valueSize) : Uint8Array.from(map.contents);
    contents.set(encode(globals[v.name]!, v.size, `global ${v.name}`), v.offset);
  }
  return contents ?? map.contents;
}

/** Names in LoadOptions.globals that match no variable: a typo must not pass silently. */
export function unknownGlobals(spec: BpfObjectSpec, globals: Readonly<Record<string, MapBytes>>): string[] {
  const known = new Set(spec.variables.map((v) => v.name));
  return Object.keys(globals).filter((n) => !known.has(n));
}

export function variableNotFound(spec: BpfObjectSpec, name: string): VariableError {
  return new VariableError(withContext([spec.file], `no global variable named ${name} (variables: ${spec.variables.map((v) => v.name).join(', ') || 'none'})`));
}
