/**
 * Classic filters on packet sockets, the way libpcap runs tcpdump's: an AF_PACKET socket bound to one interface,
 * the program attached with SO_ATTACH_FILTER (optionally locked with SO_LOCK_FILTER), and the frames that pass
 * read without blocking the event loop.
 */
import { readFileSync } from 'node:fs';
import { ARPHRD_LOOPBACK } from '../base/uapi.js';
import { encodeClassicProgram, type ClassicProgram, checkClassicProgram } from '../cbpf/index.js';
import {
  attachClassicSocketFilter, Fd, lockSocketFilter, openRawSocket, type ReceivedPacket, receivePacket, Sock,
} from '../sys/index.js';
import { checkSafeName } from './link.js';

export interface ClassicAttachOptions {
  /** SO_LOCK_FILTER afterwards: the filter can then be neither replaced nor removed for the socket's lifetime. */
  readonly lock?: boolean;
}

/** SO_ATTACH_FILTER on any socket fd: the kernel checks the program again and runs it on every packet received. */
export function attachClassicFilter(socketFd: number, program: ClassicProgram, options: ClassicAttachOptions = {}): void {
  checkClassicProgram(program, 'filter');
  attachClassicSocketFilter(socketFd, encodeClassicProgram(program));
  if (options.lock === true) lockSocketFilter(socketFd);
}


const REJECT_ALL: ClassicProgram = [{ code: 0x06, jt: 0, jf: 0, k: 0 }];

export interface SocketPacket extends ReceivedPacket {
  /** The captured bytes (a copy: the receive buffer is reused). */
  readonly data: Uint8Array;
  /** Receive time, milliseconds since the epoch with a fractional part. */
  readonly time: number;
  readonly direction: 'in' | 'out';
}

/** An AF_PACKET socket on one interface, filtered by a classic program. Close it to detach. */
export class PacketSocket implements Disposable {
  readonly iface: string;
  readonly #fd: Fd;
  readonly #buffer: Buffer;
  readonly #loopback: boolean;

  /**
   * Opens the socket with `program` already in place: a reject-all filter goes first and the queue is drained, so
   * no frame that arrived before the real filter is ever reported (libpcap does the same).
   */
  constructor(iface: string, program: ClassicProgram, options: ClassicAttachOptions & { readonly snaplen?: number } = {}) {
    this.iface = checkSafeName(iface, 'interface');
    checkClassicProgram(program, 'filter');
    this.#fd = new Fd(openRawSocket(this.iface), `packet socket on ${this.iface}`);
    try {
      attachClassicSocketFilter(this.fd, encodeClassicProgram(REJECT_ALL));
      this.#buffer = Buffer.alloc(options.snaplen ?? 262144);
      while (receivePacket(this.fd, this.#buffer) !== undefined);
      attachClassicFilter(this.fd, program, options);
    } catch (e) {
      this.#fd.closeQuietly();
      throw e;
    }
    this.#loopback = interfaceType(this.iface) === ARPHRD_LOOPBACK;
  }

  get fd(): number {
    return this.#fd.value;
  }

  /** The next queued frame, or undefined. On loopback each frame is seen leaving and arriving: like libpcap, only arriving counts. */
  receive(): SocketPacket | undefined {
    for (;;) {
      const got = receivePacket(this.fd, this.#buffer);
      if (got === undefined) return undefined;
      if (this.#loopback && got.pktType === Sock.PACKET_OUTGOING) continue;
      return {
        ...got, data: Uint8Array.prototype.slice.call(this.#buffer, 0, got.captured), time: performance.timeOrigin + performance.now(),
        direction: got.pktType === Sock.PACKET_OUTGOING ? 'out' : 'in',
      };
    }
  }

  /** Frames as they arrive, until `signal` aborts; polls every `pollMs` while the queue is empty. */
  async *packets(signal: AbortSignal, pollMs = 5): AsyncGenerator<SocketPacket> {
    while (!signal.aborted && !this.#fd.closed) {
      const packet = this.receive();
      if (packet !== undefined) {
        yield packet;
        continue;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        const timer = setTimeout(wake, pollMs);
        signal.addEventListener('abort', wake);
      });
    }
  }

  close(): void {
    this.#fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** ARPHRD_* of an interface (/sys/class/net/IFACE/type), or -1 when unreadable. */
function interfaceType(iface: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/type`, 'utf8').trim());
  } catch {
    return -1;
  }
}
