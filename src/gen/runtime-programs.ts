/**
 * Typed program handles of generated skeletons. One class does the work; the generated module declares each program
 * as the intersection of what its kind allows — `Attachable<XdpAttachOptions>` for an XDP program,
 * `TestRunnable<XdpRunResult>` where the kernel can test-run the type — so a call the kind does not have, or an
 * option it does not read, fails to compile.
 */
import type { AttachOptions, Link } from '../attach/index.js';
import type { BpfObject } from '../attach/object.js';
import type { UprobeTarget } from '../attach/uprobe.js';
import {
  returnValueName, type LoadedProgram, type TcAction, type TestRunOptions, type TestRunResult, type XdpAction,
} from '../load/index.js';

/** Every program of a skeleton: its name and the loaded program (fd, id, tag, instructions). */
export interface Program {
  readonly name: string;
  readonly handle: LoadedProgram;
}

/** A program attached where its section says, with the options its kind reads; closing the skeleton detaches it. */
export interface Attachable<O> {
  attach(options?: O): Link;
}

/** A kprobe-type program, attachable as a uprobe on any executable (binary + symbol or offset, pid). */
export interface UprobeAttachable {
  attachUprobe(target: UprobeTarget, options?: TracefsAttachOptions): Link;
}

/** A program the kernel can run with BPF_PROG_TEST_RUN. */
export interface TestRunnable<R extends TestRunResult> {
  testRun(options?: TestRunOptions): R;
}

export type SocketAttachOptions = Pick<AttachOptions, 'iface'>;
export type XdpAttachOptions = Pick<AttachOptions, 'iface' | 'xdpMode' | 'force'>;
export type TcAttachOptions = Pick<AttachOptions, 'iface' | 'tcMode'>;
export type CgroupAttachOptions = Pick<AttachOptions, 'cgroup'>;
export type PerfEventAttachOptions = Pick<AttachOptions, 'sampleFreq'>;
export type TracefsAttachOptions = Pick<AttachOptions, 'tracefs'>;
/** Kinds whose target is all in the section name (raw tracepoints, fentry/fexit, LSM hooks, sockmap parsers). */
export type NoAttachOptions = Readonly<Record<string, never>>;

/** An XDP test run: the return value by name (XDP_PASS …), or the number when it has none. */
export interface XdpRunResult extends TestRunResult {
  readonly action: XdpAction | number;
}
/** A tc test run: the return value by name (TC_ACT_OK …), or the number when it has none. */
export interface TcRunResult extends TestRunResult {
  readonly action: TcAction | number;
}

/** A program of a loaded skeleton, by name; the generated type says which of its methods the kind allows. */
export class SkeletonProgram<R extends TestRunResult = TestRunResult>
implements Program, Attachable<AttachOptions>, UprobeAttachable, TestRunnable<R> {
  readonly name: string;
  readonly #bpf: BpfObject;

  constructor(bpf: BpfObject, name: string) {
    this.#bpf = bpf;
    this.name = name;
  }

  /** Looked up on use: open({ programs }) may have loaded only some of the object's programs. */
  get handle(): LoadedProgram {
    return this.#bpf.program(this.name);
  }

  attach(options: AttachOptions = {}): Link {
    return this.#bpf.attach(this.name, options);
  }

  attachUprobe(target: UprobeTarget, options: TracefsAttachOptions = {}): Link {
    return this.#bpf.attachUprobe(this.name, target, options);
  }

  /** Runs the program once (or `repeat` times); XDP and tc results name their action. */
  testRun(options: TestRunOptions = {}): R {
    const program = this.handle;
    const result = program.testRun(options);
    const action = returnValueName(program.type, result.retval);
    if (program.type !== 'xdp' && program.type !== 'sched_cls' && program.type !== 'sched_act') return result as R;
    // The generated type promised R = XdpRunResult / TcRunResult for exactly these program types.
    return { ...result, action: action ?? result.retval } as TestRunResult as R;
  }
}
