/*
 * loader_policy_kern.c: an object written for its own project's loader, as large projects ship them.
 * Demonstrates metadata only that loader understands, which inspection must show rather than refuse:
 * - policy_map is pinned with pinning value 16, a convention of the project's loader (libbpf knows 0 and 1);
 * - per_cpu_later has max_entries 0: the project's loader sets it to the CPU count at run time;
 * - the program's section "handle_ingress" names no program type (the loader's command line gives it).
 * `bpf-load --dump` shows each with a note; loading names the pinning it cannot honour.
 */
#include <linux/bpf.h>
#include "bpf_modern.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 16);
	__uint(pinning, 16);
} policy_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 0);
} per_cpu_later SEC(".maps");

SEC("handle_ingress")
int handle(struct __sk_buff *skb)
{
	u32 key = bpf_get_smp_processor_id();
	u64 *value = bpf_map_lookup_elem(&per_cpu_later, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
	value = bpf_map_lookup_elem(&policy_map, &key);
	return value ? 2 : 0;
}

char _license[] SEC("license") = "GPL";
