/*
 * bad_verifier_kern.c: compiles, but the verifier must reject it.
 * Demonstrates: a verifier failure with a useful log: the result of bpf_map_lookup_elem may be NULL and is
 * dereferenced without a check ("invalid mem access 'map_value_or_null'"). A test loads it as a socket filter
 * and expects the load error to carry the verifier log. The map is a HASH on purpose: recent verifiers know that
 * an ARRAY lookup with a constant in-range key cannot fail, and would accept the program.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") values = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

SEC("socket")
int deref_without_null_check(struct __sk_buff *skb)
{
	u32 key = 0;
	u64 *value = bpf_map_lookup_elem(&values, &key);

	*value += skb->len; /* no NULL check: rejected */
	return 0;
}

char _license[] SEC("license") = "GPL";
