/**
 * perf_event_open(2) and the PERF_EVENT_IOC_* ioctls: the fds that tracepoint/kprobe programs hang off, and the
 * per-CPU outputs of perf event arrays. struct perf_event_attr comes from include/uapi/linux/perf_event.h.
 */
import { SysError } from './errors.js';
import { AttrWriter, rawIoctlInt, rawPerfEventOpen } from './ffi.js';

/** enum perf_type_id. */
export const PerfType = { HARDWARE: 0, SOFTWARE: 1, TRACEPOINT: 2, HW_CACHE: 3, RAW: 4, BREAKPOINT: 5 } as const;

/** enum perf_sw_ids (config of PerfType.SOFTWARE). */
export const PerfSwConfig = {
  CPU_CLOCK: 0, TASK_CLOCK: 1, PAGE_FAULTS: 2, CONTEXT_SWITCHES: 3, CPU_MIGRATIONS: 4, PAGE_FAULTS_MIN: 5,
  PAGE_FAULTS_MAJ: 6, ALIGNMENT_FAULTS: 7, EMULATION_FAULTS: 8, DUMMY: 9, BPF_OUTPUT: 10, CGROUP_SWITCHES: 11,
} as const;

/** enum perf_hw_id (config of PerfType.HARDWARE). */
export const PerfHwConfig = {
  CPU_CYCLES: 0, INSTRUCTIONS: 1, CACHE_REFERENCES: 2, CACHE_MISSES: 3, BRANCH_INSTRUCTIONS: 4, BRANCH_MISSES: 5,
  BUS_CYCLES: 6, STALLED_CYCLES_FRONTEND: 7, STALLED_CYCLES_BACKEND: 8, REF_CPU_CYCLES: 9,
} as const;

/** enum perf_event_sample_format (sample_type bits). */
export const PerfSample = {
  IP: 1 << 0, TID: 1 << 1, TIME: 1 << 2, ADDR: 1 << 3, READ: 1 << 4, CALLCHAIN: 1 << 5, ID: 1 << 6, CPU: 1 << 7,
  PERIOD: 1 << 8, STREAM_ID: 1 << 9, RAW: 1 << 10,
} as const;

/**
 * The one-bit fields of perf_event_attr, packed little-endian into the u64 at offset 40 (x86-64 and arm64 allocate
 * bitfields from the least significant bit). OR them into PerfEventAttr.flags.
 */
export const PerfAttrFlag = {
  DISABLED: 1n << 0n, INHERIT: 1n << 1n, PINNED: 1n << 2n, EXCLUSIVE: 1n << 3n, EXCLUDE_USER: 1n << 4n,
  EXCLUDE_KERNEL: 1n << 5n, EXCLUDE_HV: 1n << 6n, EXCLUDE_IDLE: 1n << 7n, MMAP: 1n << 8n, COMM: 1n << 9n,
  FREQ: 1n << 10n, INHERIT_STAT: 1n << 11n, ENABLE_ON_EXEC: 1n << 12n, TASK: 1n << 13n, WATERMARK: 1n << 14n,
  // bits 15-16: precise_ip (two bits)
  MMAP_DATA: 1n << 17n, SAMPLE_ID_ALL: 1n << 18n, EXCLUDE_HOST: 1n << 19n, EXCLUDE_GUEST: 1n << 20n,
  EXCLUDE_CALLCHAIN_KERNEL: 1n << 21n, EXCLUDE_CALLCHAIN_USER: 1n << 22n, MMAP2: 1n << 23n, COMM_EXEC: 1n << 24n,
  USE_CLOCKID: 1n << 25n, CONTEXT_SWITCH: 1n << 26n, WRITE_BACKWARD: 1n << 27n, NAMESPACES: 1n << 28n,
  KSYMBOL: 1n << 29n, BPF_EVENT: 1n << 30n, AUX_OUTPUT: 1n << 31n, CGROUP: 1n << 32n, TEXT_POKE: 1n << 33n,
  BUILD_ID: 1n << 34n, INHERIT_THREAD: 1n << 35n, REMOVE_ON_EXEC: 1n << 36n, SIGTRAP: 1n << 37n,
} as const;

/** flags argument of perf_event_open. */
export const PerfOpenFlags = { FD_NO_GROUP: 1, FD_OUTPUT: 2, PID_CGROUP: 4, FD_CLOEXEC: 8 } as const;

/** PERF_EVENT_IOC_* request numbers (asm-generic _IO/_IOW encoding, shared by x86-64 and arm64). */
export const PerfIoctl = { ENABLE: 0x2400, DISABLE: 0x2401, REFRESH: 0x2402, RESET: 0x2403, SET_BPF: 0x40042408 } as const;

