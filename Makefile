# bpf-load: builds the BPF C samples in c-samples/. The objects are committed (tests read them), so a checkout
# needs no compiler; run `make` after changing a sample or a header, and commit the rebuilt objects.
#
# Targets:
#   make / make all   build every sample object
#   make clean        remove the built objects (c-samples/*.o)
#   make list         print the objects `make` builds
#   make uprobe-target  build c-samples/uprobe_target, the host program uprobe_kern.o probes (also part of `all`)
#
# Legacy samples (maps in the "maps" section) build three objects from X.c:
#   X.o       -O2 -target bpf        no debug info, no BTF: what the classic bpf_load.c read
#   X.btf.o   -O2 -g -target bpf     the same program plus .BTF and .BTF.ext (DWARF stripped, see below)
#   X.eb.o    -O2 -target bpfeb      big-endian twin of X.o, for the ELF/instruction reader tests
# Modern samples (BTF-defined ".maps", global data) need BTF, so both of theirs are built with -g:
#   X.o       -O2 -g -target bpf
#   X.eb.o    -O2 -g -target bpfeb
#
# Every -g object goes through `llvm-strip -g`: the loader needs .BTF/.BTF.ext, not DWARF, and DWARF would embed
# the build host's header paths. -ffile-prefix-map keeps this checkout's path out of the objects.
#
# Variables: CLANG (clang-19, else clang), LLVM_STRIP (llvm-strip-19, else llvm-strip), BPF_CPU (instruction set
# version, pinned so a newer clang builds the same instructions), MULTIARCH (Debian multiarch include dir for
# asm/types.h).

CLANG ?= $(shell command -v clang-19 >/dev/null 2>&1 && echo clang-19 || echo clang)
LLVM_STRIP ?= $(shell command -v llvm-strip-19 >/dev/null 2>&1 && echo llvm-strip-19 || echo llvm-strip)
BPF_CPU ?= v1
MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo $$(uname -m)-linux-gnu)

SAMPLES_DIR := c-samples

LEGACY := sockex1 countmap trace_hello sockex3 xdp1 raw_tp perf_event cgroup sockmap map_in_map kprobe \
	bad_verifier all_kinds iproute2 fixups partial
MODERN := sockex1_modern globals btf_targets skel loader_policy tc_modern ringbuf perfbuf test_run uprobe bashreadline hist verdicts

LEGACY_OBJS := $(foreach s,$(LEGACY),$(addprefix $(SAMPLES_DIR)/$(s)_kern,.o .btf.o .eb.o))
MODERN_OBJS := $(foreach s,$(MODERN),$(addprefix $(SAMPLES_DIR)/$(s)_kern,.o .eb.o))
OBJS := $(LEGACY_OBJS) $(MODERN_OBJS)

# A native program for the uprobe samples: built for this host with its C compiler and not committed (a binary
# depends on the host's architecture and compiler; the BPF objects do not). Tests run `make uprobe-target`.
CC ?= cc
UPROBE_TARGET := $(SAMPLES_DIR)/uprobe_target

HEADERS := $(SAMPLES_DIR)/bpf_legacy.h $(SAMPLES_DIR)/bpf_modern.h $(SAMPLES_DIR)/bpf_events.h

BPF_CFLAGS := -O2 -mcpu=$(BPF_CPU) -Wall -I/usr/include/$(MULTIARCH) -ffile-prefix-map=$(CURDIR)=.

.PHONY: all clean list uprobe-target
.DELETE_ON_ERROR:

all: $(OBJS) $(UPROBE_TARGET)

uprobe-target: $(UPROBE_TARGET)

# -O1 with target_add noinline: one real call per iteration, each a probe hit.
$(UPROBE_TARGET): $(UPROBE_TARGET).c
	$(CC) -O1 -g0 -Wall -o $@ $<

list:
	@printf '%s\n' $(OBJS)

# Legacy: plain little-endian, BTF (stripped of DWARF), plain big-endian.
$(filter %_kern.o,$(LEGACY_OBJS)): %.o: %.c $(HEADERS)
	$(CLANG) $(BPF_CFLAGS) -target bpf -c $< -o $@

$(filter %.btf.o,$(LEGACY_OBJS)): %.btf.o: %.c $(HEADERS)
	$(CLANG) $(BPF_CFLAGS) -g -target bpf -c $< -o $@
	$(LLVM_STRIP) -g $@

$(filter %.eb.o,$(LEGACY_OBJS)): %.eb.o: %.c $(HEADERS)
	$(CLANG) $(BPF_CFLAGS) -target bpfeb -c $< -o $@

# Modern: both byte orders with BTF.
$(filter %_kern.o,$(MODERN_OBJS)): %.o: %.c $(HEADERS)
	$(CLANG) $(BPF_CFLAGS) -g -target bpf -c $< -o $@
	$(LLVM_STRIP) -g $@

$(filter %.eb.o,$(MODERN_OBJS)): %.eb.o: %.c $(HEADERS)
	$(CLANG) $(BPF_CFLAGS) -g -target bpfeb -c $< -o $@
	$(LLVM_STRIP) -g $@

clean:
	rm -f $(OBJS) $(UPROBE_TARGET)
