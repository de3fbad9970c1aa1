/*
 * kprobe_kern.c: kprobe and kretprobe programs.
 * Demonstrates: "kprobe/<symbol>" and "kretprobe/<symbol>" sections (program type KPROBE; attached through a
 * perf event on the kprobe PMU or kprobe_events), and "kprobe/sys_nanosleep", the name a loader must rewrite to
 * the architecture's syscall wrapper (__x64_sys_nanosleep on x86_64). They load on a kernel without kprobes, but
 * attaching fails there. probe_hits counts: [0] do_nanosleep entry, [1] do_nanosleep return, [2] syscall entry.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") probe_hits = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 3,
};

static inline void count(u32 slot)
{
	u64 *hits = bpf_map_lookup_elem(&probe_hits, &slot);

	if (hits)
		__sync_fetch_and_add(hits, 1);
}

SEC("kprobe/do_nanosleep")
int enter_do_nanosleep(void *ctx)
{
	count(0);
	return 0;
}

SEC("kretprobe/do_nanosleep")
int exit_do_nanosleep(void *ctx)
{
	count(1);
	return 0;
}

SEC("kprobe/sys_nanosleep")
int enter_sys_nanosleep(void *ctx)
{
	count(2);
	return 0;
}

char _license[] SEC("license") = "GPL";
u32 _version SEC("version") = 0x061200; /* kprobes needed a matching version before Linux 5.0 */
