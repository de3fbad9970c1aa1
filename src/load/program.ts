/** Program load: relocation, CO-RE, BPF_PROG_LOAD, and the verifier log fetched only on failure. */
import { withContext } from '../base/errors.js';
import { attachTypeValue, progTypeValue } from '../base/uapi.js';
import { FUNC_INFO_SIZE, LINE_INFO_SIZE, type Btf } from '../btf/index.js';
import type { BpfObjectSpec, ProgramSpec } from '../object/index.js';
import { Errno, Fd, progInfo, progLoad, progLoadAsync, SysError, type ProgInfo, type ProgLoadAttr } from '../sys/index.js';
import { coreRelocationCount, programBtfInfo } from './btf.js';
import { applyCoreRelocations, CORE_POISON_HELPER, type CoreResult } from './core.js';
import { LoadError, VerifierError, withLoadContext } from './errors.js';
import type { ExternResolution } from './externs.js';
import { attachBtfId } from './kernel-btf.js';
import { kernelObjectName } from './kernel-facts.js';
import { MapHandle } from './map-handle.js';
import { RelocationError, relocateProgram, type RelocatedProgram } from './relocate.js';
import { testRunProgram, testRunProgramInto, type TestRunIntoResult, type TestRunOptions, type TestRunResult } from './test-run.js';

export interface LoadedProgram {
  readonly spec: ProgramSpec;
  readonly name: string;
  readonly section: string;
  readonly type: string;
  readonly fd: number;
  readonly id: number;
  readonly tag: string;
  readonly info: ProgInfo;
  /** The instructions the kernel received (after relocation). */
  readonly insns: Uint8Array;
  /** BPF_PROG_TEST_RUN: runs the program on a packet/context of the caller's (see test-run.ts). */
  testRun(options?: TestRunOptions): TestRunResult;
  /** The same on a packet, the packet after the run written into `out` instead of a new Buffer (for loops). */
  testRunInto(data: Uint8Array, out: Uint8Array, options?: { readonly repeat?: number }): TestRunIntoResult;
}

/**
 * A loaded program. Its id, tag and info are asked of the kernel on first use (libbpf does not ask at load time
 * either): read them while the object is open.
 */
export class KernelProgram implements LoadedProgram {
  readonly spec: ProgramSpec;
  readonly name: string;
  readonly section: string;
  readonly type: string;
  readonly #fd: Fd;
  readonly insns: Uint8Array;
  #info: ProgInfo | undefined;

  constructor(spec: ProgramSpec, fd: Fd, insns: Uint8Array) {
    this.spec = spec;
    this.name = spec.name;
    this.section = spec.section;
    this.type = spec.type;
    this.#fd = fd;
    this.insns = insns;
  }

  get fd(): number {
    return this.#fd.value;
  }

  /** Closes the program's fd (LoadedObject.close does this for every program). */
  close(): void {
    this.#fd.close();
  }

