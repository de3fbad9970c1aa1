/*
 * load.c: libbpf's side of benchmark (a). Opens, loads and closes one object N times in this process and prints
 * the per-iteration times in microseconds, one per line, so process start-up is not part of the figure.
 * The first (untimed) iteration pays libbpf's one-time kernel feature probes, as bpf-load's warm-up pays JIT costs.
 * Usage: load FILE ITERATIONS
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level; (void)fmt; (void)args;
	return 0;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int load_once(const char *file)
{
	struct bpf_object *obj = bpf_object__open_file(file, NULL);
	long err = libbpf_get_error(obj);
	if (err) {
		fprintf(stderr, "load: %s: open: %s\n", file, strerror((int)-err));
		return -1;
	}
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	if (err) {
		fprintf(stderr, "load: %s: load: %s\n", file, strerror((int)-err));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: load FILE ITERATIONS\n");
		return 2;
	}
	int iterations = atoi(argv[2]);
	libbpf_set_print(quiet);
	if (load_once(argv[1]))
		return 1;
	for (int i = 0; i < iterations; i++) {
		double start = now_us();
		if (load_once(argv[1]))
			return 1;
		printf("%.3f\n", now_us() - start);
	}
	printf("libbpf %u.%u\n", libbpf_major_version(), libbpf_minor_version());
	return 0;
}
