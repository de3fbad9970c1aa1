/**
 * Kernel uapi enumerations (include/uapi/linux/bpf.h) as data. Pure constants: every layer may use them, none of them
 * touches the kernel. Names are the kernel's enum suffixes in lower case, as bpftool prints them.
 *
 * Each table is indexed by the kernel's numeric value, so `PROG_TYPE_NAMES[1] === 'socket_filter'`.
 */

export const PROG_TYPE_NAMES = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event', 'cgroup_skb',
  'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb', 'cgroup_device', 'sk_msg', 'raw_tracepoint',
  'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2', 'sk_reuseport', 'flow_dissector', 'cgroup_sysctl',
  'raw_tracepoint_writable', 'cgroup_sockopt', 'tracing', 'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall',
  'netfilter',
] as const;
export type ProgTypeName = (typeof PROG_TYPE_NAMES)[number];

export const MAP_TYPE_NAMES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array', 'stack_trace',
  'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps', 'hash_of_maps', 'devmap', 'sockmap',
  'cpumap', 'xskmap', 'sockhash', 'cgroup_storage', 'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack',
  'sk_storage', 'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena',
] as const;
export type MapTypeName = (typeof MAP_TYPE_NAMES)[number];

export const ATTACH_TYPE_NAMES = [
  'cgroup_inet_ingress', 'cgroup_inet_egress', 'cgroup_inet_sock_create', 'cgroup_sock_ops', 'sk_skb_stream_parser',
  'sk_skb_stream_verdict', 'cgroup_device', 'sk_msg_verdict', 'cgroup_inet4_bind', 'cgroup_inet6_bind',
  'cgroup_inet4_connect', 'cgroup_inet6_connect', 'cgroup_inet4_post_bind', 'cgroup_inet6_post_bind',
  'cgroup_udp4_sendmsg', 'cgroup_udp6_sendmsg', 'lirc_mode2', 'flow_dissector', 'cgroup_sysctl',
  'cgroup_udp4_recvmsg', 'cgroup_udp6_recvmsg', 'cgroup_getsockopt', 'cgroup_setsockopt', 'trace_raw_tp',
  'trace_fentry', 'trace_fexit', 'modify_return', 'lsm_mac', 'trace_iter', 'cgroup_inet4_getpeername',
  'cgroup_inet6_getpeername', 'cgroup_inet4_getsockname', 'cgroup_inet6_getsockname', 'xdp_devmap',
  'cgroup_inet_sock_release', 'xdp_cpumap', 'sk_lookup', 'xdp', 'sk_skb_verdict', 'sk_reuseport_select',
  'sk_reuseport_select_or_migrate', 'perf_event', 'trace_kprobe_multi', 'lsm_cgroup', 'struct_ops', 'netfilter',
  'tcx_ingress', 'tcx_egress', 'trace_uprobe_multi', 'cgroup_unix_connect', 'cgroup_unix_sendmsg',
  'cgroup_unix_recvmsg', 'cgroup_unix_getpeername', 'cgroup_unix_getsockname', 'netkit_primary', 'netkit_peer',
  'trace_kprobe_session', 'trace_uprobe_session',
] as const;
export type AttachTypeName = (typeof ATTACH_TYPE_NAMES)[number];

function indexOf<T extends string>(table: readonly T[], name: T): number {
  return table.indexOf(name);
}

/** Numeric value of a program type name (its index in PROG_TYPE_NAMES). */
export function progTypeValue(name: ProgTypeName): number {
  return indexOf(PROG_TYPE_NAMES, name);
}
export function mapTypeValue(name: MapTypeName): number {
  return indexOf(MAP_TYPE_NAMES, name);
}
export function attachTypeValue(name: AttachTypeName): number {
  return indexOf(ATTACH_TYPE_NAMES, name);
}
/** Name for a numeric value, or `unknown(N)` for values newer than this table. */
export function progTypeName(value: number): string {
  return PROG_TYPE_NAMES[value] ?? `unknown(${value})`;
}
export function mapTypeName(value: number): string {
  return MAP_TYPE_NAMES[value] ?? `unknown(${value})`;
}
export function attachTypeName(value: number): string {
  return ATTACH_TYPE_NAMES[value] ?? `unknown(${value})`;
}

/** Map flags (BPF_F_*) that matter to the loader. */
export const MapFlags = {
  NO_PREALLOC: 1 << 0,
  NUMA_NODE: 1 << 2,
  RDONLY: 1 << 3,
  WRONLY: 1 << 4,
  RDONLY_PROG: 1 << 7,
  WRONLY_PROG: 1 << 8,
  MMAPABLE: 1 << 10,
} as const;

/** Bytes in one instruction slot; a ld_imm64 takes two. */
export const INSN_SLOT_SIZE = 8;

/** src_reg values of a ld_imm64 (BPF_PSEUDO_*): what the 64-bit immediate means. */
export const PseudoSrc = {
  MAP_FD: 1,
  MAP_VALUE: 2,
  BTF_ID: 3,
  FUNC: 4,
  MAP_IDX: 5,
  MAP_IDX_VALUE: 6,
} as const;

/** src_reg of a call instruction: helper (0), bpf-to-bpf call (1), kfunc (2). */
export const CallSrc = { HELPER: 0, PSEUDO_CALL: 1, KFUNC_CALL: 2 } as const;
