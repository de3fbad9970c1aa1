/*
 * sockex3_kern.c: tail calls in the style of the kernel's samples/bpf/sockex3_kern.c.
 * Demonstrates: a legacy PROG_ARRAY map (jmp_table, defined first so it is map 0, where old bpf_load.c looked
 * for it) and programs in "socket/N" sections, which the loader stores in jmp_table slot N; the main "socket"
 * program dispatches on the IP protocol with bpf_tail_call (TCP -> 0, UDP -> 1, anything else -> 2), and each
 * slot program counts packets under its own slot number in the legacy HASH map slot_hits.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") jmp_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u32),
	.max_entries = 8,
};

struct bpf_map_def SEC("maps") slot_hits = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 8,
};

static inline void count_slot(u32 slot)
{
	u64 one = 1;
	u64 *hits = bpf_map_lookup_elem(&slot_hits, &slot);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&slot_hits, &slot, &one, BPF_NOEXIST);
}

SEC("socket")
int dispatch(struct __sk_buff *skb)
{
	int proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));

	if (proto == IPPROTO_TCP)
		bpf_tail_call(skb, &jmp_table, 0);
	else if (proto == IPPROTO_UDP)
		bpf_tail_call(skb, &jmp_table, 1);
	else
		bpf_tail_call(skb, &jmp_table, 2);
	/* Reached only when the slot is empty. */
	return 0;
}

SEC("socket/0")
int slot_tcp(struct __sk_buff *skb)
{
	count_slot(0);
	return 0;
}

SEC("socket/1")
int slot_udp(struct __sk_buff *skb)
{
	count_slot(1);
	return 0;
}

SEC("socket/2")
int slot_other(struct __sk_buff *skb)
{
	count_slot(2);
	return 0;
}

char _license[] SEC("license") = "GPL";
