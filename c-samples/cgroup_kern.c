/*
 * cgroup_kern.c: cgroup programs.
 * Demonstrates: "cgroup/skb" (attached to a cgroup v2 directory for ingress or egress; counts packets in
 * skb_stats[0] and bytes in skb_stats[1]) and "cgroup/sock" (BPF_CGROUP_INET_SOCK_CREATE; counts socket
 * creations in sock_creates[0]). Both return 1, so traffic and sockets are always allowed.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") skb_stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") sock_creates = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 1,
};

SEC("cgroup/skb")
int count_skb(struct __sk_buff *skb)
{
	u32 packets_key = 0, bytes_key = 1;
	u64 *packets = bpf_map_lookup_elem(&skb_stats, &packets_key);
	u64 *bytes = bpf_map_lookup_elem(&skb_stats, &bytes_key);

	if (packets)
		__sync_fetch_and_add(packets, 1);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

SEC("cgroup/sock")
int count_sock_create(struct bpf_sock *sk)
{
	u32 key = 0;
	u64 *creates = bpf_map_lookup_elem(&sock_creates, &key);

	if (creates)
		__sync_fetch_and_add(creates, 1);
	return 1;
}

char _license[] SEC("license") = "GPL";
