/*
 * map_in_map_kern.c: a legacy map-in-map.
 * Demonstrates: an ARRAY_OF_MAPS (outer_map) whose .inner_map_idx names its template map by index among the
 * "maps" symbols in offset order: misses is 0, inner_template is 1, outer_map is 2, so inner_map_idx = 1 (the
 * inner map must come first so the loader can create it before the outer map). The getpid tracepoint looks up
 * outer_map[0] and increments [0] of whatever inner map is stored there, or misses[0] when the slot is empty.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") misses = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") inner_template = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 4,
};

struct bpf_map_def SEC("maps") outer_map = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.key_size = sizeof(u32),
	.value_size = sizeof(u32), /* the inner map's fd, as user space writes it */
	.max_entries = 4,
	.inner_map_idx = 1, /* inner_template */
};

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_in_inner(void *ctx)
{
	u32 outer_key = 0, inner_key = 0;
	void *inner = bpf_map_lookup_elem(&outer_map, &outer_key);
	u64 *value;

	if (!inner) {
		value = bpf_map_lookup_elem(&misses, &inner_key);
		if (value)
			__sync_fetch_and_add(value, 1);
		return 0;
	}
	value = bpf_map_lookup_elem(inner, &inner_key);
	if (value)
		__sync_fetch_and_add(value, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
