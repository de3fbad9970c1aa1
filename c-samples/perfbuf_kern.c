/*
 * perfbuf_kern.c: a perf event array producer, like the kernel's samples/bpf trace_output (BTF object).
 * A socket filter on the interface sends one `struct event` per outgoing packet through `packets` (max_entries 0:
 * the loader gives it one slot per CPU): the packet's length and IP protocol (0 when not IPv4). It returns 0, so the
 * raw socket it is attached to keeps nothing: the packets themselves go on undisturbed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <stddef.h>
#include "bpf_events.h"

struct event {
	__u32 len;
	__u32 protocol;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} packets SEC(".maps");

/* Taking `struct event *` also puts the type in the object's BTF, where user space finds it by name. */
static __noinline void send_event(struct __sk_buff *skb, struct event *e)
{
	bpf_perf_event_output(skb, &packets, BPF_F_CURRENT_CPU, e, sizeof(*e));
}

SEC("socket")
int packet_lengths(struct __sk_buff *skb)
{
	struct event e = { .len = skb->len, .protocol = 0 };

	if (skb->pkt_type != PACKET_OUTGOING)
		return 0;
	if (skb->protocol == bpf_htons(ETH_P_IP))
		e.protocol = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	send_event(skb, &e);
	return 0;
}

char _license[] SEC("license") = "GPL";
