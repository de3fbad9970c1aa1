/**
 * BPF_PROG_TEST_RUN: the kernel runs a loaded program once over bytes we pass (as an skb for socket and tc
 * programs) and reports its return value. The reference semantics for filtering captures.
 */
import { BpfCommand } from './bpf.js';
import { SysError } from './errors.js';
import { FixedAttr, InputStaging, writeAddress, writeU64 } from './ffi.js';

/** The `test` member of union bpf_attr (include/uapi/linux/bpf.h). */
export const BPF_TEST_RUN_ATTR = {
  size: 80, prog_fd: 0, retval: 4, data_size_in: 8, data_size_out: 12, data_in: 16, data_out: 24, repeat: 32,
  duration: 36, ctx_size_in: 40, ctx_size_out: 44, ctx_in: 48, ctx_out: 56, flags: 64, cpu: 68, batch_size: 72,
} as const;

export interface ProgTestRunAttr {
  readonly progFd: number;
  readonly dataIn?: Uint8Array | undefined;
  /** Receives the packet after the run; the kernel reports ENOSPC when it is too small. */
  readonly dataOut?: Uint8Array | undefined;
  /** Bytes of dataOut offered to the kernel (default: all of it), so a scratch buffer can be passed whole. */
  readonly dataOutSize?: number | undefined;
  readonly ctxIn?: Uint8Array | undefined;
  readonly ctxOut?: Uint8Array | undefined;
  /** Bytes of ctxOut offered to the kernel (default: all of it). */
  readonly ctxOutSize?: number | undefined;
  readonly repeat?: number | undefined;
  readonly flags?: number | undefined;
  /** What errors name instead of `prog fd N` (a packet of a capture, say). */
  readonly detail?: string | undefined;
  readonly cpu?: number | undefined;
}

export interface ProgTestRunResult {
  readonly retval: number;
  /** Bytes the kernel wrote (or wanted to write) to dataOut / ctxOut. */
  readonly dataSizeOut: number;
  readonly ctxSizeOut: number;
  /** Mean nanoseconds per run, as the kernel measured it. */
  readonly durationNs: number;
}

/*
 * program.testRun() is a per-call hot path (tests and benchmarks call it in loops), where building an attr costs
 * more than the kernel's run: so, as the map element calls do, one preallocated attr whose every field is written
 * on each call (a FixedAttr), addresses from writeAddress()'s cache. The buffers are live
 * arguments for the whole synchronous call, so nothing needs pinning. Sizes are read as `length` (see addressOf).
 */
const testRunAttr = new FixedAttr(BPF_TEST_RUN_ATTR.size);
const testRunView = testRunAttr.view;

/** BPF_PROG_TEST_RUN with every input and output: packet in/out, context in/out, repeat count, flags, CPU. */
export function progTestRun(a: ProgTestRunAttr): ProgTestRunResult {
  const L = BPF_TEST_RUN_ATTR;
  const v = testRunView;
  v.setUint32(L.prog_fd, a.progFd, true);
  v.setUint32(L.retval, 0, true);
  v.setUint32(L.data_size_in, a.dataIn?.length ?? 0, true);
  v.setUint32(L.data_size_out, a.dataOut === undefined ? 0 : Math.min(a.dataOutSize ?? a.dataOut.length, a.dataOut.length), true);
  writeAddress(v, L.data_in, a.dataIn);
  writeAddress(v, L.data_out, a.dataOut);
  v.setUint32(L.repeat, a.repeat ?? 0, true);
  v.setUint32(L.duration, 0, true);
  v.setUint32(L.ctx_size_in, a.ctxIn?.length ?? 0, true);
  v.setUint32(L.ctx_size_out, a.ctxOut === undefined ? 0 : Math.min(a.ctxOutSize ?? a.ctxOut.length, a.ctxOut.length), true);
  writeAddress(v, L.ctx_in, a.ctxIn);
  writeAddress(v, L.ctx_out, a.ctxOut);
  v.setUint32(L.flags, a.flags ?? 0, true);
  v.setUint32(L.cpu, a.cpu ?? 0, true);
  v.setUint32(L.batch_size, 0, true);
  const ret = testRunAttr.bpf(BpfCommand.PROG_TEST_RUN);
  if (ret < 0) throw new SysError({ syscall: 'bpf', command: 'BPF_PROG_TEST_RUN', errno: -ret, detail: a.detail ?? `prog fd ${a.progFd}` });
  return {
    retval: v.getUint32(L.retval, true), dataSizeOut: v.getUint32(L.data_size_out, true),
    ctxSizeOut: v.getUint32(L.ctx_size_out, true), durationNs: v.getUint32(L.duration, true),
  };
}

/**
 * BPF_PROG_TEST_RUN of a packet, the per-call hot path (program.testRun/testRunInto in loops): an attr of its own
 * whose context, flags and CPU fields stay zero, so a run writes only the six fields a packet run uses — no options
 * object, no result object — and the results are read from the attr afterwards with plain loads.
 */
export class PacketTestRun {
  readonly #attr = new FixedAttr(BPF_TEST_RUN_ATTR.size);
  readonly #view = this.#attr.view;
  /** The packet's address: cached, or a staged copy for a buffer seen once (a capture walk's views). */
  readonly #input = new InputStaging();

  /** Runs `progFd` over `dataIn`, the packet after the run written at `dataOutAddress` (room: dataOutSize bytes). */
  run(progFd: number, dataIn: Uint8Array, dataOutAddress: number, dataOutSize: number, repeat: number): number {
    const L = BPF_TEST_RUN_ATTR;
    const v = this.#view;
    v.setUint32(L.prog_fd, progFd, true);
    v.setUint32(L.data_size_in, dataIn.length, true);
    writeU64(v, L.data_in, this.#input.address(dataIn));
    v.setUint32(L.data_size_out, dataOutSize, true);
    writeU64(v, L.data_out, dataOutAddress);
    v.setUint32(L.repeat, repeat, true);
    return this.#attr.bpf(BpfCommand.PROG_TEST_RUN);
  }

  /** The same with the packet after the run written into `dataOut` (an empty one takes nothing back). */
  runInto(progFd: number, dataIn: Uint8Array, dataOut: Uint8Array, repeat: number): number {
    const L = BPF_TEST_RUN_ATTR;
    const v = this.#view;
    v.setUint32(L.prog_fd, progFd, true);
    v.setUint32(L.data_size_in, dataIn.length, true);
    writeU64(v, L.data_in, this.#input.address(dataIn));
    // A NULL data_out with size 0 when `dataOut` is empty: with a pointer and size 0 the kernel would copy it all.
    v.setUint32(L.data_size_out, dataOut.length, true);
    writeAddress(v, L.data_out, dataOut);
    v.setUint32(L.repeat, repeat, true);
    return this.#attr.bpf(BpfCommand.PROG_TEST_RUN);
  }

  /** The last run's return value (the kernel's u32). */
  get retval(): number {
    return this.#view.getUint32(BPF_TEST_RUN_ATTR.retval, true);
  }
  /** Bytes of the packet after the last run (also when they did not fit: the run then failed with ENOSPC). */
  get dataSizeOut(): number {
    return this.#view.getUint32(BPF_TEST_RUN_ATTR.data_size_out, true);
  }
  /** Mean nanoseconds per run of the last call, as the kernel measured it. */
  get durationNs(): number {
    return this.#view.getUint32(BPF_TEST_RUN_ATTR.duration, true);
  }
}

/** The one packet test-run attr: calls are synchronous, and each writes every field it uses. */
export const packetTestRun = new PacketTestRun();
