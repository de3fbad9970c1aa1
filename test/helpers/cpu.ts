/** Pinning the calling thread to one CPU: one implementation, shared with bench row (j). */
export { onOneCpu, threadId } from '../../bench/cpu.mjs';