  get info(): ProgInfo {
    return (this.#info ??= progInfo(this.fd));
  }
  get id(): number {
    return this.info.id;
  }
  testRun(options: TestRunOptions = {}): TestRunResult {
    return testRunProgram(this, options);
  }
  testRunInto(data: Uint8Array, out: Uint8Array, options: { readonly repeat?: number } = {}): TestRunIntoResult {
    return testRunProgramInto(this, data, out, options);
  }
  get tag(): string {
    return this.info.tag;
  }
}

/** Program types the kernel verifies against a function or type of its own BTF (attach_btf_id in vmlinux). */
const NEEDS_KERNEL_TARGET: ReadonlySet<string> = new Set(['tracing', 'lsm']);
/** Program types verified against another BPF program (freplace) or a struct_ops type: not resolved yet. */
const NEEDS_PROGRAM_TARGET: ReadonlySet<string> = new Set(['ext', 'struct_ops']);

const BPF_F_SLEEPABLE = 1 << 4;

/** A program ready for BPF_PROG_LOAD: the attr (relocated instructions included) and what a failure report needs. */
export interface PreparedProgram {
  readonly program: ProgramSpec;
  readonly attr: ProgLoadAttr;
  readonly core: CoreResult | undefined;
  readonly where: ReadonlyArray<string | undefined>;
}

/** Relocation, CO-RE and func/line info: everything before the system call, which loadPrepared(Async) makes. */
export function prepareProgram(
  spec: BpfObjectSpec, program: ProgramSpec, maps: readonly MapHandle[], kernVersion: number, btfFd: number | undefined,
  kernelBtf: () => Btf, externs: ExternResolution,
): PreparedProgram {
  const where = [spec.file, `program ${program.name} (section ${program.section})`];
  const byName = new Map(maps.map((m) => [m.name, m]));
  let relocated: RelocatedProgram;
  try {
    relocated = relocateProgram(spec, program, {
      mapFd: (name) => byName.get(name)?.fd,
      dataMapFd: (section) => maps.find((m) => m.spec.source === 'data' && m.spec.section === section)?.fd,
      extern: (name) => externs.targets.get(name),
    });
  } catch (e) {
    if (e instanceof RelocationError) throw new LoadError(withContext(where, e.message), { cause: e });
    throw e;
  }
  if (NEEDS_PROGRAM_TARGET.has(program.type)) {
    throw new LoadError(withContext(where, `${program.type} programs are verified against another program or a struct_ops type (${program.section}); that is not supported yet`));
  }
  const targetBtfId = NEEDS_KERNEL_TARGET.has(program.type) ? attachBtfId(program, kernelBtf(), spec.file) : undefined;
  // CO-RE: field offsets, sizes, type ids and enum values rewritten for the running kernel's BTF.
  const core = coreRelocationCount(spec, relocated.layout) > 0
    ? applyCoreRelocations(spec, relocated.layout, relocated.insns, kernelBtf())
    : undefined;
  const btfInfo = btfFd === undefined ? undefined : programBtfInfo(spec, relocated.layout);
  const attr: ProgLoadAttr = {
    progType: progTypeValue(program.type as Exclude<ProgramSpec['type'], 'unspecified'>),
    insns: relocated.insns,
    license: spec.license,
    kernVersion,
    progName: kernelObjectName(program.name),
    ...(program.expectedAttachType === undefined ? {} : { expectedAttachType: attachTypeValue(program.expectedAttachType) }),
    ...(targetBtfId === undefined ? {} : { attachBtfId: targetBtfId }),
    ...(program.sleepable ? { progFlags: BPF_F_SLEEPABLE } : {}),
    ...(btfInfo === undefined ? {} : {
      progBtfFd: btfFd!, funcInfoRecSize: FUNC_INFO_SIZE, funcInfo: btfInfo.funcInfo, lineInfoRecSize: LINE_INFO_SIZE, lineInfo: btfInfo.lineInfo,
    }),
  };
  return { program, attr, core, where };
}

export function loadProgram(
  spec: BpfObjectSpec, program: ProgramSpec, maps: readonly MapHandle[], kernVersion: number, logLevel: 1 | 2, btfFd: number | undefined,
  kernelBtf: () => Btf, externs: ExternResolution,
): KernelProgram {
  return loadPrepared(spec, prepareProgram(spec, program, maps, kernVersion, btfFd, kernelBtf, externs), logLevel);
}

/** BPF_PROG_LOAD on this thread; a refusal is loaded again with a log to say why. */
export function loadPrepared(spec: BpfObjectSpec, prepared: PreparedProgram, logLevel: 1 | 2): KernelProgram {
  const what = `program ${prepared.program.name}`;
  let fd: Fd;
  try {
    fd = new Fd(progLoad(prepared.attr), what);
  } catch (first) {
    if (!(first instanceof SysError)) throw first;
    fd = loadWithLog(spec, prepared, logLevel);
  }
  return new KernelProgram(prepared.program, fd, prepared.attr.insns);
}

/**
 * BPF_PROG_LOAD on the libuv pool, so that several programs are in the verifier at once (the loader keeps up to one
 * per CPU in flight). A refusal is loaded again on this thread, with a log: the pool thread's errno is not ours.
 */
export async function loadPreparedAsync(spec: BpfObjectSpec, prepared: PreparedProgram, logLevel: 1 | 2): Promise<KernelProgram> {
  const ret = await progLoadAsync(prepared.attr);
  const fd = ret >= 0 ? new Fd(ret, `program ${prepared.program.name}`) : loadWithLog(spec, prepared, logLevel);
  return new KernelProgram(prepared.program, fd, prepared.attr.insns);
}

/** Loads again with a log to learn why the kernel refused; grows the buffer while the kernel says it did not fit. */
function loadWithLog(spec: BpfObjectSpec, { program, attr, core, where }: PreparedProgram, logLevel: 1 | 2): Fd {
  const what = `program ${program.name}`;
  let size = 1 << 18;
  for (;;) {
    const logBuf = Buffer.alloc(size);
    try {
      // Passed with a log (the first failure was transient): use it.
      return new Fd(progLoad({ ...attr, logLevel, logBuf }), what);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      const log = logBuf.subarray(0, Math.max(0, logBuf.indexOf(0))).toString('utf8');
      if (e.errno === Errno.ENOSPC && size < 1 << 28) {
        size *= 4;
        continue;
      }
      if (log.trim() === '' && e.errno !== Errno.EACCES && e.errno !== Errno.EINVAL) throw withLoadContext(e, where);
      const verifierError = new VerifierError({ file: spec.file, program: program.name, section: program.section, cause: e, log, truncated: e.errno === Errno.ENOSPC });
      // A poisoned CO-RE relocation that the verifier reached: say which access the kernel lacks.
      if (core !== undefined && core.poisoned.length > 0 && log.includes(`unknown#${CORE_POISON_HELPER}`)) {
        throw new LoadError(withContext(where, core.poisoned.map((p) => p.message).join('; ')), { cause: verifierError });
      }
      throw verifierError;
    }
  }
}
