/**
 * bpf(2): one entry point (bpfCall) and a typed wrapper per command. Each wrapper writes the command's member of
 * `union bpf_attr` (include/uapi/linux/bpf.h) into a zeroed buffer. The size handed to the kernel is the end of the
 * last field we know: the kernel accepts a shorter attr and treats the missing tail as zero, and rejects a longer one
 * only when bytes it does not know are non-zero, so the same encoding works from 4.x to today's kernels.
 *
 * Every fd a wrapper returns belongs to the caller, who wraps it in an Fd (fd.ts) at once; closeFd() is for tests
 * that drive the wrappers on raw numbers.
 *
 * The commands live by group: bpf-map.ts (maps and elements), bpf-prog.ts (programs and BTF), bpf-object.ts (pins,
 * ids, info), bpf-attach.ts (attaching and links).
 */
import { Errno, SysError } from './errors.js';
import { rawBpf, rawBpfAsync, rawClose, type AttrWriter } from './ffi.js';

/** enum bpf_cmd. */
export const BpfCommand = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_ATTACH: 8,
  PROG_DETACH: 9,
  PROG_TEST_RUN: 10,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  RAW_TRACEPOINT_OPEN: 17,
  BTF_LOAD: 18,
  BTF_GET_FD_BY_ID: 19,
  TASK_FD_QUERY: 20,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_FREEZE: 22,
  BTF_GET_NEXT_ID: 23,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
  LINK_UPDATE: 29,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  ENABLE_STATS: 32,
  ITER_CREATE: 33,
  LINK_DETACH: 34,
  PROG_BIND_MAP: 35,
} as const;
export type BpfCommandName = keyof typeof BpfCommand;

/** Flags of BPF_MAP_UPDATE_ELEM. */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

/** file_flags of BPF_OBJ_GET and open_flags of *_GET_FD_BY_ID (BPF_F_RDONLY / BPF_F_WRONLY). */
export const FileFlags = { RDONLY: 1 << 3, WRONLY: 1 << 4 } as const;

/** BPF_F_* flags of BPF_PROG_ATTACH (cgroup programs) and BPF_PROG_QUERY. */
export const AttachFlags = { ALLOW_OVERRIDE: 1, ALLOW_MULTI: 2, REPLACE: 4 } as const;
export const QueryFlags = { EFFECTIVE: 1 } as const;

/** enum bpf_link_type, indexed by value. */
export const LINK_TYPE_NAMES = [
  'unspec', 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event', 'kprobe_multi',
  'struct_ops', 'netfilter', 'tcx', 'uprobe_multi', 'netkit', 'sockmap',
] as const;
export type LinkTypeName = (typeof LINK_TYPE_NAMES)[number];
export function linkTypeName(value: number): string {
  return LINK_TYPE_NAMES[value] ?? `unknown(${value})`;
}

export const BPF_OBJ_NAME_LEN = 16;
export const BPF_TAG_SIZE = 8;

/**
 * Byte offsets inside union bpf_attr, one group per command member, keys spelled as the kernel's C designators
 * (test/sys compares every entry against offsetof() from the installed uapi header). `size` is the end of the
 * group's last field: the attr size passed to bpf(2).
 */
export const BPF_ATTR = {
  mapCreate: {
    size: 72, map_type: 0, key_size: 4, value_size: 8, max_entries: 12, map_flags: 16, inner_map_fd: 20,
    numa_node: 24, map_name: 28, map_ifindex: 44, btf_fd: 48, btf_key_type_id: 52, btf_value_type_id: 56,
    btf_vmlinux_value_type_id: 60, map_extra: 64,
  },
  mapElem: { size: 32, map_fd: 0, key: 8, value: 16, next_key: 16, flags: 24 },
  mapBatch: {
    size: 56, in_batch: 0, out_batch: 8, keys: 16, values: 24, count: 32, map_fd: 36, elem_flags: 40, flags: 48,
  },
  progLoad: {
    size: 128, prog_type: 0, insn_cnt: 4, insns: 8, license: 16, log_level: 24, log_size: 28, log_buf: 32,
    kern_version: 40, prog_flags: 44, prog_name: 48, prog_ifindex: 64, expected_attach_type: 68, prog_btf_fd: 72,
    func_info_rec_size: 76, func_info: 80, func_info_cnt: 88, line_info_rec_size: 92, line_info: 96,
    line_info_cnt: 104, attach_btf_id: 108, attach_prog_fd: 112, attach_btf_obj_fd: 112, fd_array: 120,
  },
  obj: { size: 16, pathname: 0, bpf_fd: 8, file_flags: 12 },
  progAttach: { size: 20, target_fd: 0, attach_bpf_fd: 4, attach_type: 8, attach_flags: 12, replace_bpf_fd: 16 },
  getId: { size: 12, start_id: 0, prog_id: 0, map_id: 0, link_id: 0, next_id: 4, open_flags: 8 },
  info: { size: 16, bpf_fd: 0, info_len: 4, info: 8 },
  query: {
    size: 40, target_fd: 0, attach_type: 4, query_flags: 8, attach_flags: 12, prog_ids: 16, prog_cnt: 24,
    prog_attach_flags: 32,
  },
  rawTracepoint: { size: 12, name: 0, prog_fd: 8 },
  btfLoad: { size: 28, btf: 0, btf_log_buf: 8, btf_size: 16, btf_log_size: 20, btf_log_level: 24 },
  linkCreate: {
    size: 24, prog_fd: 0, target_fd: 4, target_ifindex: 4, attach_type: 8, flags: 12, target_btf_id: 16,
    'perf_event.bpf_cookie': 16,
  },
  linkDetach: { size: 4, link_fd: 0 },
  linkUpdate: { size: 16, link_fd: 0, new_prog_fd: 4, flags: 8, old_prog_fd: 12 },
} as const;

