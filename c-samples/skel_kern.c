/*
 * skel_kern.c: every BTF kind in the types of maps, globals and programs, for `bpf-load gen` (typed skeletons).
 * Demonstrates: a hash map keyed by a struct (flow_key) whose value (struct kinds) holds every shape the generator
 * maps to TypeScript: 8/16/32/64-bit signed and unsigned integers, _Bool, char[N] (a string), __u8[N] (bytes),
 * arrays of structs, a named union, an anonymous union (flattened into the struct, as in C), an enum and an enum
 * with 64-bit values (ENUM64), bitfields (signed and unsigned, one crossing a byte boundary), float and double,
 * pointers (to a forward-declared struct: FWD, to a function: FUNC_PROTO, restrict-qualified, type_tag-ged),
 * volatile and const members, a typedef and a decl_tag. A per-CPU array (per-CPU values), .bss/.data globals
 * (VAR, DATASEC), .rodata constants and a ring buffer whose records are `struct event` (the convention `bpf-load
 * gen` follows) complete it; the programs are FUNCs.
 *
 * The getpid tracepoint adds `bump` to hits, copies flows[seed_key] to echo_key when seed_key is present (so a test
 * can write through one handle and read what the program saw) and sends an event (the caller's process id, command
 * name and last_color) through `events`; the socket filter counts packets per CPU in per_cpu_packets[0] and keeps
 * `snap_len` (a .rodata constant) bytes of each.
 */
#include <linux/bpf.h>
#include "bpf_modern.h"

static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *) BPF_FUNC_ringbuf_reserve;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *) BPF_FUNC_ringbuf_submit;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *) BPF_FUNC_get_current_comm;

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user_ptr __attribute__((btf_type_tag("user")))

enum color { COLOR_RED = 1, COLOR_GREEN = 2, COLOR_BLUE = 4 };
enum wide { WIDE_SMALL = 1, WIDE_HUGE = 0x100000000ULL };

struct opaque;
typedef __u32 counter_t;

struct point {
	__s32 x;
	__s32 y;
};

struct flow_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct kinds {
	__u64 packets;
	__s64 delta;
	__s16 small;
	__u8 byte;
	_Bool flag;
	char name[16];
	__u8 raw[4];
	struct point corners[2];
	union {
		__u32 word;
		__u8 octets[4];
	} addr;
	union {
		__u64 anon_wide;
		__u32 anon_narrow;
	};
	enum color color;
	enum wide wide;
	unsigned int low : 3, mid : 10, high : 19;
	int negative : 5;
	float ratio;
	double average;
	struct opaque *opaque;
	int (*callback)(void *ctx);
	char *restrict cursor;
	int __user_ptr *user_data;
	volatile __u32 seen;
	const __u32 fixed;
	counter_t counter __tag("counter");
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct flow_key);
	__type(value, struct kinds);
	__uint(max_entries, 64);
} flows SEC(".maps");

struct event {
	__u32 pid;
	enum color color;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} per_cpu_packets SEC(".maps");

__u64 hits;
struct flow_key seed_key;
struct flow_key echo_key;
__s32 bump = 1;
enum color last_color = COLOR_GREEN;
const volatile __u32 snap_len = 64;
const volatile char banner[8] = "skel";

/* Taking `struct event *` puts the type in the object's BTF, where the generator finds it by name. */
static __noinline void fill_event(struct event *e, enum color color)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->color = color;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	struct kinds *value;
	struct event *e;

	hits += bump;
	value = bpf_map_lookup_elem(&flows, &seed_key);
	if (value) {
		last_color = value->color;
		bpf_map_update_elem(&flows, &echo_key, value, BPF_ANY);
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		fill_event(e, last_color);
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&per_cpu_packets, &key);

	if (count)
		*count += 1;
	return snap_len + banner[0];
}

char _license[] SEC("license") = "GPL";
