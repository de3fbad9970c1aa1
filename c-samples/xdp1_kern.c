/*
 * xdp1_kern.c: per-protocol packet counter in the style of the kernel's samples/bpf/xdp1_kern.c.
 * Demonstrates: an "xdp1" section (the loader matches the "xdp" prefix), direct packet access bounded by
 * data_end, and a legacy PERCPU_ARRAY map (rxcnt, one u64 per CPU per IP protocol). Returns XDP_PASS, so
 * attaching it to lo changes nothing but the counters.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") rxcnt = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(long),
	.max_entries = 256,
};

SEC("xdp1")
int xdp_prog1(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	u32 ipproto = 0;
	long *value;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end)
			return XDP_PASS;
		ipproto = iph->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end)
			return XDP_PASS;
		ipproto = ip6h->nexthdr;
	}

	value = bpf_map_lookup_elem(&rxcnt, &ipproto);
	if (value)
		*value += 1;

	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
