/**
 * mmap(2)/munmap(2) of BPF map fds: the values of a BPF_F_MMAPABLE array map (global data) shared with user space,
 * read and written as plain memory.
 */
import { SysError } from './errors.js';
import { externalView, lastErrno, libcFunction, type ForeignFunction } from './ffi.js';

/** mmap(2) protections (asm-generic/mman-common.h; the same on x86-64 and arm64). */
export const Prot = { READ: 1, WRITE: 2 } as const;
const MAP_SHARED = 1;
const MAP_PRIVATE = 2;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const SC_PAGESIZE = 30;

interface MmapCalls {
  readonly mmap: ForeignFunction;
  readonly mmapAt: ForeignFunction;
  readonly munmap: ForeignFunction;
  readonly sysconf: ForeignFunction;
}

let calls: MmapCalls | undefined;
function c(): MmapCalls {
  return (calls ??= {
    // uintptr_t rather than void*: a plain number for real addresses, and MAP_FAILED compares as a bigint.
    mmap: libcFunction('uintptr_t mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    // The same call with the address as a number: MAP_FIXED over a reservation made here.
    mmapAt: libcFunction('uintptr_t mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: libcFunction('int munmap(uintptr_t addr, size_t len)'),
    sysconf: libcFunction('long sysconf(int name)'),
  });
}

let pageSizeCache: number | undefined;
/** The MMU page size: mappings are whole pages. */
export function pageSize(): number {
  return (pageSizeCache ??= Number(c().sysconf(SC_PAGESIZE)));
}

/** A shared mapping of an fd. `buffer` is valid until unmap(); touching it afterwards would crash the process. */
export interface Mapping {
  readonly address: number;
  readonly length: number;
  readonly buffer: ArrayBuffer;
  unmap(): void;
}

/** A mapping of `length` bytes at `start` that unmap() releases once. */
function mapping(start: number, length: number, what: string): Mapping {
  let mapped = true;
  return {
    address: start,
    length,
    buffer: externalView(start, length),
    unmap() {
      if (!mapped) return;
      mapped = false;
      if ((c().munmap(start, length) as number) < 0) throw new SysError({ syscall: 'munmap', errno: lastErrno(), detail: what });
    },
  };
}

/** mmap(2) of `length` bytes of `fd` at `offset`, MAP_SHARED. */
export function mmapShared(fd: number, length: number, prot: number, offset: number, what: string): Mapping {
  const address = c().mmap(null, length, prot, MAP_SHARED, fd, offset) as number | bigint;
  if (typeof address === 'bigint' && address === MAP_FAILED) {
    throw new SysError({ syscall: 'mmap', errno: lastErrno(), detail: `${what}: ${length} B at offset ${offset}` });
  }
  return mapping(Number(address), length, what);
}

/**
 * mmap(2) of `length` bytes of `fd` from offset 0, MAP_SHARED, directly followed by `spare` bytes of private memory
 * that reads and writes (where a perf ring reader completes records that wrap the ring). The whole span is reserved
 * as anonymous memory first and the fd mapped over its start (MAP_FIXED), so nothing else can land in between; the
 * spare pages cost nothing until written. The returned mapping covers both, and one munmap releases both.
 */
export function mmapSharedWithSpare(fd: number, length: number, prot: number, spare: number, what: string): Mapping {
  const total = length + spare;
  const reserved = c().mmap(null, total, Prot.READ | Prot.WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) as number | bigint;
  if (typeof reserved === 'bigint' && reserved === MAP_FAILED) {
    throw new SysError({ syscall: 'mmap', errno: lastErrno(), detail: `${what}: ${total} B of address space` });
  }
  const start = Number(reserved);
  const address = c().mmapAt(start, length, prot, MAP_SHARED | MAP_FIXED, fd, 0) as number | bigint;
  if (typeof address === 'bigint' && address === MAP_FAILED) {
    const errno = lastErrno();
    c().munmap(start, total);
    throw new SysError({ syscall: 'mmap', errno, detail: `${what}: ${length} B at offset 0` });
  }
  return mapping(start, total, what);
}
