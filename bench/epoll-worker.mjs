/**
 * The worker-thread alternative measured by bench/run.mjs (e): an epoll set of its own over the fd it is given, and a
 * synchronous epoll_wait per 'wait' message, answered with a message once the fd is readable. Posts once when set up.
 */
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const epollCreate1 = libc.func('int epoll_create1(int flags)');
const epollCtl = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
const epollWait = libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');
const close = libc.func('int close(int fd)');

const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLLIN = 1;
const event = Buffer.alloc(16); // large enough for the packed x86-64 (12 B) and the aligned (16 B) layout
event.writeUInt32LE(EPOLLIN, 0);
const epfd = epollCreate1(EPOLL_CLOEXEC);
if (epfd < 0 || epollCtl(epfd, EPOLL_CTL_ADD, workerData.fd, event) < 0) throw new Error(`epoll setup failed (errno ${koffi.errno()})`);
const events = Buffer.alloc(16 * 8);
parentPort.on('message', () => {
  parentPort.postMessage('waiting');
  epollWait(epfd, events, 8, -1);
  parentPort.postMessage('ready');
});
process.on('exit', () => close(epfd));
parentPort.postMessage('ready');
