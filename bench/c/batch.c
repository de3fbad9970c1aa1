/*
 * batch.c: the physical limit of benchmark (d). Reads every entry of an existing map (by id) ROUNDS times with the
 * bare BPF_MAP_LOOKUP_BATCH loop, CHUNK entries per call, straight into two column buffers sized for the whole map
 * (what readAllRaw() returns), and prints each round's milliseconds and the entry count, one round per line.
 * Usage: batch MAP_ID CHUNK ROUNDS
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: batch MAP_ID CHUNK ROUNDS\n");
		return 2;
	}
	int fd = bpf_map_get_fd_by_id((__u32)atoi(argv[1]));
	if (fd < 0) {
		fprintf(stderr, "batch: bpf_map_get_fd_by_id: %s\n", strerror(errno));
		return 1;
	}
	__u32 chunk = (__u32)atoi(argv[2]);
	int rounds = atoi(argv[3]);
	struct bpf_map_info info = {0};
	__u32 info_len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		fprintf(stderr, "batch: bpf_obj_get_info_by_fd: %s\n", strerror(errno));
		return 1;
	}
	char *keys = malloc((size_t)info.max_entries * info.key_size);
	char *values = malloc((size_t)info.max_entries * info.value_size);
	__u64 in_batch = 0, out_batch = 0;
	if (keys == NULL || values == NULL) {
		fprintf(stderr, "batch: out of memory\n");
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		double start = now_ms();
		size_t total = 0;
		int first = 1;
		for (;;) {
			__u32 count = chunk;
			if (total + count > info.max_entries)
				count = info.max_entries - (__u32)total;
			int err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys + total * info.key_size,
						       values + total * info.value_size, &count, NULL);
			total += count;
			if (err && errno == ENOENT)
				break;
			if (err) {
				fprintf(stderr, "batch: bpf_map_lookup_batch: %s\n", strerror(errno));
				return 1;
			}
			in_batch = out_batch;
			first = 0;
			if (count == 0 || total >= info.max_entries) {
				/* A full map: one more call confirms the end, as the loop in readAllRaw() does. */
				__u32 none = chunk;
				err = bpf_map_lookup_batch(fd, &in_batch, &out_batch, keys, values, &none, NULL);
				if (!(err && errno == ENOENT)) {
					fprintf(stderr, "batch: the map holds more than max_entries entries?\n");
					return 1;
				}
				break;
			}
		}
		printf("%.3f %zu\n", now_ms() - start, total);
	}
	return 0;
}
