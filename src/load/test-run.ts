/**
 * BPF_PROG_TEST_RUN: run a loaded program on a packet and/or context given by the caller, without traffic or events
 * (what `bpftool prog run` does). The kernel implements it for networking types (socket filters, tc, XDP, cgroup
 * skb, lwt, flow dissector, sk_lookup), raw tracepoints, tracing and syscall programs; others refuse with ENOTSUPP.
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import { Errno, OutputSlab, packetTestRun, progTestRun, SysError } from '../sys/index.js';

export class TestRunError extends BpfLoadError {
  override name = 'TestRunError';
}

export interface TestRunOptions {
  /** Packet bytes (data_in): an Ethernet frame for XDP/tc/socket programs. */
  readonly data?: Uint8Array;
  /** Context (ctx_in): e.g. a struct __sk_buff or xdp_md, or the raw tracepoint arguments. */
  readonly ctx?: Uint8Array;
  /** Runs in a row (the kernel reports the mean duration); default 1. */
  readonly repeat?: number;
  /** Room for the context the program leaves (default: the size of `ctx`). */
  readonly ctxOutSize?: number;
  /** BPF_F_TEST_* flags. */
  readonly flags?: number;
  /** With BPF_F_TEST_RUN_ON_CPU: the CPU to run on. */
  readonly cpu?: number;
}

export interface TestRunResult {
  /** The program's return value (XDP action, socket filter length, …) as the kernel's u32. */
  readonly retval: number;
  /** The packet after the run (programs may rewrite, grow or shrink it); empty without `data`. */
  readonly data: Buffer;
  /** The context after the run, when one was given. */
  readonly ctx: Buffer | undefined;
  /** Mean nanoseconds per run, measured by the kernel. */
  readonly durationNs: number;
}

/** XDP's return values by name (enum xdp_action), indexed by value. */
export const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'] as const;
export type XdpAction = (typeof XDP_ACTIONS)[number];

/** tc's return values by name (TC_ACT_* of linux/pkt_cls.h), indexed by value; TC_ACT_UNSPEC (-1) comes back as the u32 0xffffffff. */
export const TC_ACTIONS = [
  'TC_ACT_OK', 'TC_ACT_RECLASSIFY', 'TC_ACT_SHOT', 'TC_ACT_PIPE', 'TC_ACT_STOLEN', 'TC_ACT_QUEUED', 'TC_ACT_REPEAT',
  'TC_ACT_REDIRECT', 'TC_ACT_TRAP',
] as const;
export type TcAction = (typeof TC_ACTIONS)[number] | 'TC_ACT_UNSPEC';

/** The name the kernel's headers give a program's return value (XDP and tc actions); undefined for other types or values. */
export function returnValueName(programType: string, retval: number): XdpAction | TcAction | undefined {
  if (programType === 'xdp') return XDP_ACTIONS[retval];
  if (programType === 'sched_cls' || programType === 'sched_act') return retval === 0xffff_ffff ? 'TC_ACT_UNSPEC' : TC_ACTIONS[retval];
  return undefined;
}

/** Headroom for programs that grow the packet (bpf_xdp_adjust_head/tail); a larger result is retried at its size. */
const GROWTH = 512;
const MAX_REPEAT = 0xffff_ffff;

/** What testRunInto() reports; `dataSize` bytes of the caller's buffer hold the packet after the run. */
export interface TestRunIntoResult {
  readonly retval: number;
  readonly dataSize: number;
  readonly durationNs: number;
}

type TestRunTarget = { readonly fd: number; readonly name: string; readonly type: string };

/**
 * Where the kernel writes the packet after a run that returns it as a Buffer: straight into a piece of a slab, which
 * becomes the returned Buffer (no copy, no koffi.address() of a fresh buffer: each costs more than koffi's call).
 * The context, rarer, goes to a reused scratch buffer and is copied out at the size the kernel reports.
 */
const packetSlab = new OutputSlab();
let dataOutScratch = Buffer.alloc(GROWTH + 64);
let ctxOutScratch = Buffer.alloc(256);

/** A copy of the first `size` bytes of `scratch`, at most `offered` (the kernel reports what it wanted to write). */
function copyOut(scratch: Buffer, size: number, offered: number): Buffer {
  return Buffer.from(scratch.subarray(0, Math.min(size, offered))); // measured faster than allocUnsafe + copy
}

/** Runs `program` once (or `repeat` times) on the given input. */
export function testRunProgram(program: TestRunTarget, options: TestRunOptions = {}): TestRunResult {
  const { data } = options;
  // A packet and nothing else, the common case and the per-call hot path, in a function of its own: kept small, this
  // one inlines into the caller, and so does the options object.
  if (data !== undefined && options.ctx === undefined && options.ctxOutSize === undefined && options.flags === undefined && options.cpu === undefined) {
    return testRunPacket(program, data, checkedRepeat(program, options.repeat));
  }
  return testRunGeneral(program, options, checkedRepeat(program, options.repeat), data === undefined ? 0 : data.length + GROWTH);
}

/**
 * The prepared packet run (its attr keeps the context fields zero), the packet after the run written straight into
 * a slab piece that becomes the returned Buffer.
 */
