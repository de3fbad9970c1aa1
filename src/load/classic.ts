/**
 * Classic filters in the kernel as eBPF: the cbpf translation loaded with BPF_PROG_LOAD, and run over packets with
 * BPF_PROG_TEST_RUN — the kernel's verdict on a capture, the reference the JavaScript matcher is checked against.
 */
import { ARPHRD_LOOPBACK, PROG_TYPE_NAMES } from '../base/uapi.js';
import { classicToEbpf, type ClassicProgram } from '../cbpf/index.js';
import { encodeInsns } from '../insn/index.js';
import { Errno, Fd, packetTestRun, progLoad, SysError } from '../sys/index.js';
import { VerifierError } from './errors.js';

export interface ClassicLoadOptions {
  /**
   * sched_cls (default) sees the frame from its link-layer header, as a packet socket's filter does, also under
   * BPF_PROG_TEST_RUN; socket_filter programs under test run see it from the network header.
   */
  readonly type?: 'sched_cls' | 'socket_filter';
  /** Names the program in errors and in the kernel (bpftool prog shows it). */
  readonly name?: string;
  /** ARPHRD_* of the device it will run on, for SKF_AD_HATYPE loads (KernelClassicMatcher: the loopback device's). */
  readonly deviceType?: number;
}

/** Loads the eBPF translation of a classic program; the caller owns (closes) the returned Fd. */
export function loadClassicFilter(program: ClassicProgram, options: ClassicLoadOptions = {}): Fd {
  const name = options.name ?? 'classic_filter';
  const attr = {
    progType: PROG_TYPE_NAMES.indexOf(options.type ?? 'sched_cls'),
    insns: encodeInsns(classicToEbpf(program, name, options.deviceType === undefined ? {} : { deviceType: options.deviceType }), true),
    license: 'GPL',
    progName: name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 15),
  };
  const what = `classic filter ${name}`;
  try {
    return new Fd(progLoad(attr), what);
  } catch (first) {
    if (!(first instanceof SysError) || (first.errno !== Errno.EACCES && first.errno !== Errno.EINVAL)) throw first;
    const logBuf = Buffer.alloc(1 << 20);
    try {
      return new Fd(progLoad({ ...attr, logLevel: 1, logBuf }), what);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      const log = logBuf.subarray(0, Math.max(0, logBuf.indexOf(0))).toString('utf8');
      throw new VerifierError({ program: name, section: 'classic filter', cause: e, log, truncated: e.errno === Errno.ENOSPC });
    }
  }
}

/** The kernel running a classic filter over packets, one BPF_PROG_TEST_RUN each. Close it to unload the program. */
export class KernelClassicMatcher implements Disposable {
  readonly #fd: Fd;

  constructor(program: ClassicProgram, options: ClassicLoadOptions = {}) {
    this.#fd = loadClassicFilter(program, { deviceType: ARPHRD_LOOPBACK, ...options });
  }

  get fd(): number {
    return this.#fd.value;
  }

  /** The filter's return value for one frame: 0 drops it, anything else keeps that many bytes. */
  match(frame: Uint8Array, detail?: string): number {
    // The prepared packet run, taking nothing back (no data_out): the verdict is the return value.
    const progFd = this.#fd.value;
    const ret = packetTestRun.run(progFd, frame, 0, 0, 1);
    if (ret < 0) throw new SysError({ syscall: 'bpf', command: 'BPF_PROG_TEST_RUN', errno: -ret, detail: detail ?? `prog fd ${progFd}` });
    return packetTestRun.retval;
  }

  close(): void {
    this.#fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
