/*
 * hist_kern.c: log2 histograms in the two shapes BPF tools keep them.
 * Demonstrates: a hash keyed by log2 slot (samples/bpf's tracex2/lathist style: `bpf-load --hist pid_slots` draws
 * it) and a value typed `struct hist { __u32 slots[N]; }` (libbpf-tools' shape: the live view draws it by itself).
 * Each getpid() counts the caller's pid in both, in slot floor(log2(pid)).
 */
#include <linux/bpf.h>
#include "bpf_modern.h"

#define MAX_SLOTS 26

struct hist {
	u32 slots[MAX_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 64);
} pid_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, struct hist);
	__uint(max_entries, 1);
} pid_hist SEC(".maps");

/* floor(log2(v)), 0 for 0 and 1: branch-free, as bcc and libbpf-tools compute it. */
static __always_inline u32 log2_u32(u32 v)
{
	u32 r, shift;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_pid(void *ctx)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	u32 slot = log2_u32(pid);
	u32 zero = 0;
	u64 one = 1, *count;
	struct hist *h;

	count = bpf_map_lookup_elem(&pid_slots, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&pid_slots, &slot, &one, BPF_NOEXIST);

	h = bpf_map_lookup_elem(&pid_hist, &zero);
	if (h && slot < MAX_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