/** Offsets in struct bpf_prog_info / bpf_map_info / bpf_link_info; `size` is sizeof() in the 6.1 uapi header. */
export const BPF_PROG_INFO = {
  size: 232, type: 0, id: 4, tag: 8, jited_prog_len: 16, xlated_prog_len: 20, jited_prog_insns: 24,
  xlated_prog_insns: 32, load_time: 40, created_by_uid: 48, nr_map_ids: 52, map_ids: 56, name: 64, ifindex: 80,
  // gpl_compatible is bit 0 of the u32 bitfield word right after ifindex (little-endian bit order).
  gpl_compatible_word: 84, netns_dev: 88, netns_ino: 96, btf_id: 128, nr_func_info: 144, nr_line_info: 148,
  run_time_ns: 192, run_cnt: 200, recursion_misses: 208, verified_insns: 216, attach_btf_obj_id: 220,
  attach_btf_id: 224,
} as const;
export const BPF_MAP_INFO = {
  size: 88, type: 0, id: 4, key_size: 8, value_size: 12, max_entries: 16, map_flags: 20, name: 24, ifindex: 40,
  btf_vmlinux_value_type_id: 44, netns_dev: 48, netns_ino: 56, btf_id: 64, btf_key_type_id: 68,
  btf_value_type_id: 72, map_extra: 80,
} as const;
export const BPF_LINK_INFO = {
  size: 48, type: 0, id: 4, prog_id: 8, 'raw_tracepoint.tp_name': 16, 'raw_tracepoint.tp_name_len': 24,
  'tracing.attach_type': 16, 'tracing.target_obj_id': 20, 'tracing.target_btf_id': 24, 'cgroup.cgroup_id': 16,
  'cgroup.attach_type': 24, 'netns.netns_ino': 16, 'netns.attach_type': 20, 'xdp.ifindex': 16,
} as const;

const PROG_LOAD_EAGAIN_RETRIES = 5;
export const NONE_TOLERATED: readonly number[] = [];

/**
 * THE bpf(2) entry point. Returns the kernel's result (an fd or 0). A failure throws SysError naming the command,
 * unless its errno is in `tolerated`: then it returns -errno so hot paths (lookup misses, end of iteration) never
 * build an exception.
 */
export function bpfCall(cmd: BpfCommandName, attr: AttrWriter, tolerated: readonly number[] = NONE_TOLERATED, detail?: string): number {
  let ret: number;
  try {
    ret = rawBpf(BpfCommand[cmd], attr.bytes, attr.bytes.byteLength);
    // The verifier gives up with EAGAIN when a signal is pending; libbpf retries the same way.
    for (let i = 0; ret === -Errno.EAGAIN && cmd === 'PROG_LOAD' && i < PROG_LOAD_EAGAIN_RETRIES; i++) {
      ret = rawBpf(BpfCommand[cmd], attr.bytes, attr.bytes.byteLength);
    }
  } finally {
    attr.release();
  }
  if (ret >= 0 || tolerated.includes(-ret)) return ret;
  throw new SysError({ syscall: 'bpf', command: `BPF_${cmd}`, errno: -ret, ...(detail === undefined ? {} : { detail }) });
}

/**
 * bpfCall on the libuv pool (for the few commands worth running beside JavaScript: program loads). Resolves with the
 * kernel's result, or -1 on failure without the errno, which stayed on the pool thread: call bpfCall to learn it.
 */
export async function bpfCallAsync(cmd: BpfCommandName, attr: AttrWriter): Promise<number> {
  try {
    return await rawBpfAsync(BpfCommand[cmd], attr.bytes, attr.bytes.byteLength);
  } finally {
    // The writer holds the buffers the attr points to: released only once the kernel is done with them.
    attr.release();
  }
}

/** close(2) for any fd a wrapper returned. */
export function closeFd(fd: number): void {
  const ret = rawClose(fd);
  if (ret < 0) throw new SysError({ syscall: 'close', errno: -ret, detail: `fd ${fd}` });
}

