/**
 * bpf-load's public API. The pipeline, one layer per import:
 *   bytes → readElf → parseObject (spec, no kernel) → loadObject (maps, relocation, programs) → attach → close.
 * `openObject(path)` does read + parse + load; `BpfObject` adds attach()/attachAll() and detaches on close().
 */
import { fileURLToPath } from 'node:url';
import { readUserFile } from './base/file.js';
import {
  attachAll, attachProgram, attachUprobe, type AttachAllOptions, type AttachOptions, type AttachResult, type Link, type UprobeTarget,
} from './attach/index.js';
import {
  loadObject, openEvents, openPerfBuffer, openRingBuffer, isEventMap, type EventOptions, type EventReader, type LoadedObject,
  type LoadedProgram, type LoadOptions, type MapHandle, type VariableHandle,
} from './load/index.js';
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
  testRunProgram, TestRunError, EventReader, EventError, RingBufferError, PerfBufferError, openRingBuffer, openPerfBuffer, openEvents,
  type TestRunOptions, type TestRunResult, type EventRecord, type LostEvent, type BufferEvent, type EventOptions,
  type LoadOptions, type LoadedProgram, type MapFixup, type MapBytes, type SkippedProgram,
} from './load/index.js';
export {
  attachProgram, attachAll, AttachError, AttachConflictError, ATTACHABLE_KINDS,
  type AttachOptions, type AttachAllOptions, type AttachResult, type Link, type AttachableKind,
} from './attach/index.js';
export { NetlinkError } from './attach/xdp.js';
export { attachUprobe, type UprobeTarget } from './attach/index.js';
export { readExecutable, functionFileOffset, type ExecutableFile } from './elf/executable.js';
export { readTracePipe } from './attach/tracefs.js';
export { generateTypes, generateSkeleton, GenerateError, type GenerateOptions, type GeneratedSkeleton } from './gen/generate.js';
export {
  Skeleton, TypedMap, PerCpuMap, TypedVariable, SkeletonError, loadSkeletonObject, encodeGlobals, enumValue, checkArray, checkBigInt,
  checkInt, checkNumber, getBits, getBitsBig, getBytes, getCString, getInt128, setBits, setBitsBig, setBytes, setCString, setInt128,
  type Codec, type ReadonlyVariable, type SkeletonSource,
} from './gen/runtime.js';
export { parseTraceLine, type TraceLine } from './attach/tracefs.js';
export {
  listPrograms, listMaps, listLinks, dumpProgram, disassembleXlated, openMap, InspectError,
  type KernelProgram, type KernelLink, type KernelObjectRef, type ProgramDump, type XlatedInsn,
} from './load/index.js';
export type { VerifierSource } from './load/errors.js';
// Classic BPF (tcpdump filters): model, checks, tcpdump syntax, eBPF translation; captures; sockets; the kernel's verdicts.
export {
  type SockFilter, type ClassicProgram, type ClassicParseOptions, ClassicFilterError, checkClassicProgram, decodeClassicProgram,
  encodeClassicProgram, formatClassicProgram, formatClassicInsn, formatClassicC, formatClassicDecimal, formatClassicBytecode,
  classicTextForm, parseClassicDecimal, parseClassicCArray, classicToEbpf, compileClassicToJs, type ClassicMatcher,
} from './cbpf/index.js';
export {
  CaptureError, type CapturedPacket, CaptureCursor, type CaptureSource, readCapture, readCaptureHeader, writePcap,
  summarizePacket, type PacketSummary,
} from './pcap/index.js';
export { pcapCompile, PcapError, LinkType, type PcapCompileOptions } from './sys/index.js';
export { attachClassicFilter, PacketSocket, type ClassicAttachOptions, type SocketPacket } from './attach/index.js';
export { KernelClassicMatcher, loadClassicFilter, type ClassicLoadOptions } from './load/index.js';

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
  /** Attaches a kprobe-type program as a uprobe/uretprobe on `target` (binary + symbol or offset, pid); detached at close. */
  attachUprobe(program: string | LoadedProgram, target: UprobeTarget, options: AttachOptions = {}): Link {
    const link = attachUprobe(typeof program === 'string' ? this.loaded.program(program) : program, target, options);
    this.loaded.onClose(() => link.detach());
    return link;
  }
  /** Attaches every program it can; reports attached, skipped and failed ones. */
  attachAll(options: AttachAllOptions = {}): AttachResult[] {
    return attachAll(this.loaded, options);
  }
  /** Reads a ring buffer map: `for await (const r of obj.ringBuffer('events'))`, or `.listen(cb)`; closed with the object. */
  ringBuffer(name: string, options: EventOptions = {}): EventReader {
    return this.#closedWithObject(openRingBuffer(this.loaded.map(name), options));
  }
  /** Reads a perf event array through one BPF output event and ring per online CPU; closed with the object. */
  perfBuffer(name: string, options: EventOptions = {}): EventReader {
    return this.#closedWithObject(openPerfBuffer(this.loaded.map(name), options));
  }
  /** One reader over several ring buffers / perf event arrays (default: all of the object's); closed with the object. */
  events(names?: readonly string[], options: EventOptions = {}): EventReader {
    const maps = names === undefined ? this.loaded.maps.filter(isEventMap) : names.map((n) => this.loaded.map(n));
    return this.#closedWithObject(openEvents(maps, options));
  }
  #closedWithObject(reader: EventReader): EventReader {
    this.loaded.onClose(() => void reader.close());
    return reader;
  }
  close(): void {
    this.loaded.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Reads, parses and loads an object file: a path, or a file: URL (the package's samples are
 * `new URL('../c-samples/sockex1_kern.o', import.meta.resolve('bpf-load'))`).
 */
export function openObject(path: string | URL, options: LoadOptions = {}): BpfObject {
  const file = typeof path === 'string' ? path : fileURLToPath(path);
  return new BpfObject(loadObject(parseObject(readUserFile(file), { name: file }), options));
}
