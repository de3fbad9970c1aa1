/*
 * floor.c: the C side of row group (l) (and row (j)'s in-process ring buffer reference), built as a shared library and called once per timed stretch from the Node
 * process itself (through koffi), so that C and JavaScript are measured in the same process, at the same moment,
 * under the same load: each function runs COUNT calls and returns a checksum. The per-call floor of a bpf(2) call
 * from Node is then koffi's call plus the same kernel work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

long floor_getpid(long count)
{
	long sum = 0;
	for (long i = 0; i < count; i++)
		sum += syscall(SYS_getpid);
	return sum;
}

/* bpf_map_lookup_elem on keys cycling 0..entries-1, as bench/c/lookup.c does. */
long floor_lookup(int map_fd, long count, __u32 entries)
{
	long sum = 0;
	for (long i = 0; i < count; i++) {
		__u32 key = (__u32)(i % entries);
		__u64 value;
		if (bpf_map_lookup_elem(map_fd, &key, &value) == 0)
			sum += (long)value;
	}
	return sum;
}

/* bpf_prog_test_run_opts on a 64-byte frame, the packet taken back into 576 bytes, as events.c's run_once. */
long floor_test_run(int prog_fd, long count)
{
	unsigned char frame[64] = { 0 };
	unsigned char out[64 + 512];
	long sum = 0;
	for (long i = 0; i < count; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);
		if (bpf_prog_test_run_opts(prog_fd, &opts) == 0)
			sum += out[0] + opts.data_size_out + opts.retval;
	}
	return sum;
}

/*
 * Row (j)'s in-process reference: ring_buffer__consume over the ring of a ring buffer map, the same callback as
 * events.c's. floor_ring_open(map_fd) sets it up (0, or -errno); floor_ring_consume() returns the nanoseconds one
 * consume took, timed here so koffi's call is not in it, and floor_ring_records() the records it handed out;
 * floor_ring_checksum() keeps the callback's reads observable; floor_ring_free() lets the ring go.
 */
static struct ring_buffer *floor_rb;
static long floor_records;
static __u64 floor_checksum;

static int floor_on_ring(void *ctx, void *data, size_t size)
{
	floor_records++;
	floor_checksum += *(__u64 *)data + size;
	return 0;
}

void floor_ring_free(void)
{
	ring_buffer__free(floor_rb);
	floor_rb = NULL;
}

int floor_ring_open(int map_fd)
{
	floor_ring_free();
	floor_rb = ring_buffer__new(map_fd, floor_on_ring, NULL, NULL);
	return floor_rb ? 0 : -errno;
}

double floor_ring_consume(void)
{
	struct timespec a, b;
	floor_records = 0;
	if (!floor_rb)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ring_buffer__consume(floor_rb);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
}

long floor_ring_records(void)
{
	return floor_records;
}

unsigned long long floor_ring_checksum(void)
{
	return floor_checksum;
}
