export { loadObject, LoadedObject, kernelObjectName, runningKernelVersion, type LoadOptions, type LoadedProgram, type MapFixup, type SkippedProgram } from './loader.js';
export { MapHandle, MapHandleError, encode, decodeUnsigned, type MapBytes } from './map-handle.js';
export { relocateProgram, RelocationError, type RelocatedProgram, type RelocationTargets } from './relocate.js';
export { LoadError, VerifierError } from './errors.js';
export { attachBtfId, runningKernelBtf } from './kernel-btf.js';
export { ensureBpffs, pinObject, PinError } from './pin.js';
export { VariableHandle, VariableError } from './variables.js';
export { applyCoreRelocations, CoreError, type CoreResult } from './core.js';
export { loadClassicFilter, KernelClassicMatcher, type ClassicLoadOptions } from './classic.js';
