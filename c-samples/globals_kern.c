/*
 * globals_kern.c: global variables and a shared subprogram (BTF object).
 * Demonstrates: .bss (hits), .data (data_var = 7) and .rodata (threshold = 3) as internal array maps accessed
 * through ld_imm64 map-value relocations, and a static __noinline subprogram in .text called from two programs
 * (BPF-to-BPF calls, so each program gets its own copy of add). The getpid tracepoint counts calls in hits; the
 * socket filter keeps data_var + threshold = 10 bytes of every packet.
 */
#include <linux/bpf.h>
#include "bpf_modern.h"

__u64 hits;
int data_var = 7;
const volatile int threshold = 3;

static __noinline int add(int a, int b)
{
	return a + b;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	hits = hits + add(1, 0);
	return 0;
}

SEC("socket")
int keep_prefix(struct __sk_buff *skb)
{
	return add(data_var, threshold);
}

char _license[] SEC("license") = "GPL";
