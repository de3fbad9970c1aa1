import { unlinkSync } from 'node:fs';
import { availableParallelism, endianness } from 'node:os';
import { BpfLoadError, withContext } from '../base/errors.js';
import type { MapTypeName } from '../base/uapi.js';
import type { Btf } from '../btf/index.js';
import { sanitizeExternsForKernel } from '../btf/sanitize.js';
import { selectPrograms, type BpfObjectSpec, type ProgramSelection, type ProgramSpec } from '../object/index.js';
import { mapUpdateElem, type Fd } from '../sys/index.js';
import { loadObjectBtf } from './btf.js';
import { LoadError, withLoadContext } from './errors.js';
import { resolveExterns, type ExternResolution } from './externs.js';
import { runningKernelBtf } from './kernel-btf.js';
import { readKallsyms, readKernelConfig, runningKernelVersion } from './kernel-facts.js';
import type { MapHandle } from './map-handle.js';
import { createKconfigMap, createMaps, fillIpRoute2InnerSlots, type MapLoadOptions } from './maps.js';
import { loadPrepared, loadPreparedAsync, prepareProgram, type KernelProgram, type LoadedProgram, type PreparedProgram } from './program.js';
import { unknownGlobals, variableNotFound, VariableHandle } from './variables.js';

export interface LoadOptions extends MapLoadOptions {
  /** Verifier log level used when a program is rejected: 1 (default) or 2 (every instruction's state). */
  logLevel?: 1 | 2;
  /** kern_version sent with programs when the object has no `version` section (default: the running kernel's). */
  kernVersion?: number;
  /**
   * Load only these programs (by name or section name), the subprograms they call and the maps they use (CLI
   * `--program`). Default: every program.
   */
  programs?: readonly string[];
  /** What to do when a program cannot be loaded: 'throw' (default, as bpf_load.c) or 'skip' it and go on. */
  onProgramError?: 'throw' | 'skip';
  /** Non-fatal notes: programs skipped, tail-call slots without a prog array, BTF the kernel refused, … */
  onWarning?: (message: string) => void;
  /** The kernel's BTF, for programs that attach to a kernel function by BTF id (default: /sys/kernel/btf/vmlinux). */
  kernelBtf?: () => Btf;
  /** Text of /proc/kallsyms, for untyped ksyms (default: read when an object needs it). */
  kallsyms?: () => string;
  /** Text of the kernel's .config for .kconfig externs (default: /proc/config.gz, else /boot/config-<release>). */
  kernelConfig?: () => string | undefined;
}


export interface SkippedProgram {
  readonly spec: ProgramSpec;
  readonly reason: string;
  readonly error?: BpfLoadError;
}

/**
 * Everything a load created. Close it (or `using` it) to release every program and map fd. Attachments belong to
 * whoever made them (BpfObject tracks its own): this layer knows nothing of them.
 */
export class LoadedObject implements Disposable {
  readonly spec: BpfObjectSpec;
  readonly maps: readonly MapHandle[];
  readonly programs: readonly LoadedProgram[];
  readonly skipped: readonly SkippedProgram[];
  readonly #programs: readonly KernelProgram[];
  private closed = false;

  constructor(spec: BpfObjectSpec, maps: MapHandle[], programs: KernelProgram[], skipped: SkippedProgram[]) {
    this.spec = spec;
    this.maps = maps;
    this.programs = programs;
    this.#programs = programs;
    this.skipped = skipped;
  }

  map(name: string): MapHandle {
    const m = this.maps.find((x) => x.name === name);
    if (m === undefined) throw new LoadError(withContext([this.spec.file], `no map named ${name} (maps: ${this.maps.map((x) => x.name).join(', ') || 'none'})`));
    return m;
  }

  /** A global variable (.data, .bss; .rodata read-only), typed through BTF when the object has it. */
  variable(name: string): VariableHandle {
    const v = this.spec.variables.find((x) => x.name === name);
    if (v === undefined) throw variableNotFound(this.spec, name);
    return new VariableHandle(v, this.map(v.section));
  }

