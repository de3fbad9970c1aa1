/**
 * bpf-load's public API. The pipeline, one layer per import:
 *   bytes → readElf → parseObject (spec, no kernel) → loadObject (maps, relocation, programs) → attach → close.
 * `openObject(path)` does read + parse + load; `BpfObject` adds attach()/attachAll() and detaches on close().
 */
import { readUserFile } from './base/file.js';
import { ELF_HEADER_CHECK } from './elf/index.js';
import { attachAll, attachProgram, type AttachAllOptions, type AttachOptions, type AttachResult, type Link } from './attach/index.js';
import { loadObject, type LoadedObject, type LoadedProgram, type LoadOptions, type MapHandle, type VariableHandle } from './load/index.js';
import { parseObject, type BpfObjectSpec } from './object/index.js';

// The public API, by name. Every error class is here so callers can `instanceof` it; internal tables are not.
export { BpfLoadError } from './base/errors.js';
export { FileError } from './base/file.js';
export {
  PROG_TYPE_NAMES, MAP_TYPE_NAMES, ATTACH_TYPE_NAMES, progTypeValue, mapTypeValue, attachTypeValue, progTypeName,
  mapTypeName, attachTypeName, MapFlags, type ProgTypeName, type MapTypeName, type AttachTypeName,
} from './base/uapi.js';
export { mapTypeTraits, type MapTypeTraits } from './base/map-types.js';
export { readElf, ElfError, type ElfFile, type ElfSection, type ElfSymbol, type ElfRelocation } from './elf/index.js';
export { parseBtf, parseBtfExt, Btf, BtfError, type BtfType, type BtfValue } from './btf/index.js';
export { decodeInsns, encodeInsns, formatInsn, InsnError, type Insn } from './insn/index.js';
export { parseObject, ObjectError, matchSection, SECTION_DEFS, type ParseOptions } from './object/index.js';
export type {
  BpfObjectSpec, SectionSpec, SectionRole, MapSpec, ProgramSpec, SubprogramSpec, FunctionSpec, RelocationSpec,
  RelocationKind, VariableSpec,
} from './object/spec.js';
export type { AttachKind, SectionDef, SectionMatch } from './object/index.js';
export { describeObject, type ObjectDump, type InsnDump } from './object/describe.js';
export { SysError, KernelFeatureError, SysArgumentError, UnsupportedPlatformError } from './sys/index.js';
export {
  loadObject, LoadedObject, LoadError, MapHandle, MapHandleError, VerifierError, RelocationError, relocateProgram, pinObject,
  PinError, CoreError, VariableHandle, VariableError,
  type LoadOptions, type LoadedProgram, type MapFixup, type MapBytes, type SkippedProgram,
} from './load/index.js';
export {
  attachProgram, attachAll, AttachError, ATTACHABLE_KINDS,
  type AttachOptions, type AttachAllOptions, type AttachResult, type Link, type AttachableKind,
} from './attach/index.js';
export { NetlinkError } from './attach/xdp.js';
export { readTracePipe } from './attach/tracefs.js';
export { generateTypes, generateSkeleton, GenerateError, type GenerateOptions, type GeneratedSkeleton } from './gen/generate.js';
export {
  Skeleton, TypedMap, PerCpuMap, TypedVariable, SkeletonError, loadSkeletonObject, encodeGlobals, enumValue, checkArray, checkBigInt,
  checkInt, checkNumber, getBits, getBitsBig, getBytes, getCString, getInt128, setBits, setBitsBig, setBytes, setCString, setInt128,
  type Codec, type ReadonlyVariable, type SkeletonSource,
} from './gen/runtime.js';

/** A loaded object with attach methods. Closing it (or `using` it) detaches every link, then closes every fd. */
export class BpfObject implements Disposable {
  readonly loaded: LoadedObject;
  constructor(loaded: LoadedObject) {
    this.loaded = loaded;
  }
  get spec(): BpfObjectSpec {
    return this.loaded.spec;
  }
  get programs(): readonly LoadedProgram[] {
    return this.loaded.programs;
  }
  get maps(): readonly MapHandle[] {
    return this.loaded.maps;
  }
  map(name: string): MapHandle {
    return this.loaded.map(name);
  }
  program(name: string): LoadedProgram {
    return this.loaded.program(name);
  }
  /** A global variable (.data/.bss read and write, .rodata read; set .rodata with LoadOptions.globals). */
  variable(name: string): VariableHandle {
    return this.loaded.variable(name);
  }
  /** Attaches one program (by name, section or handle) where its section says. */
  attach(program: string | LoadedProgram, options: AttachOptions = {}): Link {
    return attachProgram(this.loaded, typeof program === 'string' ? this.loaded.program(program) : program, options);
  }
  /** Attaches every program it can; reports attached, skipped and failed ones. */
  attachAll(options: AttachAllOptions = {}): AttachResult[] {
    return attachAll(this.loaded, options);
  }
  close(): void {
    this.loaded.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Reads, parses and loads an object file. */
export function openObject(path: string, options: LoadOptions = {}): BpfObject {
  return new BpfObject(loadObject(parseObject(readUserFile(path, { head: ELF_HEADER_CHECK }), { name: path }), options));
}
