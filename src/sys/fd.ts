/**
 * Fd: the owner of one kernel file descriptor. It closes once (a second close does nothing), says clearly when it is
 * used after close, and is Disposable. With tracking on (`Fd.track(true)`, or BPF_LOAD_TRACK_FDS=1 in the
 * environment) every open Fd remembers what it is and where it was created, so a test can name the ones it leaked.
 *
 * Where an Fd comes from: a sys wrapper returns a plain number (the syscall's result); the first owner wraps it at
 * once (`new Fd(n, 'link xdp_prog1')`) and hands the Fd on. Code that only borrows an fd for one call takes `.value`.
 */
import { SysArgumentError, SysError } from './errors.js';
import { rawClose } from './ffi.js';

export interface OpenFdRecord {
  readonly fd: number;
  readonly what: string;
  /** Stack at creation (only when tracking). */
  readonly createdAt: string;
}

const open = new Map<Fd, OpenFdRecord>();
let tracking = process.env['BPF_LOAD_TRACK_FDS'] === '1';

export class Fd implements Disposable {
  #value: number;
  /** What the fd refers to, for messages: `map my_map`, `link xdp_prog1 (lo)`. */
  readonly what: string;
  /** False for a borrowed view (Fd.borrow): its close() only stops this holder from using the number. */
  readonly owned: boolean;

  constructor(value: number, what: string, owned = true) {
    if (!Number.isInteger(value) || value < 0) throw new SysArgumentError(`${what}: ${value} is not a file descriptor`);
    this.#value = value;
    this.what = what;
    this.owned = owned;
    if (tracking && owned) open.set(this, { fd: value, what, createdAt: new Error().stack?.split('\n').slice(2).join('\n') ?? '' });
  }

  /**
   * A view of an fd someone else owns (a map fd a fixup hook supplied): usable like any Fd, but close() leaves the
   * descriptor open for its owner and tracking never counts it as a leak.
   */
  static borrow(value: number, what: string): Fd {
    return new Fd(value, `${what} (borrowed)`, false);
  }

  /**
   * Runs `body` with a fresh Fd for `value`, closing it however `body` ends: for fds that live within one call
   * (a socket opened to read one reply, an object fd opened to ask one question).
   */
  static with<T>(value: number, what: string, body: (fd: Fd) => T): T {
    const fd = new Fd(value, what);
    let result: T;
    try {
      result = body(fd);
    } catch (e) {
      fd.closeQuietly();
      throw e;
    }
    fd.close();
    return result;
  }

  /** The descriptor number, for one system call. Throws after close() instead of reaching whatever reuses the number. */
  get value(): number {
    if (this.#value < 0) throw new SysArgumentError(`${this.what}: used after its fd was closed`);
    return this.#value;
  }

  get closed(): boolean {
    return this.#value < 0;
  }

  /** close(2), once; later calls do nothing. A failing close is a SysError (the fd is released all the same). */
  close(): void {
    const fd = this.#value;
    if (fd < 0) return;
    this.#value = -1;
    open.delete(this);
    if (!this.owned) return;
    const ret = rawClose(fd);
    if (ret < 0) throw new SysError({ syscall: 'close', errno: -ret, detail: `${this.what} (fd ${fd})` });
  }

  /** close() for cleanup paths, where an earlier error is the one to report. */
  closeQuietly(): void {
    try {
      this.close();
    } catch {
      // Already failing, or nothing to do: the fd is released either way.
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Whether creation tracking is on. */
  static get tracking(): boolean {
    return tracking;
  }

  /** Turns creation tracking on or off (off by default: it costs a stack trace per fd). */
  static track(on: boolean): void {
    tracking = on;
    if (!on) open.clear();
  }

  /** The tracked Fds still open: what each is and where it was created. Empty when tracking is off. */
  static openFds(): OpenFdRecord[] {
    return [...open.values()];
  }
}
