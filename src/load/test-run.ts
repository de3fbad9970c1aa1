/**
 * BPF_PROG_TEST_RUN: run a loaded program on a packet and/or context given by the caller, without traffic or events
 * (what `bpftool prog run` does). The kernel implements it for networking types (socket filters, tc, XDP, cgroup
 * skb, lwt, flow dissector, sk_lookup), raw tracepoints, tracing and syscall programs; others refuse with ENOTSUPP.
 */
import { BpfLoadError, withContext } from '../base/errors.js';
import { Errno, progTestRun, SysError } from '../sys/index.js';

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

/**
 * Where the kernel writes the packet and context after a run: reused between calls (their addresses stay in
 * writeAddress()'s cache, and nothing is allocated for the kernel), and copied out at the sizes it reports. Buffer
 * allocation and koffi.address() of a fresh buffer each cost several times koffi's own call overhead.
 */
let dataOutScratch = Buffer.alloc(GROWTH + 64);
let ctxOutScratch = Buffer.alloc(256);

/** A copy of the first `size` bytes of `scratch`, at most `offered` (the kernel reports what it wanted to write). */
function copyOut(scratch: Buffer, size: number, offered: number): Buffer {
  return Buffer.from(scratch.subarray(0, Math.min(size, offered))); // measured faster than allocUnsafe + copy
}

/** Runs `program` once (or `repeat` times) on the given input. */
export function testRunProgram(program: { readonly fd: number; readonly name: string; readonly type: string }, options: TestRunOptions = {}): TestRunResult {
  const repeat = options.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > MAX_REPEAT) throw new TestRunError(withContext(where(program), `repeat must be a whole number from 1 to ${MAX_REPEAT}, not ${repeat}`));
  const { data, ctx } = options;
  let outSize = data === undefined ? 0 : data.length + GROWTH;
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
      if (e.errno === Errno.ENOTSUPP || e.errno === Errno.EOPNOTSUPP) {
        throw new TestRunError(withContext(where(program), `the kernel cannot test-run ${program.type} programs (BPF_PROG_TEST_RUN: ${e.code})`), { cause: e });
      }
      if (e.errno === Errno.EINVAL) {
        throw new TestRunError(withContext(where(program), `the kernel refused the input (${describeInput(options)}): ${e.message}`), { cause: e });
      }
      throw new TestRunError(withContext(where(program), e.message), { cause: e });
    }
  }
}

function where(program: { readonly name: string; readonly type: string }): string[] {
  return [`program ${program.name} (${program.type})`, 'test run'];
}

function describeInput(options: TestRunOptions): string {
  const parts = [`data ${options.data?.byteLength ?? 0} B`, `ctx ${options.ctx?.byteLength ?? 0} B`];
  return parts.join(', ');
}
