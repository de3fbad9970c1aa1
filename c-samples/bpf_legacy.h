/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf_legacy.h: our classic-style BPF program header (the samples/bpf era, before libbpf's bpf_helpers.h).
 *
 * - SEC() puts a program or map in a named ELF section; the loader derives program types from those names.
 * - struct bpf_map_def is the 28-byte legacy map definition read from the "maps" section, one per map symbol.
 * - Helpers are function pointers initialised with their BPF_FUNC_* number: clang turns a call through such a
 *   constant pointer into `call <number>`, so no relocation is needed.
 * - load_byte/half/word are the LD_ABS packet loads (socket filters only): llvm.bpf.load.* intrinsics.
 *
 * Uses only the kernel uapi headers (linux-libc-dev).
 */
#ifndef BPF_LOAD_SAMPLES_BPF_LEGACY_H
#define BPF_LOAD_SAMPLES_BPF_LEGACY_H

#include <linux/types.h>
#include <linux/bpf.h>

#define SEC(NAME) __attribute__((section(NAME), used))

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

/* Legacy map definition: the loader takes one of these per symbol in "maps". inner_map_idx names (for a
 * map-in-map) the template inner map by its index among the map symbols sorted by offset. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int inner_map_idx;
	unsigned int numa_node;
};

/* Helpers, in the classic function-pointer style. */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) =
	(void *) BPF_FUNC_map_lookup_elem;
static int (*bpf_map_update_elem)(void *map, const void *key, const void *value, unsigned long long flags) =
	(void *) BPF_FUNC_map_update_elem;
static int (*bpf_map_delete_elem)(void *map, const void *key) =
	(void *) BPF_FUNC_map_delete_elem;
static int (*bpf_trace_printk)(const char *fmt, int fmt_size, ...) =
	(void *) BPF_FUNC_trace_printk;
static void (*bpf_tail_call)(void *ctx, void *map, int index) =
	(void *) BPF_FUNC_tail_call;
static unsigned int (*bpf_get_smp_processor_id)(void) =
	(void *) BPF_FUNC_get_smp_processor_id;
static unsigned long long (*bpf_ktime_get_ns)(void) =
	(void *) BPF_FUNC_ktime_get_ns;
static unsigned long long (*bpf_get_current_pid_tgid)(void) =
	(void *) BPF_FUNC_get_current_pid_tgid;
static unsigned int (*bpf_get_prandom_u32)(void) =
	(void *) BPF_FUNC_get_prandom_u32;
static int (*bpf_sock_map_update)(void *ctx, void *map, void *key, unsigned long long flags) =
	(void *) BPF_FUNC_sock_map_update;
static int (*bpf_sk_redirect_map)(void *ctx, void *map, int key, int flags) =
	(void *) BPF_FUNC_sk_redirect_map;
static int (*bpf_msg_redirect_map)(void *ctx, void *map, int key, int flags) =
	(void *) BPF_FUNC_msg_redirect_map;

/* The format string lives on the stack, not in .rodata: a legacy loader has no data sections to relocate. */
#define bpf_printk(fmt, ...)                                                   \
	({                                                                     \
		char ____fmt[] = fmt;                                          \
		bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__);     \
	})

/* LD_ABS packet loads: offsets are from the start of the packet, results are in host order. */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* Network-order constants that are right for both bpf (little-endian) and bpfeb targets; the uapi byteorder
 * headers are picked for the host, not for the BPF target. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define bpf_htons(x) ((__u16) __builtin_bswap16(x))
#else
#define bpf_htons(x) ((__u16) (x))
#endif

#endif /* BPF_LOAD_SAMPLES_BPF_LEGACY_H */