/** Offsets in struct perf_event_attr; `size` is PERF_ATTR_SIZE_VER7, which every kernel since 5.13 knows whole. */
export const PERF_EVENT_ATTR = {
  size: 128, type: 0, size_field: 4 /* the C field `size` */, config: 8, sample_period: 16, sample_freq: 16, sample_type: 24,
  read_format: 32, flags: 40, wakeup_events: 48, wakeup_watermark: 48, bp_type: 52, config1: 56, kprobe_func: 56,
  uprobe_path: 56, config2: 64, kprobe_addr: 64, probe_offset: 64, branch_sample_type: 72, sample_regs_user: 80,
  sample_stack_user: 88, clockid: 92, sample_regs_intr: 96, aux_watermark: 104, sample_max_stack: 108,
  aux_sample_size: 112, sig_data: 120,
} as const;

export interface PerfEventAttr {
  readonly type: number;
  readonly config?: number | bigint;
  /** sample_period, or sample_freq when flags has PerfAttrFlag.FREQ (one slot). */
  readonly samplePeriod?: number | bigint;
  readonly sampleType?: number | bigint;
  readonly readFormat?: number | bigint;
  readonly flags?: bigint;
  /** wakeup_events, or wakeup_watermark with PerfAttrFlag.WATERMARK (one slot). */
  readonly wakeupEvents?: number;
  readonly bpType?: number;
  /**
   * config1 / bp_addr / kprobe_func / uprobe_path. A Uint8Array stands for a pointer to those bytes (a
   * NUL-terminated function name or path for the kprobe/uprobe PMUs).
   */
  readonly config1?: number | bigint | Uint8Array;
  /** config2 / bp_len / kprobe_addr / probe_offset. */
  readonly config2?: number | bigint;
  readonly clockid?: number;
}

export function encodePerfEventAttr(a: PerfEventAttr): AttrWriter {
  const L = PERF_EVENT_ATTR;
  const w = new AttrWriter(L.size)
    .u32(L.type, a.type)
    .u32(L.size_field, L.size)
    .u64(L.config, a.config ?? 0)
    .u64(L.sample_period, a.samplePeriod ?? 0)
    .u64(L.sample_type, a.sampleType ?? 0)
    .u64(L.read_format, a.readFormat ?? 0)
    .u64(L.flags, a.flags ?? 0n)
    .u32(L.wakeup_events, a.wakeupEvents ?? 0)
    .u32(L.bp_type, a.bpType ?? 0)
    .u64(L.config2, a.config2 ?? 0)
    .u32(L.clockid, a.clockid ?? 0);
  if (a.config1 instanceof Uint8Array) w.pointer(L.config1, a.config1);
  else w.u64(L.config1, a.config1 ?? 0);
  return w;
}

/**
 * perf_event_open(2) → event fd. pid -1 with a cpu ≥ 0 watches every task on that CPU; cpu -1 with a pid follows
 * the task. FD_CLOEXEC by default so children never inherit the event.
 */
export function perfEventOpen(
  attr: PerfEventAttr, pid: number, cpu: number, groupFd = -1, flags: number = PerfOpenFlags.FD_CLOEXEC,
): number {
  const w = encodePerfEventAttr(attr);
  let ret: number;
  try {
    ret = rawPerfEventOpen(w.bytes, pid, cpu, groupFd, flags);
  } finally {
    w.release();
  }
  if (ret >= 0) return ret;
  throw new SysError({
    syscall: 'perf_event_open', errno: -ret,
    detail: `type ${attr.type} config ${attr.config ?? 0} pid ${pid} cpu ${cpu}`,
  });
}

function perfIoctl(fd: number, name: keyof typeof PerfIoctl, arg: number): void {
  const ret = rawIoctlInt(fd, PerfIoctl[name], arg);
  if (ret < 0) throw new SysError({ syscall: 'ioctl', command: `PERF_EVENT_IOC_${name}`, errno: -ret, detail: `fd ${fd}` });
}

export function perfEventEnable(fd: number): void {
  perfIoctl(fd, 'ENABLE', 0);
}
export function perfEventDisable(fd: number): void {
  perfIoctl(fd, 'DISABLE', 0);
}
export function perfEventReset(fd: number): void {
  perfIoctl(fd, 'RESET', 0);
}
/** Runs the program on every event of this perf event (tracepoint, kprobe, …); the legacy way before bpf links. */
export function perfEventSetBpf(fd: number, progFd: number): void {
  perfIoctl(fd, 'SET_BPF', progFd);
}
