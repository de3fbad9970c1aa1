import type { LoadedProgram } from '../load/index.js';
import { attachSocketFilter, detachSocketFilter, Fd, openRawSocket } from '../sys/index.js';
import { checkSafeName, type AttachOptions, type Link, onceLink } from './link.js';

/**
 * sockex1_user.c's way: a raw AF_PACKET socket bound to the interface, with the program attached by SO_ATTACH_BPF.
 * The program sees every frame on the interface for as long as the socket is open.
 */
export function attachSocket(program: LoadedProgram, options: AttachOptions): Link {
  const iface = checkSafeName(options.iface ?? 'lo', `program ${program.name}: interface`);
  const sock = new Fd(openRawSocket(iface), `socket on ${iface} for ${program.name}`);
  try {
    attachSocketFilter(sock.value, program.fd);
  } catch (e) {
    sock.closeQuietly();
    throw e;
  }
  return onceLink({
    kind: 'socket',
    program: program.name,
    target: iface,
  }, () => {
    try {
      detachSocketFilter(sock.value);
    } finally {
      sock.close();
    }
  });
}