  program(name: string): LoadedProgram {
    const p = this.programs.find((x) => x.name === name || x.section === name);
    if (p === undefined) throw new LoadError(withContext([this.spec.file], `no loaded program named ${name} (programs: ${this.programs.map((x) => x.name).join(', ') || 'none'})`));
    return p;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes every program and map fd, trying all of them; then throws the first failure. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    for (const p of this.#programs) attempt(() => p.close());
    for (const m of this.maps) attempt(() => m.close());
    if (errors.length > 0) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Spec → kernel objects: maps created in index order (inner maps before the maps that hold them), fds written into a
 * copy of each program's instructions, programs loaded (with the verifier log fetched only on failure), tail-call
 * slots stored in the prog array. Any failure closes everything created so far before throwing.
 */
export function loadObject(spec: BpfObjectSpec, options: LoadOptions = {}): LoadedObject {
  const run = startLoad(spec, options);
  try {
    for (const program of programsToLoad(run)) {
      try {
        run.programs.push(loadPrepared(spec, prepare(run, program), options.logLevel ?? 1));
      } catch (e) {
        skipOrThrow(run, program, e);
      }
    }
    return finishLoad(run);
  } catch (e) {
    abortLoad(run);
    throw e;
  } finally {
    // Maps and programs hold their own references to the BTF object.
    run.btfFd?.closeQuietly();
  }
}

/**
 * loadObject with up to one program per CPU in the kernel's verifier at once (BPF_PROG_LOAD on the libuv pool),
 * while this thread relocates the next: the same result (programs, skips, warnings and errors in the same order),
 * sooner for objects with many large programs. A failure waits for the loads in flight and closes what they made.
 */
export async function loadObjectAsync(spec: BpfObjectSpec, options: LoadOptions = {}): Promise<LoadedObject> {
  const run = startLoad(spec, options);
  const inFlight: Array<{ program: ProgramSpec; result: Promise<KernelProgram> }> = [];
  // Settled in program order, so skips, warnings and the error thrown are those loadObject gives.
  const settleOldest = async () => {
    const { program, result } = inFlight.shift()!;
    try {
      run.programs.push(await result);
    } catch (e) {
      skipOrThrow(run, program, e);
    }
  };
  try {
    for (const program of programsToLoad(run)) {
      let result: Promise<KernelProgram>;
      try {
        result = loadPreparedAsync(spec, prepare(run, program), options.logLevel ?? 1);
      } catch (e) {
        result = Promise.reject(e);
      }
      // Handled by settleOldest, in order; this only keeps Node from calling it unhandled meanwhile.
      result.catch(() => {});
      inFlight.push({ program, result });
      if (inFlight.length >= PARALLEL_LOADS) await settleOldest();
    }
    while (inFlight.length > 0) await settleOldest();
    return finishLoad(run);
  } catch (e) {
    for (const { result } of inFlight.splice(0)) {
      try {
        (await result).close();
      } catch {
        // Already failing: the original error is the one to report.
      }
    }
    abortLoad(run);
    throw e;
  } finally {
    run.btfFd?.closeQuietly();
  }
}

/** Programs in the verifier at once: one per CPU, and no more than libuv's default pool of four threads. */
const PARALLEL_LOADS = Math.max(1, Math.min(4, availableParallelism()));

/** One load in progress: what it created so far (closed again if it fails) and what every step needs. */
interface LoadRun {
  readonly spec: BpfObjectSpec;
  readonly options: LoadOptions;
  readonly maps: MapHandle[];
  readonly programs: KernelProgram[];
  readonly skipped: SkippedProgram[];
  /** Pins this load made (by-name maps not pinned before): a failed load removes them again, as libbpf does. */
  readonly pinsMade: string[];
  readonly warn: (message: string) => void;
  readonly externs: ExternResolution;
  readonly btfFd: Fd | undefined;
  readonly selection: ProgramSelection | undefined;
  readonly kernVersion: number;
}

/** Checks, externs, the object's BTF and every map: all that comes before the programs. */
function startLoad(spec: BpfObjectSpec, options: LoadOptions): LoadRun {
  const hostLittle = endianness() === 'LE';
  if (spec.littleEndian !== hostLittle) {
    throw new LoadError(withContext([spec.file],
      `object is ${spec.littleEndian ? 'little' : 'big'}-endian (bpf${spec.littleEndian ? 'el' : 'eb'}) but this machine runs ${hostLittle ? 'little' : 'big'}-endian BPF; rebuild it with -target bpf`));
  }
  const warn = options.onWarning ?? (() => {});
  const unknown = unknownGlobals(spec, options.globals ?? {});
  if (unknown.length > 0) throw new LoadError(withContext([spec.file], `globals: no variable named ${unknown.join(', ')} (variables: ${spec.variables.map((v) => v.name).join(', ') || 'none'})`));
  const structOps = spec.sections.filter((x) => x.role === 'struct_ops').map((x) => x.name);
  if (structOps.length > 0) warn(`${structOps.join(', ')}: struct_ops maps are not supported yet; not created`);
  const externs = resolveExterns(spec, {
    kernelBtf: options.kernelBtf ?? runningKernelBtf,
    kallsyms: options.kallsyms ?? readKallsyms,
    kconfig: options.kernelConfig ?? readKernelConfig,
    kernelVersion: runningKernelVersion(),
  });
  // The kernel refuses extern linkage in BTF: it gets the sanitized copy; maps and variables keep the object's.
  const btfFd = loadObjectBtf(spec.btf === undefined ? spec
    : { ...spec, btf: sanitizeExternsForKernel(spec.btf, externs.kconfig?.offsets, externs.kconfig?.contents.byteLength) }, warn);
  const run: LoadRun = {
    spec, options, maps: [], programs: [], skipped: [], pinsMade: [], warn, externs, btfFd, selection: undefined,
    kernVersion: spec.kernVersion ?? options.kernVersion ?? runningKernelVersion(),
  };
  try {
    const selection = options.programs === undefined ? undefined : selectForLoad(spec, options.programs);
    createMaps(spec, options, run.maps, btfFd?.value, warn, selection?.maps, run.pinsMade);
    createKconfigMap(spec, externs, run.maps, btfFd?.value, warn);
    fillIpRoute2InnerSlots(spec, run.maps);
    return { ...run, selection };
  } catch (e) {
    abortLoad(run);
    btfFd?.closeQuietly();
    throw e;
  }
}

/** The programs selected for loading; those whose section names no type are skipped here, with a warning. */
function programsToLoad(run: LoadRun): ProgramSpec[] {
  const out: ProgramSpec[] = [];
  for (const program of run.spec.programs) {
    if (run.selection !== undefined && !run.selection.programs.has(program)) continue;
    if (program.type === 'unspecified') {
      const reason = `section ${program.section} names no known program type (give one: CLI --type, library programTypes)`;
      run.skipped.push({ spec: program, reason });
      run.warn(`skipping ${program.name}: ${reason}`);
      continue;
    }
    out.push(program);
  }
  return out;
}

function prepare(run: LoadRun, program: ProgramSpec): PreparedProgram {
  return prepareProgram(run.spec, program, run.maps, run.kernVersion, run.btfFd?.value, run.options.kernelBtf ?? runningKernelBtf, run.externs);
}

/** A program that failed: skipped under onProgramError 'skip' (when the failure is ours to name), else thrown. */
function skipOrThrow(run: LoadRun, program: ProgramSpec, e: unknown): void {
  if (run.options.onProgramError !== 'skip' || !(e instanceof BpfLoadError)) throw e;
  run.skipped.push({ spec: program, reason: e.message, error: e });
  run.warn(`skipping ${program.name}: ${e.message}`);
}

function finishLoad(run: LoadRun): LoadedObject {
  fillTailCalls(run.spec, run.maps, run.programs, run.warn);
  fillInitialSlots(run.spec, run.maps, run.programs, run.skipped, run.selection, run.warn);
  return new LoadedObject(run.spec, run.maps, run.programs, run.skipped);
}

/** Closes every program and map the load created and removes the pins it made. */
function abortLoad(run: LoadRun): void {
  for (const created of [...run.programs, ...run.maps]) {
    try {
      created.close();
    } catch {
      // Already failing: the original error is the one to report.
    }
  }
  for (const path of run.pinsMade) {
    try {
      unlinkSync(path);
    } catch {
      // Removed by someone else already; the original error is the one to report.
    }
  }
}

/**
 * bpf_load.c: a program from a `<prefix>/<N>` section goes into the prog array at key N. It used the last prog array
 * it created; so do we, and say so when there are several.
 */
function fillTailCalls(spec: BpfObjectSpec, maps: readonly MapHandle[], programs: readonly LoadedProgram[], warn: (m: string) => void): void {
  // iproute2 `ID/KEY` sections name their prog array by its bpf_elf_map id.
  for (const p of programs) {
    const id = p.spec.tailCallMapId;
    if (id === undefined) continue;
    const target = maps.find((m) => m.spec.iproute2?.id === id);
    if (target === undefined) {
      warn(`${p.section}: tail-call section for the map with id ${id}, but no map has that id; ${p.name} is loaded, not stored`);
      continue;
    }
    try {
      mapUpdateElem(target.fd, u32(p.spec.tailCallSlot!), u32(p.fd));
    } catch (e) {
      throw withLoadContext(e, [spec.file, `program ${p.name}`, `tail-call slot ${p.spec.tailCallSlot} of ${target.name} (id ${id})`]);
    }
  }
  const slotted = programs.filter((p) => p.spec.tailCallSlot !== undefined && p.spec.tailCallMapId === undefined);
  if (slotted.length === 0) return;
  const arrays = maps.filter((m) => m.type === ('prog_array' satisfies MapTypeName));
  const target = arrays.at(-1);
  if (target === undefined) {
    warn(`${slotted.map((p) => p.section).join(', ')}: tail-call slot sections but no prog array map to put them in`);
    return;
  }
  if (arrays.length > 1) warn(`several prog arrays; tail-call slots go into the last one, ${target.name} (as bpf_load.c did)`);
  for (const p of slotted) {
    try {
      mapUpdateElem(target.fd, u32(p.spec.tailCallSlot!), u32(p.fd));
    } catch (e) {
      throw withLoadContext(e, [spec.file, `program ${p.name}`, `tail-call slot ${p.spec.tailCallSlot} of ${target.name}`]);
    }
  }
}

/** Static initial contents of BTF prog arrays and map-of-maps (`__array(values, …) = { [1] = &prog }`). */
function fillInitialSlots(
  spec: BpfObjectSpec, maps: readonly MapHandle[], programs: readonly LoadedProgram[], skipped: readonly SkippedProgram[],
  selection: ProgramSelection | undefined, warn: (m: string) => void,
): void {
  for (const m of maps) {
    for (const slot of m.spec.initialSlots ?? []) {
      const where = [spec.file, `map ${m.name}`, `values[${slot.key}] = ${slot.target}`];
      const fd = m.type === 'prog_array'
        ? programs.find((p) => p.name === slot.target)?.fd
        : maps.find((x) => x.name === slot.target)?.fd;
      // A program left out on request, or refused under onProgramError 'skip', leaves its slot empty.
      const leftOut = m.type === 'prog_array' && (skipped.some((p) => p.spec.name === slot.target) ||
        (selection !== undefined && ![...selection.programs].some((p) => p.name === slot.target)));
      if (fd === undefined && leftOut) {
        warn(withContext(where, `${slot.target} was not loaded; the slot stays empty`));
        continue;
      }
      if (fd === undefined) throw new LoadError(withContext(where, `${slot.target} was not loaded`));
      try {
        mapUpdateElem(m.fd, u32(slot.key), u32(fd));
      } catch (e) {
        throw withLoadContext(e, where);
      }
    }
  }
}

function selectForLoad(spec: BpfObjectSpec, names: readonly string[]): ProgramSelection {
  try {
    return selectPrograms(spec, names);
  } catch (e) {
    throw withLoadContext(e, []);
  }
}

function u32(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

