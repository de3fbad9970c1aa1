/**
 * The one place that talks to libc through koffi. Everything above works on plain numbers and Buffers.
 *
 * Calling convention: every raw call here returns the call's result when it succeeded and `-errno` when it failed,
 * the kernel's own convention, so callers branch on the sign without a second FFI round trip for errno.
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';
import { SysArgumentError, UnsupportedPlatformError } from './errors.js';

/** Syscall numbers for the calls glibc has no wrapper for (arch/x86/entry/syscalls, include/uapi/asm-generic/unistd.h). */
export const SYSCALL_NUMBERS = {
  x64: { bpf: 321, perf_event_open: 298 },
  arm64: { bpf: 280, perf_event_open: 241 },
} as const;
export type SyscallTable = (typeof SYSCALL_NUMBERS)[keyof typeof SYSCALL_NUMBERS];

/** The syscall table for a Node `process.arch` value; anything else cannot be driven. */
export function syscallNumbers(arch: string = process.arch, platform: string = process.platform): SyscallTable {
  if (platform !== 'linux') throw new UnsupportedPlatformError(`bpf(2) needs Linux, this is ${platform}`);
  if (arch === 'x64' || arch === 'arm64') return SYSCALL_NUMBERS[arch];
  throw new UnsupportedPlatformError(`unsupported CPU architecture ${arch}: bpf-load knows the syscall numbers of x64 and arm64 only`);
}

type Pointer = Uint8Array | null;

interface Libc {
  readonly nr: SyscallTable;
  /*
   * libc's syscall(2) is variadic. We bind it with fixed prototypes instead because
   *  - on x86-64 SysV and AAPCS64 Linux (the only arches accepted above) integer and pointer arguments of a variadic
   *    call travel in exactly the registers of a non-variadic call; the only variadic extra on x86-64 is %al (vector
   *    register count), which glibc's syscall() ignores: it is an assembly stub that shuffles rdi..r9 and traps;
   *  - koffi's variadic path parses (type, value) pairs on every call: measured ~1.6 µs vs ~1.25 µs per
   *    bpf(BPF_MAP_LOOKUP_ELEM) (koffi 3.3.4, Linux 6.18 x86-64 VM), and map lookups are the hot path.
   * One prototype per call shape lets koffi pass Buffers as pointers (zero copy) and fds as ints.
   */
  readonly bpf: (nr: number, cmd: number, attr: Uint8Array, size: number) => number;
  /** The same function on the libuv pool (koffi's asynchronous call): the callback gets its result. */
  readonly bpfAsync: (nr: number, cmd: number, attr: Uint8Array, size: number, done: (err: unknown, ret: number) => void) => void;
  /** The same call with the attr's address as an integer: koffi converts a number faster than it resolves a Buffer. */
  readonly bpfAt: (nr: number, cmd: number, attr: number, size: number) => number;
  readonly perfEventOpen: (nr: number, attr: Uint8Array, pid: number, cpu: number, groupFd: number, flags: number) => number;
  readonly close: (fd: number) => number;
  // ioctl is variadic too; it is rare (enable/disable/set-bpf once per event), so it keeps the exact variadic binding.
  readonly ioctl: (fd: number, request: number, ...typedArgs: unknown[]) => number;
  readonly socket: (domain: number, type: number, protocol: number) => number;
  readonly bind: (fd: number, addr: Uint8Array, len: number) => number;
  readonly setsockopt: (fd: number, level: number, name: number, value: Uint8Array, len: number) => number;
  readonly getsockopt: (fd: number, level: number, name: number, value: Uint8Array, len: Uint8Array) => number;
  readonly sendto: (fd: number, buf: Uint8Array, len: number, flags: number, addr: Pointer, addrLen: number) => number;
  readonly recvfrom: (fd: number, buf: Uint8Array, len: number, flags: number, addr: Pointer, addrLen: Pointer) => number;
  readonly ifNameToIndex: (name: string) => number;
  readonly mount: (source: string, target: string, fstype: string, flags: number, data: string | null) => number;
  readonly umount2: (target: string, flags: number) => number;
}

let bound: Libc | undefined;
let libcHandle: Koffi.LibraryHandle | undefined;
let koffi: typeof Koffi;

