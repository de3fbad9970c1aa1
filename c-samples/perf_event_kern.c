/*
 * perf_event_kern.c: a perf event counter.
 * Demonstrates: a "perf_event" section (attached with PERF_EVENT_IOC_SET_BPF to a perf event fd, e.g. a
 * software cpu-clock event), bpf_get_smp_processor_id, and a legacy ARRAY map (cpu_hits) keyed by CPU number so
 * a test can read which CPUs the event fired on.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

#define MAX_CPUS 128

struct bpf_map_def SEC("maps") cpu_hits = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = MAX_CPUS,
};

SEC("perf_event")
int count_on_cpu(void *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 *hits = bpf_map_lookup_elem(&cpu_hits, &cpu);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
