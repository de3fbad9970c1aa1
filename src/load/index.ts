export { loadObject, loadObjectAsync, LoadedObject, type LoadOptions, type SkippedProgram } from './loader.js';
export { type MapFixup, type MapLoadOptions } from './maps.js';
export { type LoadedProgram } from './program.js';
export { kernelObjectName, runningKernelVersion } from './kernel-facts.js';
export { MapHandle, MapHandleError, encode, decodeUnsigned, type MapBytes } from './map-handle.js';
export { relocateProgram, RelocationError, type RelocatedProgram, type RelocationTargets } from './relocate.js';
export { LoadError, VerifierError } from './errors.js';
export { attachBtfId, runningKernelBtf } from './kernel-btf.js';
export { ensureBpffs, PinError } from './bpffs.js';
export { pinObject, unpinAll } from './pin.js';
export { VariableHandle, VariableError } from './variables.js';
export { applyCoreRelocations, CoreError, type CoreResult } from './core.js';
export {
  testRunProgram, testRunProgramInto, TestRunError, returnValueName, XDP_ACTIONS, TC_ACTIONS, type TestRunOptions, type TestRunResult, type TestRunIntoResult, type XdpAction,
  type TcAction,
} from './test-run.js';
export {
  EventReader, EventError, openRingBuffer, openPerfBuffer, openEvents, isEventMap,
  type EventRecord, type LostEvent, type BufferEvent, type EventOptions, type RecordViewHandler, type RecordBatchHandler,
} from './events.js';
export { RingBufferConsumer, RingBufferError, ringBufferSize, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HEADER_SIZE, type RingBufferMemory } from './ringbuf.js';
export { PerfRing, PerfBufferError, PerfRecordType, PERF_RING_SPARE } from './perfbuf.js';
export { RecordView, RecordBatch, NEVER_STOPPED, type StopFlag } from './record-view.js';
export {
  listPrograms, listMaps, listLinks, dumpProgram, disassembleXlated, helperCallName, openMap, InspectError,
  type KernelProgram, type KernelLink, type KernelObjectRef, type ProgramDump, type XlatedInsn, type XlatedContext,
} from './inspect.js';
export { loadClassicFilter, KernelClassicMatcher, type ClassicLoadOptions } from './classic.js';