/**
 * koffi (its native addon and libc) is required on the first system call, not at import: `--dump` and every pure
 * layer make none, and loading the addon is a sizeable share of start-up. Every koffi user in src/sys reaches it
 * through here: a static `import koffi` would be hoisted to the top of the bundled CLI and load it in every mode.
 */
export function ffi(): typeof Koffi {
  koffi ??= createRequire(import.meta.url)('koffi') as typeof Koffi;
  return koffi;
}

/** Binds libc on first use, so merely importing this layer (e.g. for its types) never loads a native library. */
function libc(): Libc {
  if (bound !== undefined) return bound;
  const nr = syscallNumbers();
  const lib = ffi().load('libc.so.6');
  libcHandle = lib;
  const bpf = lib.func('long syscall(long nr, int cmd, void *attr, uint32_t size)');
  bound = {
    nr,
    bpf,
    bpfAsync: bpf.async,
    bpfAt: lib.func('long syscall(long nr, int cmd, uintptr_t attr, uint32_t size)'),
    perfEventOpen: lib.func('long syscall(long nr, void *attr, int pid, int cpu, int group_fd, unsigned long flags)'),
    close: lib.func('int close(int fd)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, void *addr, uint32_t len)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)'),
    sendto: lib.func('long sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t addr_len)'),
    recvfrom: lib.func('long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addr_len)'),
    ifNameToIndex: lib.func('unsigned int if_nametoindex(const char *name)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
  };
  return bound;
}

/**
 * A libc function bound with the same library handle as the calls above, for sys modules with their own call
 * shapes (mmap, epoll). Bound on first use by the caller; koffi functions also carry `.async` (libuv pool).
 */
export type ForeignFunction = ReturnType<Koffi.LibraryHandle['func']>;
export function libcFunction(prototype: string): ForeignFunction {
  libc();
  return libcHandle!.func(prototype);
}

/** An ArrayBuffer over `length` bytes of foreign memory at `address` (an mmap); invalid once it is unmapped. */
export function externalView(address: number | bigint, length: number): ArrayBuffer {
  return ffi().view(address, length);
}

/** errno after a foreign call made through libcFunction(): read it before any other FFI call. */
export function lastErrno(): number {
  return ffi().errno();
}

/** errno must be read right after the failing call, before any other FFI call can overwrite it. */
function result(ret: number): number {
  return ret < 0 ? -koffi.errno() : ret;
}

export function rawBpf(cmd: number, attr: Uint8Array, size: number): number {
  const c = libc();
  return result(c.bpf(c.nr.bpf, cmd, attr, size));
}

/**
 * rawBpf on a libuv pool thread, the caller's thread free meanwhile: resolves with the result when it is ≥ 0, else
 * with -1, since errno is the pool thread's (a caller that must know why makes the call again on its own thread).
 * `attr`, and every buffer whose address it holds, must stay alive until the promise settles.
 */
export function rawBpfAsync(cmd: number, attr: Uint8Array, size: number): Promise<number> {
  const c = libc();
  return new Promise((resolve, reject) => {
    c.bpfAsync(c.nr.bpf, cmd, attr, size, (err, ret) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new SysArgumentError(`bpf(2) on the libuv pool: ${String(err)}`));
      else resolve(ret < 0 ? -1 : ret);
    });
  });
}

/**
 * An attribute block for the per-call hot paths (map elements, test runs): allocated and zeroed once, its address
 * taken once (a typed array whose address was taken never moves), and handed to bpf(2) as that integer. Saves, per
 * call, the allocation of an AttrWriter and koffi's resolution of a Buffer argument (~50 ns measured on a busy VM).
 * Safe to share module-wide: every call is synchronous, and the owner writes every field it uses before each one.
 * `tail` bytes after the attr (not passed as its size) hold what its pointers point at, so a prepared call's key and
 * value share the block's one address.
 */
export class FixedAttr {
  readonly bytes: Buffer;
  readonly view: DataView;
  /** The attr's own size: what bpf(2) is told. */
  readonly size: number;
  #address = 0;

