/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf_modern.h: the BTF-defined map macros, written the way libbpf's bpf_helpers.h writes them (ours, so the
 * samples depend on the uapi headers only). A map is a struct in ".maps" whose members only carry types:
 *   __uint(max_entries, 256)  ->  int (*max_entries)[256]      the number is the array length in BTF
 *   __type(key, u32)          ->  typeof(u32) *key             the key type is the pointee
 *   __array(values, struct m) ->  typeof(struct m) *values[]   map-in-map / prog-array value templates
 * Objects using these must be built with -g so clang emits .BTF.
 *
 * Helpers, typedefs and SEC() come from bpf_legacy.h: the call convention is the same in both styles.
 */
#ifndef BPF_LOAD_SAMPLES_BPF_MODERN_H
#define BPF_LOAD_SAMPLES_BPF_MODERN_H

#include "bpf_legacy.h"

#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]

#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

#endif /* BPF_LOAD_SAMPLES_BPF_MODERN_H */
