// The five processes that call getpid() most on this machine in two seconds, watched through ringbuf_kern.o's
// generated skeleton: the ring buffer's records come decoded as its `struct event` (an Event: { pid, tid,
// count: bigint, comm }).
//   npx bpf-load gen ../../c-samples/ringbuf_kern.o --out ringbuf_kern.ts && npx tsc && sudo node getpid.js
import { open } from './ringbuf_kern.js';

using skel = open();
skel.programs.on_getpid.attach();
console.log('watching getpid() for 2 s');
const last = new Map<number, { comm: string; count: bigint }>();
// The reader ends when the signal fires (skel's close() would close it too).
for await (const { value } of skel.maps.events.read({ signal: AbortSignal.timeout(2000) })) {
  last.set(value.pid, { comm: value.comm, count: value.count });
}
const busiest = [...last].sort(([, a], [, b]) => (b.count > a.count ? 1 : b.count < a.count ? -1 : 0)).slice(0, 5);
for (const [pid, { comm, count }] of busiest) console.log(`pid ${pid} (${comm}): ${count} getpid() calls`);
console.log(`${last.size} processes in all`);
console.log(`records dropped: ${skel.globals.dropped.get()}`);
