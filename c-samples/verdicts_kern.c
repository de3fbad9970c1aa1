/*
 * verdicts_kern.c: one predicate, three packet program types, for `bpf-load FILE --test-run PROG --pcap CAPTURE`.
 * The predicate is tcpdump's `udp` (what `tcpdump -d udp` compiles): an IPv4 frame of protocol 17, or an IPv6
 * frame whose next header is 17, directly or behind one fragment header (44). Untagged Ethernet only, as there.
 *  - xdp_drop_udp:    XDP_DROP for those frames, XDP_PASS for the rest;
 *  - tc_drop_udp:     TC_ACT_SHOT for those, TC_ACT_OK for the rest;
 *  - socket_keep_udp: keeps those whole (returns skb->len), drops the rest (0). It reads through SKF_NET_OFF, so
 *    it sees the same bytes on a packet socket (which starts at the link header) and under BPF_PROG_TEST_RUN
 *    (which starts socket filters at the network header).
 * `tcpdump -r CAPTURE udp` is the oracle for all three.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/filter.h>
#include "bpf_modern.h"

#define IPPROTO_UDP_ 17
#define IPV6_FRAGMENT_ 44

static __always_inline int udp_at(__u16 ethertype, const __u8 *net, const void *end)
{
	if (ethertype == bpf_htons(ETH_P_IP))
		return (void *)(net + 10) <= end && net[9] == IPPROTO_UDP_;
	if (ethertype != bpf_htons(ETH_P_IPV6) || (void *)(net + 7) > end)
		return 0;
	if (net[6] == IPPROTO_UDP_)
		return 1;
	return net[6] == IPV6_FRAGMENT_ && (void *)(net + 41) <= end && net[40] == IPPROTO_UDP_;
}

static __always_inline int udp_frame(const void *data, const void *end)
{
	const struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	return udp_at(eth->h_proto, (const __u8 *)(eth + 1), end);
}

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
	return udp_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_drop_udp(struct __sk_buff *skb)
{
	return udp_frame((void *)(long)skb->data, (void *)(long)skb->data_end) ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("socket")
int socket_keep_udp(struct __sk_buff *skb)
{
	/* Out-of-bounds LD_ABS loads end the program with 0 (drop), as tcpdump's classic program does. */
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return load_byte(skb, SKF_NET_OFF + 9) == IPPROTO_UDP_ ? skb->len : 0;
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return 0;
	if (load_byte(skb, SKF_NET_OFF + 6) == IPPROTO_UDP_)
		return skb->len;
	if (load_byte(skb, SKF_NET_OFF + 6) == IPV6_FRAGMENT_ && load_byte(skb, SKF_NET_OFF + 40) == IPPROTO_UDP_)
		return skb->len;
	return 0;
}

char _license[] SEC("license") = "GPL";
