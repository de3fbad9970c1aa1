import { readFileSync } from 'node:fs';
import { BpfLoadError, withContext } from '../base/errors.js';

/**
 * Linux errno values (asm-generic/errno-base.h, errno.h; identical on x86-64 and arm64) that bpf(2), perf_event_open
 * and the socket calls actually return, plus the kernel-internal ENOTSUPP (524) that leaks out of bpf(2).
 */
export const Errno = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, ENOMEM: 12,
  EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22,
  ENFILE: 23, EMFILE: 24, ENOTTY: 25, EFBIG: 27, ENOSPC: 28, EROFS: 30, ERANGE: 34, ENAMETOOLONG: 36, ENOSYS: 38,
  ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61, EPROTO: 71, EOVERFLOW: 75, ENOTSOCK: 88, ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93, EOPNOTSUPP: 95, EAFNOSUPPORT: 97, EADDRINUSE: 98, ENETDOWN: 100, ENOBUFS: 105,
  ETIMEDOUT: 110, ENOTSUPP: 524,
} as const;
export type ErrnoName = keyof typeof Errno;

/** glibc's strerror() wording, so messages read like the C tools users compare against. */
const ERRNO_TEXT: Readonly<Record<ErrnoName, string>> = {
  EPERM: 'Operation not permitted', ENOENT: 'No such file or directory', ESRCH: 'No such process',
  EINTR: 'Interrupted system call', EIO: 'Input/output error', ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long', EBADF: 'Bad file descriptor', EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory', EACCES: 'Permission denied', EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy', EEXIST: 'File exists', EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device', ENOTDIR: 'Not a directory', EISDIR: 'Is a directory', EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system', EMFILE: 'Too many open files', ENOTTY: 'Inappropriate ioctl for device',
  EFBIG: 'File too large', ENOSPC: 'No space left on device', EROFS: 'Read-only file system',
  ERANGE: 'Numerical result out of range', ENAMETOOLONG: 'File name too long', ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty', ELOOP: 'Too many levels of symbolic links', ENODATA: 'No data available',
  EPROTO: 'Protocol error', EOVERFLOW: 'Value too large for defined data type',
  ENOTSOCK: 'Socket operation on non-socket', ENOPROTOOPT: 'Protocol not available',
  EPROTONOSUPPORT: 'Protocol not supported', EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol', EADDRINUSE: 'Address already in use',
  ENETDOWN: 'Network is down', ENOBUFS: 'No buffer space available', ETIMEDOUT: 'Connection timed out',
  // Kernel-internal code (include/linux/errno.h) that bpf(2) returns for unsupported map/prog operations.
  ENOTSUPP: 'Operation not supported by this map or program type',
};

const NAME_BY_ERRNO: ReadonlyMap<number, ErrnoName> = new Map(
  (Object.entries(Errno) as Array<[ErrnoName, number]>).map(([name, value]) => [value, name]),
);

/** Symbolic name of an errno value ('EINVAL'), or `E<n>` when it is not in the table. */
export function errnoName(errno: number): string {
  return NAME_BY_ERRNO.get(errno) ?? `E${errno}`;
}

/** strerror()-like text for an errno value. */
export function errnoText(errno: number): string {
  const name = NAME_BY_ERRNO.get(errno);
  return name === undefined ? `Unknown error ${errno}` : ERRNO_TEXT[name];
}

const PRIVILEGE_HINT = 'run as root or grant CAP_BPF (CAP_NET_ADMIN / CAP_PERFMON to attach)';
// Before 5.11 maps and programs were charged to RLIMIT_MEMLOCK and exceeding it surfaced as EPERM.
const MEMLOCK_HINT = 'on kernels before 5.11 also raise RLIMIT_MEMLOCK';
const PRIVILEGED_EPERM_HINT =
  'refused although this process has CAP_SYS_ADMIN: the kernel does not allow it (lockdown, or a feature this kernel lacks)';

const CAP_SYS_ADMIN = 21n;
let privileged: boolean | undefined;

/** Whether this process has CAP_SYS_ADMIN (read once from /proc/self/status; false when it cannot be read). */
function isPrivileged(): boolean {
  if (privileged !== undefined) return privileged;
  try {
    const capEff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    privileged = capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    privileged = false;
  }
  return privileged;
}

export interface SysErrorInit {
  /** The system call: 'bpf', 'perf_event_open', 'socket', … */
  readonly syscall: string;
  /** The bpf command ('BPF_MAP_CREATE') or ioctl/socket option; defaults to the syscall name. */
  readonly command?: string;
  readonly errno: number;
  /** What the call was about, e.g. the pin path or interface name. */
  readonly detail?: string;
}

/** A failed system call: which call, which command, and the errno the kernel returned. */
export class SysError extends BpfLoadError {
  override name = 'SysError';
  readonly syscall: string;
  readonly command: string;
  readonly errno: number;
  readonly code: string;

  constructor(init: SysErrorInit) {
    const command = init.command ?? init.syscall;
    const call = command === init.syscall ? init.syscall : `${init.syscall}(${command})`;
    super(withContext([call, init.detail], describeErrno(command, init.errno)));
    this.syscall = init.syscall;
    this.command = command;
    this.errno = init.errno;
    this.code = errnoName(init.errno);
  }
}

function describeErrno(command: string, errno: number): string {
  const base = `${errnoText(errno)} (${errnoName(errno)})`;
  if (errno === Errno.EPERM) {
    // Root being told to run as root helps nobody: a privileged process's EPERM is the kernel's own refusal.
    if (isPrivileged()) return `${base} — ${PRIVILEGED_EPERM_HINT}`;
    const memlock = command === 'BPF_MAP_CREATE' || command === 'BPF_PROG_LOAD' ? `; ${MEMLOCK_HINT}` : '';
    return `${base} — ${PRIVILEGE_HINT}${memlock}`;
  }
  // The verifier rejects programs with EACCES: that is about the program, not about privileges.
  if (errno === Errno.EACCES && command !== 'BPF_PROG_LOAD') return `${base} — ${PRIVILEGE_HINT}`;
  return base;
}

/** The running kernel lacks something the object needs (a map type, a program type, a helper, tracefs …). */
export class KernelFeatureError extends BpfLoadError {
  override name = 'KernelFeatureError';
  readonly feature: string;

  /** `options.message` words what is missing when "this kernel lacks <feature>" would say too little. */
  constructor(feature: string, detail?: string, options?: { cause?: unknown; message?: string }) {
    super(withContext([detail], options?.message ?? `this kernel lacks ${feature}`), options);
    this.feature = feature;
  }
}

/** bpf-load cannot drive this platform at all (not Linux, or a CPU architecture without a syscall table here). */
export class UnsupportedPlatformError extends BpfLoadError {
  override name = 'UnsupportedPlatformError';
}

/** An argument the kernel could not even be handed (a path with a NUL byte, a buffer of the wrong size …). */
export class SysArgumentError extends BpfLoadError {
  override name = 'SysArgumentError';
}