function testRunPacket(program: TestRunTarget, data: Uint8Array, repeat: number): TestRunResult {
  const outSize = data.length + GROWTH;
  const run = packetTestRun;
  const ret = run.run(program.fd, data, packetSlab.reserve(outSize), outSize, repeat);
  if (ret === 0) return { retval: run.retval, data: packetSlab.take(run.dataSizeOut), ctx: undefined, durationNs: run.durationNs };
  if (ret !== -Errno.ENOSPC) throw failure(program, { data }, runError(program, -ret));
  // The packet grew beyond the headroom: the general path, with room for it.
  return testRunGeneral(program, { data, repeat }, repeat, Math.max(outSize * 2, run.dataSizeOut));
}

/**
 * Runs `program` on the packet `data` with the packet after the run written into `out` (nothing allocated: the
 * like-for-like of libbpf's bpf_prog_test_run_opts with data_out). The result object says how many bytes of `out`
 * hold it. An `out` too small for the packet after the run is a TestRunError giving both sizes (the program has run).
 */
export function testRunProgramInto(program: TestRunTarget, data: Uint8Array, out: Uint8Array, options: { readonly repeat?: number } = {}): TestRunIntoResult {
  const repeat = checkedRepeat(program, options.repeat);
  const run = packetTestRun;
  const ret = run.runInto(program.fd, data, out, repeat);
  if (ret !== 0 && ret !== -Errno.ENOSPC) throw failure(program, { data }, runError(program, -ret));
  const dataSize = run.dataSizeOut;
  if (dataSize > out.length) {
    throw new TestRunError(withContext(where(program), `the packet after the run is ${dataSize} bytes, the output buffer holds ${out.length}`));
  }
  return { retval: run.retval, dataSize, durationNs: run.durationNs };
}

function checkedRepeat(program: TestRunTarget, repeat = 1): number {
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) throw new TestRunError(withContext(where(program), `repeat must be a whole number from 1 to ${MAX_REPEAT}, not ${repeat}`));
  return repeat;
}

function runError(program: TestRunTarget, errno: number): SysError {
  return new SysError({ syscall: 'bpf', command: 'BPF_PROG_TEST_RUN', errno, detail: `prog fd ${program.fd}` });
}

/** Every input and output (context, flags, CPU): one full attr per call, the packet copied out of a scratch buffer. */
function testRunGeneral(program: TestRunTarget, options: TestRunOptions, repeat: number, initialOutSize: number): TestRunResult {
  const { data, ctx } = options;
  let outSize = initialOutSize;
  const ctxOutSize = options.ctxOutSize ?? ctx?.length ?? 0;
  if (ctxOutScratch.length < ctxOutSize) ctxOutScratch = Buffer.alloc(ctxOutSize);
  const progFd = program.fd;
  for (;;) {
    if (dataOutScratch.length < outSize) dataOutScratch = Buffer.alloc(outSize);
    // The scratch buffers themselves (their cached addresses), offering exactly outSize / ctxOutSize bytes: the
    // kernel's ENOSPC tells when the packet grew beyond that.
    const dataOut = outSize === 0 ? undefined : dataOutScratch;
    const ctxOut = ctxOutSize === 0 ? undefined : ctxOutScratch;
    try {
      const r = progTestRun({
        progFd, repeat, dataIn: data, dataOut, dataOutSize: outSize, ctxIn: ctx, ctxOut, ctxOutSize, flags: options.flags, cpu: options.cpu,
      });
      return {
        retval: r.retval,
        data: dataOut === undefined ? Buffer.alloc(0) : copyOut(dataOut, r.dataSizeOut, outSize),
        ctx: ctxOut === undefined ? undefined : copyOut(ctxOut, r.ctxSizeOut, ctxOutSize),
        durationNs: r.durationNs,
      };
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      if (e.errno === Errno.ENOSPC && dataOut !== undefined && outSize < 1 << 24) {
        outSize *= 2; // the kernel wrote what fit; ask again with room for the whole packet
        continue;
      }
      throw failure(program, options, e);
    }
  }
}

/** The TestRunError for a failed run: an unsupported type, input the kernel refused, or the system call's error. */
function failure(program: TestRunTarget, options: TestRunOptions, e: SysError): TestRunError {
  if (e.errno === Errno.ENOTSUPP || e.errno === Errno.EOPNOTSUPP) {
    return new TestRunError(withContext(where(program), `the kernel cannot test-run ${program.type} programs (BPF_PROG_TEST_RUN: ${e.code})`), { cause: e });
  }
  if (e.errno === Errno.EINVAL) {
    return new TestRunError(withContext(where(program), `the kernel refused the input (${describeInput(options)}): ${e.message}`), { cause: e });
  }
  return new TestRunError(withContext(where(program), e.message), { cause: e });
}

function where(program: { readonly name: string; readonly type: string }): string[] {
  return [`program ${program.name} (${program.type})`, 'test run'];
}

function describeInput(options: TestRunOptions): string {
  const parts = [`data ${options.data?.byteLength ?? 0} B`, `ctx ${options.ctx?.byteLength ?? 0} B`];
  return parts.join(', ');
}
