/*
 * trace_hello_kern.c: a tracepoint program that prints through bpf_trace_printk.
 * Demonstrates: a "tracepoint/<category>/<event>" section, an object with no maps at all, a "version" section
 * (what pre-5.0 kernels checked for kprobes; a literal here so the object does not depend on the build host), and
 * a stack-built format string. Each getpid() makes trace_pipe show "bpf-load hello pid <tgid>".
 */
#include <linux/bpf.h>
#include "bpf_legacy.h"

SEC("tracepoint/syscalls/sys_enter_getpid")
int trace_getpid(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("bpf-load hello pid %d\n", pid);
	return 0;
}

char _license[] SEC("license") = "GPL";
u32 _version SEC("version") = 0x061200; /* LINUX_VERSION_CODE of 6.18.0 */
