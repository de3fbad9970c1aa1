/*
 * bashreadline_kern.c: the command lines typed into every bash, like bcc's and libbpf-tools' bashreadline (BTF
 * object). A uretprobe on readline() in /bin/bash (Debian's bash exports it in .dynsym) reads the returned string
 * from the process's memory and sends it with the pid and command name through `lines`.
 * RET_OFFSET is x86-64's pt_regs->ax; on arm64 rebuild with -DRET_OFFSET=0 (user_pt_regs.regs[0]).
 */
#include <linux/bpf.h>
#include "bpf_events.h"

#ifndef RET_OFFSET
#define RET_OFFSET 80
#endif

static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *unsafe_ptr) =
	(void *) BPF_FUNC_probe_read_user_str;

struct event {
	__u32 pid;
	char comm[16];
	char line[80];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} lines SEC(".maps");

/* Taking `struct event *` also puts the type in the object's BTF, where user space finds it by name. */
static __noinline int fill(struct event *e, const char *line)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return bpf_probe_read_user_str(e->line, sizeof(e->line), line);
}

SEC("uretprobe//bin/bash:readline")
int printret(void *ctx)
{
	const char *line = *(const char **)((char *)ctx + RET_OFFSET);
	struct event *e;

	if (!line)
		return 0;
	e = bpf_ringbuf_reserve(&lines, sizeof(*e), 0);
	if (!e)
		return 0;
	if (fill(e, line) <= 1)
		bpf_ringbuf_discard(e, 0); /* an empty line */
	else
		bpf_ringbuf_submit(e, 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
