/*
 * events.c: libbpf's side of benchmark (e). Loads c-samples/test_run_kern.o and, in ROUNDS rounds, has a program
 * produce BATCH 64-byte records with bpf_prog_test_run_opts(repeat = BATCH), then times consuming them:
 *   ring  ROUNDS BATCH   xdp_ring into the ring buffer, ring_buffer__consume()
 *   perf  ROUNDS BATCH   xdp_perf into the perf event array (64 pages per CPU), perf_buffer__consume()
 *   run   ROUNDS COUNT   COUNT single bpf_prog_test_run_opts() calls of xdp_swap on a 64-byte frame, each taking the
 *                        packet after the run into data_out (576 bytes offered: what program.testRun() offers, and
 *                        returns; bpftool prog run asks for it too)
 * Prints nanoseconds per record (per run for `run`) of each round, one per line; the record count checks go to
 * stderr and a wrong count exits 1.
 * Usage: events OBJECT ring|perf|run ROUNDS BATCH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long records;
static __u64 checksum;

static int on_ring(void *ctx, void *data, size_t size)
{
	records++;
	checksum += *(__u64 *)data + size;
	return 0;
}

static void on_perf(void *ctx, int cpu, void *data, __u32 size)
{
	records++;
	checksum += *(__u64 *)data + size;
}

static void on_lost(void *ctx, int cpu, __u64 count)
{
	fprintf(stderr, "events: lost %llu records on cpu %d\n", (unsigned long long)count, cpu);
}

static int run_batch(int prog_fd, int repeat)
{
	unsigned char frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = repeat);
	return bpf_prog_test_run_opts(prog_fd, &opts);
}

static int run_once(int prog_fd)
{
	unsigned char frame[64] = { 0 };
	unsigned char out[64 + 512];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (!err)
		checksum += out[0] + opts.data_size_out + opts.retval;
	return err;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: events OBJECT ring|perf|run ROUNDS BATCH\n");
		return 2;
	}
	const char *mode = argv[2];
	int rounds = atoi(argv[3]);
	int batch = atoi(argv[4]);
	libbpf_set_print(NULL);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "events: cannot load %s\n", argv[1]);
		return 1;
	}
	const char *prog_name = strcmp(mode, "ring") == 0 ? "xdp_ring" : strcmp(mode, "perf") == 0 ? "xdp_perf" : "xdp_swap";
	int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, prog_name));
	struct ring_buffer *rb = NULL;
	struct perf_buffer *pb = NULL;
	if (strcmp(mode, "ring") == 0)
		rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "ring")), on_ring, NULL, NULL);
	else if (strcmp(mode, "perf") == 0)
		pb = perf_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "perf")), 64, on_perf, on_lost, NULL, NULL);
	if ((strcmp(mode, "ring") == 0 && !rb) || (strcmp(mode, "perf") == 0 && !pb)) {
		fprintf(stderr, "events: cannot set up the %s buffer\n", mode);
		return 1;
	}
	for (int r = 0; r < rounds + 1; r++) {
		double elapsed;
		if (strcmp(mode, "run") == 0) {
			double start = now_ns();
			for (int i = 0; i < batch; i++)
				if (run_once(prog_fd)) {
					perror("events: bpf_prog_test_run_opts");
					return 1;
				}
			elapsed = now_ns() - start;
		} else {
			if (run_batch(prog_fd, batch)) {
				perror("events: bpf_prog_test_run_opts");
				return 1;
			}
			records = 0;
			double start = now_ns();
			if (rb)
				ring_buffer__consume(rb);
			else
				perf_buffer__consume(pb);
			elapsed = now_ns() - start;
			if (records != batch) {
				fprintf(stderr, "events: consumed %ld records, expected %d\n", records, batch);
				return 1;
			}
		}
		if (r > 0) /* the first round warms caches and page tables */
			printf("%.3f\n", elapsed / batch);
	}
	fprintf(stderr, "checksum %llu\n", (unsigned long long)checksum);
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}
