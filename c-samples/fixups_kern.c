/*
 * fixups_kern.c: legacy map definitions that need the loader's help, as the kernel samples wrote them.
 * Demonstrates:
 * - map-in-maps declared with only key size and max entries (value_size 0): bpf_load.c created them with value
 *   size 4 (the inner map fd), so must we;
 * - a map whose max_entries is 0 because its own loader sets it at run time (sized_later): loading it needs a
 *   fixup (--max-entries sized_later=N), and without one the error says so.
 * On getpid the program counts in array_outer[0]'s and hash_outer[7]'s inner map [0], and in sized_later[pid].
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") inner_template = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") array_outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.key_size = sizeof(u32),
	.max_entries = 2,
	.inner_map_idx = 0, /* inner_template */
};

struct bpf_map_def SEC("maps") hash_outer = {
	.type = BPF_MAP_TYPE_HASH_OF_MAPS,
	.key_size = sizeof(u32),
	.max_entries = 8,
	.inner_map_idx = 0, /* inner_template */
};

struct bpf_map_def SEC("maps") sized_later = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 0, /* set by the loader */
};

static __always_inline void bump_inner(void *outer, u32 key)
{
	u32 zero = 0;
	void *inner = bpf_map_lookup_elem(outer, &key);
	u64 *value;

	if (!inner)
		return;
	value = bpf_map_lookup_elem(inner, &zero);
	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	u64 one = 1, *value;

	bump_inner(&array_outer, 0);
	bump_inner(&hash_outer, 7);
	value = bpf_map_lookup_elem(&sized_later, &pid);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		bpf_map_update_elem(&sized_later, &pid, &one, BPF_ANY);
	return 0;
}

char _license[] SEC("license") = "GPL";
