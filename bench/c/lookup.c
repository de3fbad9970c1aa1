/*
 * lookup.c: libbpf's side of benchmark (c). Creates an array map (u32 -> u64, ENTRIES entries), then times ROUNDS
 * rounds of COUNT bpf_map_lookup_elem calls with keys cycling 0..ENTRIES-1, printing nanoseconds per lookup of each
 * round, one per line.
 * Usage: lookup ENTRIES COUNT ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: lookup ENTRIES COUNT ROUNDS\n");
		return 2;
	}
	__u32 entries = (__u32)atoi(argv[1]);
	long count = atol(argv[2]);
	int rounds = atoi(argv[3]);
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_lookup", sizeof(__u32), sizeof(__u64), entries, NULL);
	if (fd < 0) {
		fprintf(stderr, "lookup: bpf_map_create: %s\n", strerror(-fd));
		return 1;
	}
	for (__u32 k = 0; k < entries; k++) {
		__u64 v = (__u64)k * 3;
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) {
			perror("lookup: bpf_map_update_elem");
			return 1;
		}
	}
	__u64 checksum = 0;
	for (long i = 0; i < count / 5; i++) {
		__u32 key = (__u32)(i % entries);
		__u64 value;
		if (bpf_map_lookup_elem(fd, &key, &value) == 0)
			checksum += value;
	}
	for (int r = 0; r < rounds; r++) {
		double start = now_ns();
		for (long i = 0; i < count; i++) {
			__u32 key = (__u32)(i % entries);
			__u64 value;
			if (bpf_map_lookup_elem(fd, &key, &value)) {
				perror("lookup: bpf_map_lookup_elem");
				return 1;
			}
			checksum += value;
		}
		printf("%.3f\n", (now_ns() - start) / count);
	}
	close(fd);
	/* Printed so the compiler cannot drop the lookups' results. */
	fprintf(stderr, "checksum %llu\n", (unsigned long long)checksum);
	return 0;
}
