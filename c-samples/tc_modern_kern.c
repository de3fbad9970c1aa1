/*
 * tc_modern_kern.c: an object for today's tc (iproute2 on libbpf): BTF-defined maps pinned by name, and a section
 * named freely ("ingress"): `tc filter add dev D ingress bpf da obj tc_modern_kern.o sec ingress` loads it as
 * sched_cls and pins packets at <bpffs>/tc/globals/packets. Tests load it with both tc and bpf-load: the same pin is
 * shared, and the kernel gives both programs the same tag. Counts every packet in packets[0]; lets it through.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include "bpf_modern.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 1);
	__uint(pinning, 1); /* LIBBPF_PIN_BY_NAME */
} packets SEC(".maps");

SEC("ingress")
int count_packets(struct __sk_buff *skb)
{
	u32 key = 0;
	u64 *value = bpf_map_lookup_elem(&packets, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
