/**
 * The system calls behind event reading (ring buffers and perf rings are mapped with mmap.ts): an epoll(7) set with
 * an eventfd(2) to wake it. Waiting happens off the JavaScript thread: epoll_wait runs through koffi's asynchronous
 * call on the libuv thread pool, so the event loop stays free and nothing spins.
 */
import { SysArgumentError, SysError } from './errors.js';
import { Fd } from './fd.js';
import { lastErrno, libcFunction, type ForeignFunction } from './ffi.js';

const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
/** EPOLLIN: readable. Level-triggered: a ring with unread data keeps reporting ready, as libbpf relies on. */
const EPOLLIN = 1;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/**
 * struct epoll_event is `__attribute__((packed))` on x86-64 (12 bytes: u32 events, u64 data at offset 4) and
 * naturally aligned elsewhere (16 bytes, data at offset 8): include/uapi/linux/eventpoll.h, EPOLL_PACKED.
 */
export function epollEventLayout(arch: string = process.arch): { size: number; data: number } {
  return arch === 'x64' ? { size: 12, data: 4 } : { size: 16, data: 8 };
}

interface EventCalls {
  readonly epollCreate1: ForeignFunction;
  readonly epollCtl: ForeignFunction;
  readonly epollWait: ForeignFunction;
  readonly eventfd: ForeignFunction;
  readonly write: ForeignFunction;
  readonly read: ForeignFunction;
}

let calls: EventCalls | undefined;
function c(): EventCalls {
  return (calls ??= {
    epollCreate1: libcFunction('int epoll_create1(int flags)'),
    epollCtl: libcFunction('int epoll_ctl(int epfd, int op, int fd, void *event)'),
    epollWait: libcFunction('int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
    eventfd: libcFunction('int eventfd(unsigned int initval, int flags)'),
    write: libcFunction('long write(int fd, void *buf, size_t len)'),
    read: libcFunction('long read(int fd, void *buf, size_t len)'),
  });
}

const WAKE_TOKEN = -1;

/**
 * An epoll set over ring buffer and perf event fds plus an eventfd that close() writes to, so a wait in progress
 * returns at once. Each registered fd carries a token (an integer) that wait() reports back when the fd is readable.
 *
 * One wait at a time occupies one libuv pool thread (4 by default, UV_THREADPOOL_SIZE): read several buffers
 * through one set rather than one set each.
 */
export class EpollSet {
  readonly #epoll: Fd;
  /** An eventfd in the set: writing to it wakes a wait in progress (close() does). */
  readonly #wake: Fd;
  readonly #events: Buffer;
  readonly #layout = epollEventLayout();
  #pending: Promise<number[]> | undefined;
  #closed = false;

  constructor(capacity = 64) {
    const epfd = c().epollCreate1(EPOLL_CLOEXEC) as number;
    if (epfd < 0) throw new SysError({ syscall: 'epoll_create1', errno: lastErrno() });
    this.#epoll = new Fd(epfd, 'epoll set');
    const wakeFd = c().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) as number;
    if (wakeFd < 0) {
      const errno = lastErrno();
      this.#epoll.closeQuietly();
      throw new SysError({ syscall: 'eventfd', errno });
    }
    this.#wake = new Fd(wakeFd, 'epoll wake eventfd');
    this.#events = Buffer.alloc(this.#layout.size * Math.max(1, capacity));
    try {
      this.add(wakeFd, WAKE_TOKEN);
    } catch (e) {
      this.#release();
      throw e;
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Watches `fd` for readability; wait() reports `token` (≥ 0) when it is. */
  add(fd: number, token: number): void {
    if (token < WAKE_TOKEN || !Number.isInteger(token)) throw new SysArgumentError(`epoll token ${token}: must be an integer ≥ 0`);
    const event = Buffer.alloc(this.#layout.size);
    event.writeUInt32LE(EPOLLIN, 0);
    event.writeBigInt64LE(BigInt(token), this.#layout.data);
    if ((c().epollCtl(this.#epoll.value, EPOLL_CTL_ADD, fd, event) as number) < 0) {
      throw new SysError({ syscall: 'epoll_ctl', command: 'EPOLL_CTL_ADD', errno: lastErrno(), detail: `fd ${fd}` });
    }
  }

  /** Stops watching `fd` (before the caller closes it). */
  remove(fd: number): void {
    if ((c().epollCtl(this.#epoll.value, EPOLL_CTL_DEL, fd, null) as number) < 0) {
      throw new SysError({ syscall: 'epoll_ctl', command: 'EPOLL_CTL_DEL', errno: lastErrno(), detail: `fd ${fd}` });
    }
  }

  /**
   * Waits on the libuv pool until a watched fd is readable, `timeoutMs` passes (-1: no limit) or close() is
   * called; resolves with the ready tokens ([] on timeout or close). One wait at a time.
   */
  wait(timeoutMs: number): Promise<number[]> {
    if (this.#closed) return Promise.resolve([]);
    if (this.#pending !== undefined) throw new SysArgumentError('epoll_wait: a wait is already in progress on this set');
    const capacity = this.#events.byteLength / this.#layout.size;
    const pending = new Promise<number[]>((resolve, reject) => {
      c().epollWait.async(this.#epoll.value, this.#events, capacity, timeoutMs, (err: unknown, ret: number) => {
        this.#pending = undefined;
        if (this.#closed) {
          this.#release();
          resolve([]);
          return;
        }
        if (err !== null && err !== undefined) {
          reject(err instanceof Error ? err : new SysError({ syscall: 'epoll_wait', errno: 0, detail: String(err) }));
          return;
        }
        // errno of a pool thread is not ours to read; EINTR is the only failure a valid set can see: report no fd.
        resolve(ret > 0 ? this.#tokens(ret) : []);
      });
    });
    this.#pending = pending;
    return pending;
  }

  /** The ready tokens right now, without blocking (epoll_wait with timeout 0 on this thread). */
  poll(): number[] {
    if (this.#closed) return [];
    const ret = c().epollWait(this.#epoll.value, this.#events, this.#events.byteLength / this.#layout.size, 0) as number;
    return ret > 0 ? this.#tokens(ret) : [];
  }

  #tokens(count: number): number[] {
    const tokens: number[] = [];
    for (let i = 0; i < count; i++) {
      const token = Number(this.#events.readBigInt64LE(i * this.#layout.size + this.#layout.data));
      if (token === WAKE_TOKEN) this.#drainWake();
      else tokens.push(token);
    }
    return tokens;
  }

  #drainWake(): void {
    const counter = Buffer.alloc(8);
    c().read(this.#wake.value, counter, 8);
  }

  /**
   * Closes the set. A wait in progress is woken through the eventfd and resolves with []; the fds are closed as
   * soon as the pool thread has let go of them, which the returned promise reports.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#pending?.then(() => undefined) ?? Promise.resolve();
    this.#closed = true;
    const pending = this.#pending;
    if (pending === undefined) {
      this.#release();
      return Promise.resolve();
    }
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n, 0);
    c().write(this.#wake.value, one, 8);
    return pending.then(() => undefined, () => undefined);
  }

  #release(): void {
    this.#wake.closeQuietly();
    this.#epoll.closeQuietly();
  }
}

/**
 * Offsets in struct perf_event_mmap_page (include/uapi/linux/perf_event.h), the first page of a perf ring: the
 * kernel advances data_head, the reader advances data_tail; the records live at data_offset for data_size bytes.
 */
export const PERF_EVENT_MMAP_PAGE = { size: 1056, data_head: 1024, data_tail: 1032, data_offset: 1040, data_size: 1048 } as const;
