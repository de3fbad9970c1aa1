/*
 * countmap_kern.c: the seed's countmap program.
 * Demonstrates: a legacy ARRAY map (countmap, int -> int), a socket filter in the plain "socket" section, an
 * LD_ABS load of the IP protocol byte, and a lookup-then-update (bpf_map_update_elem with BPF_ANY) instead of an
 * atomic add. Counts packets per IP protocol seen by the socket it is attached to.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") countmap = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(int),
	.value_size = sizeof(int),
	.max_entries = 256,
};

SEC("socket")
int socket_prog(struct __sk_buff *skb)
{
	int proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	int one = 1;
	int *el = bpf_map_lookup_elem(&countmap, &proto);

	if (el)
		(*el)++;
	else
		el = &one;
	bpf_map_update_elem(&countmap, &proto, el, BPF_ANY);
	return 0;
}

char _license[] SEC("license") = "GPL";