  constructor(size: number, tail = 0) {
    this.size = size;
    this.bytes = Buffer.alloc(size + tail);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, size + tail);
  }

  /** The block's address (koffi loads on first use). */
  get address(): number {
    if (this.#address === 0) this.#address = Number(ffi().address(this.bytes) as bigint | number);
    return this.#address;
  }

  /** bpf(cmd, this block): the call's result, or -errno. */
  bpf(cmd: number): number {
    const c = libc();
    return result(c.bpfAt(c.nr.bpf, cmd, this.#address === 0 ? this.address : this.#address, this.size));
  }
}

type BufferClass = new (buffer: ArrayBuffer, byteOffset: number, length: number) => Buffer;
/**
 * Node's own Buffer class (FastBuffer: what Buffer.from and Buffer.allocUnsafe construct), which Node exposes as
 * Buffer[Symbol.species]. Constructing it directly skips Buffer.from's argument checks and its native
 * isAnyArrayBuffer() call: ~45 ns instead of ~90 ns a piece, measured. Buffer.from where a runtime lacks it.
 */
const NodeBuffer = (Buffer as unknown as { readonly [Symbol.species]?: BufferClass })[Symbol.species];
const bufferView: (buffer: ArrayBuffer, byteOffset: number, length: number) => Buffer =
  NodeBuffer !== undefined && Buffer.isBuffer(new NodeBuffer(new ArrayBuffer(1), 0, 1))
    ? (buffer, byteOffset, length) => new NodeBuffer(buffer, byteOffset, length)
    : (buffer, byteOffset, length) => Buffer.from(buffer, byteOffset, length);

/**
 * Where the kernel writes results that are handed out as Buffers (looked-up values, test-run packets): one slab with
 * a known address, carved into consecutive pieces, each returned as a Buffer view of its own — what
 * Buffer.allocUnsafe does with Node's pool, minus the copy: the kernel writes straight into the piece. Making a
 * Buffer is most of a lookup's cost above the system call, and a copy would add to it. A piece keeps its slab alive
 * while it is referenced, as pool Buffers do.
 */
export class OutputSlab {
  readonly #size: number;
  // The slab's ArrayBuffer and address, kept as fields: `Buffer#buffer` is a call into a V8 builtin (~40 ns measured).
  #arrayBuffer: ArrayBuffer;
  #end: number;
  #address = 0;
  #offset = 0;

  constructor(size = 16384) {
    this.#size = size;
    this.#end = size;
    this.#arrayBuffer = new ArrayBuffer(size);
  }

  /** The address of `size` bytes the kernel may write to; valid until the next reserve(). */
  reserve(size: number): number {
    if (this.#offset + size > this.#end) {
      this.#end = Math.max(this.#size, size);
      this.#arrayBuffer = new ArrayBuffer(this.#end);
      this.#address = 0;
      this.#offset = 0;
    }
    if (this.#address === 0) this.#address = Number(ffi().address(new Uint8Array(this.#arrayBuffer)) as bigint | number);
    return this.#address + this.#offset;
  }

  /** The first `size` bytes of the last reservation as a Buffer the caller keeps; the slab moves past them. */
  take(size: number): Buffer {
    const piece = bufferView(this.#arrayBuffer, this.#offset, size);
    // Pieces start 8-byte aligned, as the kernel's u64 values are.
    this.#offset += (size + 7) & ~7;
    return piece;
  }
}

/** Writes a number (an address) into the little-endian u64 at `offset`, as two 32-bit halves (see writeAddress). */
export function writeU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

export function rawPerfEventOpen(attr: Uint8Array, pid: number, cpu: number, groupFd: number, flags: number): number {
  const c = libc();
  return result(c.perfEventOpen(c.nr.perf_event_open, attr, pid, cpu, groupFd, flags));
}

export function rawClose(fd: number): number {
  return result(libc().close(fd));
}

/** ioctl with an integer argument (the PERF_EVENT_IOC_* requests take an int or nothing). */
export function rawIoctlInt(fd: number, request: number, arg: number): number {
  return result(libc().ioctl(fd, request, 'unsigned long', arg));
}

export function rawSocket(domain: number, type: number, protocol: number): number {
  return result(libc().socket(domain, type, protocol));
}

export function rawBind(fd: number, addr: Uint8Array): number {
  return result(libc().bind(fd, addr, addr.byteLength));
}

export function rawSetsockopt(fd: number, level: number, name: number, value: Uint8Array): number {
  return result(libc().setsockopt(fd, level, name, value, value.byteLength));
}

/** getsockopt into `value`; returns the option length the kernel reported, or -errno. */
export function rawGetsockopt(fd: number, level: number, name: number, value: Uint8Array): number {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(value.byteLength, 0);
  const ret = result(libc().getsockopt(fd, level, name, value, len));
  return ret < 0 ? ret : len.readUInt32LE(0);
}

export function rawSendto(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array | null): number {
  return result(libc().sendto(fd, buf, buf.byteLength, flags, addr, addr?.byteLength ?? 0));
}

export function rawRecv(fd: number, buf: Uint8Array, flags: number): number {
  return result(libc().recvfrom(fd, buf, buf.byteLength, flags, null, null));
}

/** recvfrom with the sender's address: `addr` receives it, `addrLen` (a u32, in and out) its length. */
export function rawRecvFrom(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array, addrLen: Uint8Array): number {
  return result(libc().recvfrom(fd, buf, buf.byteLength, flags, addr, addrLen));
}

/** Interface index, or -errno (ENODEV) when there is no such interface. */
export function rawIfNameToIndex(name: string): number {
  const c = libc();
  const index = c.ifNameToIndex(name);
  return index === 0 ? -koffi.errno() : index;
}

export function rawMount(source: string, target: string, fstype: string, flags: number, data: string | null): number {
  return result(libc().mount(source, target, fstype, flags, data));
}

export function rawUmount(target: string, flags: number): number {
  return result(libc().umount2(target, flags));
}

/**
 * A zeroed attribute block (union bpf_attr, struct perf_event_attr, sockaddr …) written with a DataView in host byte
 * order, plus the buffers whose addresses it holds.
 *
 * u64 pointer fields carry raw addresses the kernel dereferences during the call. The GC knows nothing about those
 * addresses, so `pointer()` keeps every referenced buffer in this writer until `release()`, which the caller runs
 * after the system call returned: the writer stays reachable for the whole call, and so do the buffers.
 */
const cachedBuffers: Array<Uint8Array | undefined> = [undefined, undefined, undefined, undefined];
const cachedAddresses: number[] = [0, 0, 0, 0];
let nextCacheSlot = 0;

/**
 * koffi.address() of a buffer (its data pointer, byteOffset included) as a number, remembered for the last few
 * buffers seen: hot paths reuse scratch buffers. Safe: once a typed array's address has been taken its backing store
 * is off the V8 heap and never moves. A number holds it exactly: user-space addresses are below 2^48 on x86-64 and
 * arm64, far below 2^53.
 */
function addressOf(bytes: Uint8Array | null | undefined): number {
  // `length`, not `byteLength` (the same for bytes): V8 11 (Node 20) calls a builtin for byteLength, ~20 ns measured.
  if (bytes === null || bytes === undefined || bytes.length === 0) return 0;
  const cached = cachedAddress(bytes);
  return cached !== 0 ? cached : takeAddress(bytes);
}

/** The remembered address of `bytes`, or 0 when it is not in the cache. */
function cachedAddress(bytes: Uint8Array): number {
  for (let i = 0; i < cachedBuffers.length; i++) if (cachedBuffers[i] === bytes) return cachedAddresses[i]!;
  return 0;
}

function takeAddress(bytes: Uint8Array): number {
  const address = Number(ffi().address(bytes) as bigint | number);
  // Only small buffers are remembered: the cache holds them alive, and big ones (batch buffers) are not reused.
  if (bytes.length > 4096) return address;
  cachedBuffers[nextCacheSlot] = bytes;
  cachedAddresses[nextCacheSlot] = address;
  nextCacheSlot = (nextCacheSlot + 1) % cachedBuffers.length;
  return address;
}

/**
 * Addresses for bytes the kernel only reads during one call (a test run's packet). A buffer seen before comes from
 * the address cache; a new one is copied into a staging buffer whose address is known, since koffi.address() of a
 * fresh buffer costs ~1 µs (measured) and a copy of a packet tens of ns — a capture walk passes a new view per
 * packet. A buffer that misses twice in a row is being reused: its address is taken and cached instead.
 */
export class InputStaging {
  #staging = Buffer.alloc(0);
  #address = 0;
  #lastMiss: Uint8Array | undefined;

  /** The address of `bytes` for the next call (0 when empty); a staged copy is valid until the next address(). */
  address(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    const cached = cachedAddress(bytes);
    if (cached !== 0) return cached;
    if (bytes === this.#lastMiss || bytes.length > STAGING_MAX) {
      this.#lastMiss = undefined;
      return takeAddress(bytes);
    }
    this.#lastMiss = bytes;
    if (this.#staging.length < bytes.length) {
      this.#staging = Buffer.allocUnsafeSlow(Math.max(bytes.length, 2048));
      this.#address = 0;
    }
    if (this.#address === 0) this.#address = Number(ffi().address(this.#staging) as bigint | number);
    this.#staging.set(bytes);
    return this.#address;
  }
}
const STAGING_MAX = 65536;

/**
 * Writes the address of `bytes` (0 for null, undefined or empty) into the little-endian u64 at `offset` of `view`,
 * as two 32-bit halves: DataView#setBigUint64 is a call into a V8 builtin (~20 ns, measured) where setUint32 is
 * compiled inline, and the hot paths (map elements, test runs) write two to four addresses per call.
 */
export function writeAddress(view: DataView, offset: number, bytes: Uint8Array | null | undefined): void {
  writeU64(view, offset, addressOf(bytes));
}

export class AttrWriter {
  readonly bytes: Buffer;
  readonly view: DataView;
  readonly #pinned: Uint8Array[] = [];

  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, size);
  }

  u8(offset: number, value: number): this {
    this.view.setUint8(offset, value);
    return this;
  }
  u16(offset: number, value: number): this {
    this.view.setUint16(offset, value, true);
    return this;
  }
  /** Also used for fds and signed ints: DataView stores ToUint32(value), which is the two's complement of -1 etc. */
  u32(offset: number, value: number): this {
    this.view.setUint32(offset, value, true);
    return this;
  }
  u64(offset: number, value: number | bigint): this {
    if (typeof value === 'number') {
      // Two 32-bit halves: no BigInt allocation on hot paths. Two's complement for negative safe integers.
      this.view.setUint32(offset, value >>> 0, true);
      this.view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000) >>> 0, true);
    } else {
      this.view.setBigUint64(offset, BigInt.asUintN(64, value), true);
    }
    return this;
  }

  /**
   * Writes the address of `bytes` (0 for null or empty) into a u64 field and pins `bytes` until release().
   * addressOf() is the only place that turns a JS buffer into an address.
   */
  pointer(offset: number, bytes: Uint8Array | null | undefined): this {
    if (bytes !== null && bytes !== undefined && bytes.length > 0) this.#pinned.push(bytes);
    writeAddress(this.view, offset, bytes);
    return this;
  }

  /** A fixed char[size] field (map_name, prog_name): UTF-8, truncated so that a NUL always fits. */
  chars(offset: number, size: number, text: string): this {
    const encoded = Buffer.from(text, 'utf8').subarray(0, size - 1);
    this.bytes.set(encoded, offset);
    return this;
  }

  readU32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  readU64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }

  /** Drops the pins; called once the system call that reads the pointed-to buffers has returned. */
  release(): void {
    this.#pinned.length = 0;
  }

  /**
   * Zeroes the block for another call. Creating an ArrayBuffer costs more than the bpf(2) call itself (~0.5 µs of
   * off-heap allocation), so hot paths reuse one private writer; safe because each call finishes synchronously.
   */
  reuse(): this {
    this.bytes.fill(0);
    this.#pinned.length = 0;
    return this;
  }
}

/** A NUL-terminated copy of `text` for char* fields. Embedded NULs would silently cut the string, so they throw. */
export function cString(text: string, what: string): Buffer {
  if (text.includes('\0')) throw new SysArgumentError(`${what}: ${JSON.stringify(text)} contains a NUL byte`);
  return Buffer.from(`${text}\0`, 'utf8');
}
