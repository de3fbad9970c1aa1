/*
 * all_kinds_kern.c: one program of every kind the loader attaches, in one legacy object.
 * Demonstrates: section-name dispatch for socket, tracepoint, raw_tracepoint, xdp, perf_event, cgroup/skb,
 * cgroup/sock, sockops, sk_skb parser and verdict, sk_msg and kprobe, all sharing one legacy ARRAY map (counters,
 * map 0) plus a SOCKMAP (sock_map, map 1) for the sockmap programs. Every program only counts and lets
 * traffic through, so attaching everything at once is harmless. counters[i] counts runs of the program kind i
 * in the KIND_* list below.
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

#define KIND_SOCKET 0
#define KIND_TRACEPOINT 1
#define KIND_RAW_TRACEPOINT 2
#define KIND_XDP 3
#define KIND_PERF_EVENT 4
#define KIND_CGROUP_SKB 5
#define KIND_CGROUP_SOCK 6
#define KIND_SOCKOPS 7
#define KIND_SK_SKB_PARSER 8
#define KIND_SK_SKB_VERDICT 9
#define KIND_SK_MSG 10
#define KIND_KPROBE 11
#define KIND_COUNT 12

struct bpf_map_def SEC("maps") counters = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = KIND_COUNT,
};

struct bpf_map_def SEC("maps") sock_map = {
	.type = BPF_MAP_TYPE_SOCKMAP,
	.key_size = sizeof(u32),
	.value_size = sizeof(u32),
	.max_entries = 2,
};

static inline void count(u32 kind)
{
	u64 *value = bpf_map_lookup_elem(&counters, &kind);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("socket")
int all_socket(struct __sk_buff *skb)
{
	count(KIND_SOCKET);
	return skb->len; /* keep the whole packet */
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int all_tracepoint(void *ctx)
{
	count(KIND_TRACEPOINT);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int all_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx)
{
	count(KIND_RAW_TRACEPOINT);
	return 0;
}

SEC("xdp")
int all_xdp(struct xdp_md *ctx)
{
	count(KIND_XDP);
	return XDP_PASS;
}

SEC("perf_event")
int all_perf_event(void *ctx)
{
	count(KIND_PERF_EVENT);
	return 0;
}

SEC("cgroup/skb")
int all_cgroup_skb(struct __sk_buff *skb)
{
	count(KIND_CGROUP_SKB);
	return 1;
}

SEC("cgroup/sock")
int all_cgroup_sock(struct bpf_sock *sk)
{
	count(KIND_CGROUP_SOCK);
	return 1;
}

SEC("sockops")
int all_sockops(struct bpf_sock_ops *skops)
{
	u32 key;

	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		key = 0;
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		key = 1;
		break;
	default:
		return 0;
	}
	count(KIND_SOCKOPS);
	bpf_sock_map_update(skops, &sock_map, &key, BPF_NOEXIST);
	return 0;
}

SEC("sk_skb/stream_parser")
int all_sk_skb_parser(struct __sk_buff *skb)
{
	count(KIND_SK_SKB_PARSER);
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int all_sk_skb_verdict(struct __sk_buff *skb)
{
	count(KIND_SK_SKB_VERDICT);
	return SK_PASS;
}

SEC("sk_msg")
int all_sk_msg(struct sk_msg_md *msg)
{
	count(KIND_SK_MSG);
	return SK_PASS;
}

SEC("kprobe/do_nanosleep")
int all_kprobe(void *ctx)
{
	count(KIND_KPROBE);
	return 0;
}

char _license[] SEC("license") = "GPL";
