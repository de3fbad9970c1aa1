/*
 * sockex1_kern.c: the kernel's classic samples/bpf/sockex1_kern.c.
 * Demonstrates: a legacy "maps" section map (my_map, ARRAY), a socket filter in a non-standard section name
 * ("socket1": the loader matches the "socket" prefix), an LD_ABS packet load (load_byte), a context field read
 * (skb->pkt_type, skb->len) and an atomic add into the map value. Counts bytes of outgoing packets per IP protocol.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include "bpf_legacy.h"

struct bpf_map_def SEC("maps") my_map = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(long),
	.max_entries = 256,
};

SEC("socket1")
int bpf_prog1(struct __sk_buff *skb)
{
	int index = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	long *value;

	if (skb->pkt_type != PACKET_OUTGOING)
		return 0;

	value = bpf_map_lookup_elem(&my_map, &index);
	if (value)
		__sync_fetch_and_add(value, skb->len);

	return 0;
}
char _license[] SEC("license") = "GPL";
