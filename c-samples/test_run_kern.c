/*
 * test_run_kern.c: XDP programs made to be run with BPF_PROG_TEST_RUN (BTF object).
 *  - xdp_swap: frames shorter than an Ethernet header are dropped; IPv4 frames get their MAC addresses swapped and
 *    go back out (XDP_TX); anything else passes.
 *  - xdp_ring: one 64-byte `struct record` per run through the `ring` ring buffer: a sequence number and the first
 *    56 bytes of the packet. A packet starting with 0xff has its record reserved then discarded. Records that do
 *    not fit are counted in `ring_dropped`.
 *  - xdp_perf: the same record through the `perf` perf event array, on the current CPU.
 * Deterministic producers for the event tests and benchmarks: N runs (`repeat`) make N records.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include "bpf_events.h"

struct record {
	__u64 seq;
	__u8 payload[56];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

__u64 ring_seq;
__u64 ring_dropped;
__u64 perf_seq;

SEC("xdp")
int xdp_swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if (data + sizeof(*eth) > end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_ring(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct record *r;

	if (data + sizeof(r->payload) > end)
		return XDP_DROP;
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (!r) {
		ring_dropped++;
		return XDP_PASS;
	}
	r->seq = ++ring_seq;
	__builtin_memcpy(r->payload, data, sizeof(r->payload));
	if (*(__u8 *)data == 0xff)
		bpf_ringbuf_discard(r, 0);
	else
		bpf_ringbuf_submit(r, 0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_perf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct record r;

	if (data + sizeof(r.payload) > end)
		return XDP_DROP;
	r.seq = ++perf_seq;
	__builtin_memcpy(r.payload, data, sizeof(r.payload));
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &r, sizeof(r));
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
