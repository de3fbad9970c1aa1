/*
 * partial_kern.c: an object of which the kernel accepts some programs and refuses one.
 * Demonstrates per-program control: --program loads only the named ones (and the maps they use), --keep-going loads
 * and attaches what the verifier accepts and reports the refusal. good_a counts packets in hits[0], good_b in
 * hits[1] (both socket filters keeping whole packets); rejected dereferences a lookup result without a NULL check.
 * unused_by_a is used only by good_b, so loading good_a alone does not create it.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") hits = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") unused_by_a = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

static __always_inline void bump(u32 key)
{
	u64 *value = bpf_map_lookup_elem(&hits, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("socket/a")
int good_a(struct __sk_buff *skb)
{
	bump(0);
	return skb->len;
}

SEC("socket/b")
int good_b(struct __sk_buff *skb)
{
	u32 key = 0;
	u64 *seen = bpf_map_lookup_elem(&unused_by_a, &key);

	if (seen)
		__sync_fetch_and_add(seen, 1);
	bump(1);
	return skb->len;
}

SEC("socket/c")
int rejected(struct __sk_buff *skb)
{
	u32 key = 0;
	u64 *value = bpf_map_lookup_elem(&unused_by_a, &key);

	*value += skb->len; /* no NULL check: the verifier refuses this program */
	return skb->len;
}

char _license[] SEC("license") = "GPL";
