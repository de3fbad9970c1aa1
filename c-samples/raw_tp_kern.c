/*
 * raw_tp_kern.c: a raw tracepoint counter.
 * Demonstrates: a "raw_tracepoint/<name>" section (attached with BPF_RAW_TRACEPOINT_OPEN by name, no tracefs
 * needed) and a one-slot legacy ARRAY map (raw_tp_count) incremented on every system call entry.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") raw_tp_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

SEC("raw_tracepoint/sys_enter")
int count_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	u32 key = 0;
	u64 *count = bpf_map_lookup_elem(&raw_tp_count, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
