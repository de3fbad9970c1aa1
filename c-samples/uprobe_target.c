/*
 * uprobe_target.c: the user-space program the uprobe samples probe (built for the host by `make`, not committed:
 * a native binary depends on the host's architecture and compiler). `uprobe_target N` calls target_add(i, 1) for
 * i = 0 … N-1 and prints the sum of the results.
 */
#include <stdio.h>
#include <stdlib.h>

/* noinline and used: the function must exist, with its own symbol, for a probe to hit it once per call. */
__attribute__((noinline, used)) long target_add(long a, long b)
{
	__asm__ volatile("" ::: "memory");
	return a + b;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1, sum = 0;

	for (long i = 0; i < n; i++)
		sum += target_add(i, 1);
	printf("%ld\n", sum);
	return 0;
}
