/*
 * uprobe_kern.c: a uprobe and a uretprobe on target_add() of c-samples/uprobe_target (BTF object; the path is
 * relative: run bpf-load from the project root, where `make` builds the target).
 * Each call sends a `struct event` with its two arguments, each return one with the result, through `calls`.
 * Register offsets are x86-64's struct pt_regs (di, si: first two arguments; ax: return value); on arm64 rebuild
 * with -DARG0_OFFSET=0 -DARG1_OFFSET=8 -DRET_OFFSET=0 (user_pt_regs.regs[0], regs[1]).
 */
#include <linux/bpf.h>
#include "bpf_events.h"

#ifndef ARG0_OFFSET
#define ARG0_OFFSET 112
#define ARG1_OFFSET 104
#define RET_OFFSET 80
#endif
#define REG(ctx, offset) (*(long *)((char *)(ctx) + (offset)))

struct event {
	__u32 pid;
	__u32 is_return;
	__s64 a;
	__s64 b;
	__s64 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} calls SEC(".maps");

__u64 entries;
__u64 returns;

/* Taking `struct event *` also puts the type in the object's BTF, where user space finds it by name. */
static __noinline void send(struct event *e)
{
	bpf_ringbuf_output(&calls, e, sizeof(*e), 0);
}

SEC("uprobe/c-samples/uprobe_target:target_add")
int on_target_add(void *ctx)
{
	struct event e = { .pid = bpf_get_current_pid_tgid() >> 32, .a = REG(ctx, ARG0_OFFSET), .b = REG(ctx, ARG1_OFFSET) };

	__sync_fetch_and_add(&entries, 1);
	send(&e);
	return 0;
}

SEC("uretprobe/c-samples/uprobe_target:target_add")
int on_target_add_return(void *ctx)
{
	struct event e = { .pid = bpf_get_current_pid_tgid() >> 32, .is_return = 1, .ret = REG(ctx, RET_OFFSET) };

	__sync_fetch_and_add(&returns, 1);
	send(&e);
	return 0;
}

char _license[] SEC("license") = "GPL";
