/*
 * iproute2_kern.c: an object written for iproute2 (`tc filter add dev D ingress bpf da obj F sec ingress`), with
 * iproute2's own map definition (struct bpf_elf_map, 36 bytes) instead of the kernel samples' one.
 * Demonstrates what only iproute2's loader understood:
 * - sections named freely ("ingress", "egress_mark", "1/1"): the type comes from the command (tc: sched_cls);
 * - pinning: counts in the global namespace (<bpffs>/tc/globals/counts), jmp_table in the object's namespace
 *   (<bpffs>/tc/<SHA-1 of this file>/jmp_table);
 * - map-in-map by id: outer's inner_id = 2 names inner_counts (id 2) as its template, and inner_counts' inner_idx = 1
 *   stores it in outer[1];
 * - a tail-call section "1/1" (iproute2's __section_tail(1, 1)): tail_one goes into the prog array with id 1 at key 1;
 * - a second maps section, "maps/extra".
 * ingress counts every packet in counts[0] and jumps to slot 1; tail_one counts in counts[1], in outer[1][0] and in
 * seen (keyed by packet length). Both let every packet through (TC_ACT_OK).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include "bpf_legacy.h"

/* iproute2's contract with its objects (include/bpf_elf.h there): our own copy of the layout. */
struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

#define PIN_NONE 0
#define PIN_OBJECT_NS 1
#define PIN_GLOBAL_NS 2

#define STRINGIFY(x) #x
#define __section_tail(ID, KEY) SEC(STRINGIFY(ID) "/" STRINGIFY(KEY))

struct bpf_elf_map SEC("maps") jmp_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u32),
	.max_elem = 4,
	.id = 1,
	.pinning = PIN_OBJECT_NS,
};

struct bpf_elf_map SEC("maps") counts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 2,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") inner_counts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 1,
	.id = 2,
	.inner_idx = 1,
};

struct bpf_elf_map SEC("maps") outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.size_key = sizeof(u32),
	.size_value = sizeof(u32),
	.max_elem = 2,
	.inner_id = 2,
};

struct bpf_elf_map SEC("maps/extra") seen = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(u32),
	.size_value = sizeof(u64),
	.max_elem = 64,
};

static __always_inline void bump(void *map, u32 key)
{
	u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("ingress")
int cls_ingress(struct __sk_buff *skb)
{
	bump(&counts, 0);
	bpf_tail_call(skb, &jmp_table, 1);
	return TC_ACT_OK;
}

__section_tail(1, 1)
int tail_one(struct __sk_buff *skb)
{
	u32 key = 1, len = skb->len;
	u64 one = 1, *value;
	void *inner;

	bump(&counts, 1);
	inner = bpf_map_lookup_elem(&outer, &key);
	if (inner)
		bump(inner, 0);
	value = bpf_map_lookup_elem(&seen, &len);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		bpf_map_update_elem(&seen, &len, &one, BPF_NOEXIST);
	return TC_ACT_OK;
}

SEC("egress_mark")
int cls_egress(struct __sk_buff *skb)
{
	skb->mark = 0x1f;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
