/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf_events.h: the helpers that send records to user space (ring buffers, perf event arrays), in the same
 * function-pointer style as bpf_legacy.h. Includes bpf_modern.h: the event samples use BTF-defined maps.
 */
#ifndef BPF_LOAD_SAMPLES_BPF_EVENTS_H
#define BPF_LOAD_SAMPLES_BPF_EVENTS_H

#include "bpf_modern.h"

static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) =
	(void *) BPF_FUNC_ringbuf_reserve;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) =
	(void *) BPF_FUNC_ringbuf_output;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) =
	(void *) BPF_FUNC_ringbuf_submit;
static void (*bpf_ringbuf_discard)(void *data, __u64 flags) =
	(void *) BPF_FUNC_ringbuf_discard;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags, void *data, __u64 size) =
	(void *) BPF_FUNC_perf_event_output;
static long (*bpf_get_current_comm)(void *buf, __u32 size) =
	(void *) BPF_FUNC_get_current_comm;

#endif /* BPF_LOAD_SAMPLES_BPF_EVENTS_H */
