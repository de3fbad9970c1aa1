// samples/bpf/sockex1_user.c against the object's generated skeleton:
//   npx bpf-load gen ../../c-samples/sockex1_kern.o --out sockex1_kern.ts && npx tsc && sudo node sockex1.js
import { open } from './sockex1_kern.js';

using skel = open();
skel.attach('bpf_prog1', { iface: 'lo' });
const bytes = skel.maps.my_map; // TypedMap<number, bigint>: IP protocol → bytes
for (let i = 0; i < 5; i++) {
  console.log(`TCP ${bytes.get(6)} UDP ${bytes.get(17)} ICMP ${bytes.get(1)} bytes`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
