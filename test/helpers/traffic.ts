import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

/** Sends `count` UDP datagrams from this process to itself over 127.0.0.1 and waits until all arrived. */
export async function udpToSelf(count: number, size = 64): Promise<void> {
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const { port } = sock.address();
    let got = 0;
    const all = new Promise<void>((resolve) => sock.on('message', () => {
      if (++got === count) resolve();
    }));
    for (let i = 0; i < count; i++) sock.send(Buffer.alloc(size, i), port, '127.0.0.1');
    await Promise.race([all, sleep(5000).then(() => { throw new Error(`only ${got}/${count} datagrams came back`); })]);
  } finally {
    sock.close();
  }
}
