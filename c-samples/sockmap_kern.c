/*
 * sockmap_kern.c: sockmap programs.
 * Demonstrates: a legacy SOCKMAP (sock_map, 2 slots), "sockops" (attached to a cgroup with
 * BPF_CGROUP_SOCK_OPS; puts each newly established TCP socket into sock_map: passive side in slot 0, active side
 * in slot 1, with BPF_NOEXIST), "sk_skb/stream_parser" and "sk_skb/stream_verdict" (attached to sock_map with
 * BPF_SK_SKB_STREAM_PARSER / _VERDICT) and "sk_msg" (BPF_SK_MSG_VERDICT). Everything passes traffic through
 * unchanged. sock_stats counts: [0] passive established, [1] active established, [2] successful sock_map
 * updates, [3] sk_msg messages, [4] stream verdicts.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") sock_map = {
	.type = BPF_MAP_TYPE_SOCKMAP,
	.key_size = sizeof(u32),
	.value_size = sizeof(u32),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") sock_stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 5,
};

#define STAT_PASSIVE_ESTABLISHED 0
#define STAT_ACTIVE_ESTABLISHED 1
#define STAT_SOCK_MAP_UPDATES 2
#define STAT_MSGS 3
#define STAT_VERDICTS 4

static inline void count(u32 stat)
{
	u64 *value = bpf_map_lookup_elem(&sock_stats, &stat);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("sockops")
int sockmap_sockops(struct bpf_sock_ops *skops)
{
	u32 key;

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		key = STAT_PASSIVE_ESTABLISHED;
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		key = STAT_ACTIVE_ESTABLISHED;
		break;
	default:
		return 0;
	}
	count(key);
	/* The stat number doubles as the sock_map slot: passive socket in 0, active socket in 1. */
	if (bpf_sock_map_update(skops, &sock_map, &key, BPF_NOEXIST) == 0)
		count(STAT_SOCK_MAP_UPDATES);
	return 0;
}

SEC("sk_skb/stream_parser")
int sockmap_stream_parser(struct __sk_buff *skb)
{
	/* One message per skb. */
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int sockmap_stream_verdict(struct __sk_buff *skb)
{
	count(STAT_VERDICTS);
	return SK_PASS;
}

SEC("sk_msg")
int sockmap_msg(struct sk_msg_md *msg)
{
	count(STAT_MSGS);
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
