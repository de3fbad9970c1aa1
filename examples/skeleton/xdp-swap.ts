// test_run_kern.o's xdp_swap run on a made-up frame with BPF_PROG_TEST_RUN, through the generated skeleton: the XDP
// action comes back by name, the packet as the program left it.
//   npx bpf-load gen ../../c-samples/test_run_kern.o --out test_run_kern.ts && npx tsc && sudo node xdp-swap.js
import { open } from './test_run_kern.js';

using skel = open();
const hex = (b: Uint8Array, from: number, to: number) => Buffer.from(b.subarray(from, to)).toString('hex');
// Ethernet: destination, source, EtherType IPv4, then zeroes.
const frame = Buffer.from(`0200000000010200000000020800${'00'.repeat(50)}`, 'hex');
const { action, data, durationNs } = skel.programs.xdp_swap.testRun({ data: frame });
console.log(`in:  dst ${hex(frame, 0, 6)} src ${hex(frame, 6, 12)}`);
console.log(`out: dst ${hex(data, 0, 6)} src ${hex(data, 6, 12)} → ${action} (${durationNs} ns)`);
