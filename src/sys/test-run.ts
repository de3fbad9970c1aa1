/**
 * BPF_PROG_TEST_RUN: the kernel runs a loaded program once over bytes we pass (as an skb for socket and tc
 * programs) and reports its return value. The reference semantics for filtering captures.
 */
import { bpfCall } from './bpf.js';
import { AttrWriter } from './ffi.js';

/** The `test` member of union bpf_attr (include/uapi/linux/bpf.h). */
export const BPF_TEST_RUN_ATTR = {
  size: 80, prog_fd: 0, retval: 4, data_size_in: 8, data_size_out: 12, data_in: 16, data_out: 24, repeat: 32,
  duration: 36, ctx_size_in: 40, ctx_size_out: 44, ctx_in: 48, ctx_out: 56, flags: 64, cpu: 68, batch_size: 72,
} as const;

/** Runs one program over packets, reusing one attr block: this is the per-packet hot path of capture filtering. */
export class ProgramTestRunner {
  readonly #progFd: number;
  readonly #attr = new AttrWriter(BPF_TEST_RUN_ATTR.size);

  constructor(progFd: number) {
    this.#progFd = progFd;
  }

  /** The program's return value for one run over `data` (for skb programs: a whole frame, link header first). */
  run(data: Uint8Array, detail?: string): number {
    const L = BPF_TEST_RUN_ATTR;
    const attr = this.#attr.reuse().u32(L.prog_fd, this.#progFd).u32(L.data_size_in, data.byteLength).pointer(L.data_in, data).u32(L.repeat, 1);
    bpfCall('PROG_TEST_RUN', attr, undefined, detail);
    return attr.readU32(L.retval);
  }
}
