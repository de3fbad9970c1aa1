/*
 * btf_targets_kern.c: programs the kernel verifies against a function or tracepoint in its own BTF (BTF object).
 * Demonstrates: fentry/fexit on do_nanosleep and tp_btf/sched_switch. The loader resolves each target in
 * /sys/kernel/btf/vmlinux (attach_btf_id) and attaches them with BPF_RAW_TRACEPOINT_OPEN; no kprobes involved.
 * Counts in .bss: entries and exits of do_nanosleep (a `sleep` process makes both), context switches.
 */
#include <linux/bpf.h>
#include "bpf_modern.h"

__u64 nanosleep_entries;
__u64 nanosleep_exits;
__u64 context_switches;

/* Tracing programs get their arguments as an array of u64; these need none of them. */
SEC("fentry/do_nanosleep")
int on_nanosleep_entry(__u64 *ctx)
{
	__sync_fetch_and_add(&nanosleep_entries, 1);
	return 0;
}

SEC("fexit/do_nanosleep")
int on_nanosleep_exit(__u64 *ctx)
{
	__sync_fetch_and_add(&nanosleep_exits, 1);
	return 0;
}

SEC("tp_btf/sched_switch")
int on_sched_switch(__u64 *ctx)
{
	__sync_fetch_and_add(&context_switches, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
