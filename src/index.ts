/**
 * bpf-load's public API. The pipeline, one layer per import:
 *   bytes → readElf → parseObject (spec, no kernel) → loadObject (maps, relocation, programs) → attach → close.
 * `openObject(path)` does read + parse + load; `BpfObject` adds attach()/attachAll() and detaches on close().
 */
import { fileURLToPath } from 'node:url';
import { readUserFile } from './base/file.js';
import { ELF_HEADER_CHECK } from './elf/index.js';
import { BpfObject } from './attach/object.js';
import { loadObject, type LoadOptions } from './load/index.js';
import { parseObject, type ProgramTypes } from './object/index.js';

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
export { USER_PROGRAM_TYPES, selectPrograms, type ProgramTypes, type ProgramSelection } from './object/index.js';
export type {
  BpfObjectSpec, SectionSpec, SectionRole, MapSpec, ProgramSpec, SubprogramSpec, FunctionSpec, RelocationSpec,
  RelocationKind, VariableSpec, IpRoute2MapFields,
} from './object/spec.js';
export type { AttachKind, SectionDef, SectionMatch } from './object/index.js';
export { describeObject, type ObjectDump, type InsnDump } from './object/describe.js';
export { SysError, KernelFeatureError, SysArgumentError, UnsupportedPlatformError } from './sys/index.js';
export {
  loadObject, loadObjectAsync, LoadedObject, LoadError, MapHandle, MapHandleError, VerifierError, RelocationError, relocateProgram, pinObject,
  PinError, CoreError, VariableHandle, VariableError,
  testRunProgram, testRunProgramInto, TestRunError, returnValueName, XDP_ACTIONS, TC_ACTIONS, type XdpAction, type TcAction, EventReader, EventError, RingBufferError, PerfBufferError, openRingBuffer, openPerfBuffer, openEvents, RecordView, RecordBatch,
  type TestRunOptions, type TestRunResult, type TestRunIntoResult, type EventRecord, type LostEvent, type BufferEvent, type EventOptions, type RecordViewHandler, type RecordBatchHandler,
  type LoadOptions, type LoadedProgram, type MapFixup, type MapBytes, type SkippedProgram,
} from './load/index.js';
export {
  attachProgram, attachAll, AttachError, AttachConflictError, ATTACHABLE_KINDS,
  type AttachOptions, type AttachAllOptions, type AttachResult, type Link, type AttachableKind,
} from './attach/index.js';
export { NetlinkError } from './attach/xdp.js';
export { BpfObject, type PinnedPaths } from './attach/object.js';
export { attachUprobe, type UprobeTarget } from './attach/index.js';
export { readExecutable, functionFileOffset, type ExecutableFile } from './elf/executable.js';
export { BpfLink, openPinnedLink } from './attach/link.js';
export { Fd } from './sys/index.js';
export { readTracePipe } from './attach/tracefs.js';
export { generateTypes, generateSkeleton, GenerateError, type GenerateOptions, type GeneratedSkeleton } from './gen/generate.js';
export {
  Skeleton, TypedMap, PerCpuMap, TypedVariable, SkeletonError, loadSkeletonObject, loadedFields, openSkeleton, encodeGlobals, enumValue,
  checkArray, checkBigInt, checkInt, checkNumber, getBits, getBitsBig, getBytes, getCString, getInt128, setBits, setBitsBig, setBytes,
  setCString, setInt128,
  type Codec, type ReadonlyVariable, type SkeletonSource,
} from './gen/runtime.js';
export {
  RingBuffer, PerfBuffer, TypedEventReader, type TypedRecord, type RingRecord, type PerfEvent, type TypedEventOptions,
} from './gen/runtime-events.js';
export {
  SkeletonProgram, type Program, type Attachable, type UprobeAttachable, type TestRunnable, type XdpRunResult, type TcRunResult,
  type SocketAttachOptions, type XdpAttachOptions, type TcAttachOptions, type CgroupAttachOptions, type PerfEventAttachOptions,
  type TracefsAttachOptions, type NoAttachOptions,
} from './gen/runtime-programs.js';
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
  type ClassicTranslationFacts,
} from './cbpf/index.js';
export {
  CaptureError, type CapturedPacket, CaptureCursor, type CaptureSource, readCapture, readCaptureHeader, writePcap,
  PcapStreamWriter, type PcapWriteOptions, summarizePacket, type PacketSummary,
} from './pcap/index.js';
export { pcapCompile, PcapError, LinkType, type PcapCompileOptions } from './sys/index.js';
export { attachClassicFilter, PacketSocket, type ClassicAttachOptions, type SocketPacket } from './attach/index.js';
export { KernelClassicMatcher, loadClassicFilter, type ClassicLoadOptions } from './load/index.js';

/** openObject's options: loading's, plus the program types section names do not give (`--type`). */
export interface OpenOptions extends LoadOptions {
  programTypes?: ProgramTypes;
}

/**
 * Reads, parses and loads an object file: a path, or a file: URL (the package's samples are
 * `new URL('../c-samples/sockex1_kern.o', import.meta.resolve('bpf-load'))`).
 */
export function openObject(path: string | URL, options: OpenOptions = {}): BpfObject {
  const file = typeof path === 'string' ? path : fileURLToPath(path);
  const { programTypes, ...load } = options;
  return new BpfObject(loadObject(parseObject(readUserFile(file, { head: ELF_HEADER_CHECK }), { name: file, programTypes }), load));
}
