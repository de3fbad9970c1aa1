/*
 * ringbuf_kern.c: a ring buffer producer (BTF object).
 * Every getpid() sends one `struct event` through the `events` ring buffer: the caller's process and thread ids, how
 * many times this process has called getpid() since the object was loaded (per-process counter in `calls`), and its
 * command name. A record that finds the ring full is counted in `dropped` instead.
 */
#include <linux/bpf.h>
#include "bpf_events.h"

struct event {
	__u32 pid;
	__u32 tid;
	__u64 count;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

__u64 dropped;

/* A function taking `struct event *` also puts the type in the object's BTF, where user space finds it by name. */
static __noinline void fill_event(struct event *e, __u64 id, __u64 count)
{
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->count = count;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u64 one = 1, *count;
	struct event *e;

	count = bpf_map_lookup_elem(&calls, &pid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&calls, &pid, &one, BPF_NOEXIST);
	count = bpf_map_lookup_elem(&calls, &pid);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	fill_event(e, id, count ? *count : 0);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
