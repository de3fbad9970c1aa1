import type { AttachTypeName, ProgTypeName } from '../base/uapi.js';

/**
 * How a program gets attached, decided by its section name. The attach layer has one module per kind.
 * `none`: loadable, but there is nothing to attach automatically (e.g. tail-call slots, freplace, iterators).
 */
export type AttachKind =
  | 'socket' | 'kprobe' | 'kretprobe' | 'uprobe' | 'tracepoint' | 'raw_tracepoint' | 'xdp' | 'perf_event'
  | 'cgroup' | 'sockmap' | 'tc' | 'tracing' | 'lsm' | 'flow_dissector' | 'sk_lookup' | 'lirc' | 'netfilter'
  | 'struct_ops' | 'none';

/**
 * How `prefix` matches a section name:
 * - `prefix`: `name.startsWith(prefix)`, as bpf_load.c's strncmp did (so `socket1`, `xdp_pass`, `xdp1` match);
 * - `exact`: the whole name, or the name followed by `/…` (libbpf's `tc`, `sockops`…);
 * - `target`: `prefix` ends in `/` and something must follow it (`kprobe/do_nanosleep`).
 */
export type MatchMode = 'prefix' | 'exact' | 'target';

export interface SectionDef {
  readonly prefix: string;
  readonly match: MatchMode;
  readonly progType: ProgTypeName;
  /** Sent to the kernel in BPF_PROG_LOAD (only where the kernel needs it to pick the program's context). */
  readonly expectedAttachType?: AttachTypeName | undefined;
  /** Used when attaching; defaults to expectedAttachType. */
  readonly attachType?: AttachTypeName | undefined;
  readonly attach: AttachKind;
  /** `<section>/<N>` puts the program into the object's prog array at key N (bpf_load.c's tail-call rule). */
  readonly tailCalls?: boolean | undefined;
  /** Loaded with BPF_F_SLEEPABLE (libbpf's `.s/` sections). */
  readonly sleepable?: boolean | undefined;
  /** Where the name comes from, for --dump and docs. */
  readonly origin: 'bpf_load' | 'libbpf';
}

const def = (
  prefix: string, match: MatchMode, progType: ProgTypeName, attach: AttachKind,
  extra: Partial<Pick<SectionDef, 'expectedAttachType' | 'attachType' | 'tailCalls' | 'sleepable'>> = {}, origin: SectionDef['origin'] = 'libbpf',
): SectionDef => Object.freeze({
  // Every entry has every field, so all share one shape: matchSection reads them for each table entry, for every
  // program section of a file, and a shape per entry made those reads megamorphic.
  prefix, match, progType, attach, origin, expectedAttachType: extra.expectedAttachType, attachType: extra.attachType,
  tailCalls: extra.tailCalls, sleepable: extra.sleepable,
});

/**
 * THE section-name table. Order matters: the first matching entry wins, so specific libbpf names come before the
 * broad bpf_load.c prefixes they would otherwise fall under (`sk_skb/stream_parser` before `sk_skb`,
 * `xdp.frags` and `xdp/devmap` before `xdp`).
 */
export const SECTION_DEFS: readonly SectionDef[] = Object.freeze([
  // Tracing by name.
  def('kprobe.multi/', 'target', 'kprobe', 'none', { expectedAttachType: 'trace_kprobe_multi' }),
  def('kretprobe.multi/', 'target', 'kprobe', 'none', { expectedAttachType: 'trace_kprobe_multi' }),
  def('ksyscall/', 'target', 'kprobe', 'kprobe'),
  def('kretsyscall/', 'target', 'kprobe', 'kretprobe'),
  def('uprobe', 'exact', 'kprobe', 'uprobe'),
  def('uretprobe', 'exact', 'kprobe', 'uprobe'),
  def('uprobe.s', 'exact', 'kprobe', 'uprobe', { sleepable: true }),
  def('uretprobe.s', 'exact', 'kprobe', 'uprobe', { sleepable: true }),
  def('usdt', 'exact', 'kprobe', 'none'),
  def('tp_btf/', 'target', 'tracing', 'tracing', { expectedAttachType: 'trace_raw_tp' }),
  def('fentry/', 'target', 'tracing', 'tracing', { expectedAttachType: 'trace_fentry' }),
  def('fentry.s/', 'target', 'tracing', 'tracing', { expectedAttachType: 'trace_fentry', sleepable: true }),
  def('fexit/', 'target', 'tracing', 'tracing', { expectedAttachType: 'trace_fexit' }),
  def('fexit.s/', 'target', 'tracing', 'tracing', { expectedAttachType: 'trace_fexit', sleepable: true }),
  def('fmod_ret/', 'target', 'tracing', 'tracing', { expectedAttachType: 'modify_return' }),
  def('fmod_ret.s/', 'target', 'tracing', 'tracing', { expectedAttachType: 'modify_return', sleepable: true }),
  def('iter/', 'target', 'tracing', 'none', { expectedAttachType: 'trace_iter' }),
  def('iter.s/', 'target', 'tracing', 'none', { expectedAttachType: 'trace_iter', sleepable: true }),
  def('freplace/', 'target', 'ext', 'none'),
  def('lsm/', 'target', 'lsm', 'lsm', { expectedAttachType: 'lsm_mac' }),
  def('lsm.s/', 'target', 'lsm', 'lsm', { expectedAttachType: 'lsm_mac', sleepable: true }),
  def('lsm_cgroup/', 'target', 'lsm', 'none', { expectedAttachType: 'lsm_cgroup' }),
  def('struct_ops/', 'target', 'struct_ops', 'struct_ops'),
  def('struct_ops.s/', 'target', 'struct_ops', 'struct_ops'),
  def('tp/', 'target', 'tracepoint', 'tracepoint'),
  def('raw_tp/', 'target', 'raw_tracepoint', 'raw_tracepoint'),
  def('raw_tracepoint.w/', 'target', 'raw_tracepoint_writable', 'raw_tracepoint'),
  def('raw_tp.w/', 'target', 'raw_tracepoint_writable', 'raw_tracepoint'),
  def('syscall', 'exact', 'syscall', 'none'),
  // Networking, libbpf names.
  def('xdp.frags/devmap', 'exact', 'xdp', 'none', { expectedAttachType: 'xdp_devmap' }),
  def('xdp/devmap', 'exact', 'xdp', 'none', { expectedAttachType: 'xdp_devmap' }),
  def('xdp.frags/cpumap', 'exact', 'xdp', 'none', { expectedAttachType: 'xdp_cpumap' }),
  def('xdp/cpumap', 'exact', 'xdp', 'none', { expectedAttachType: 'xdp_cpumap' }),
  def('xdp.frags', 'exact', 'xdp', 'xdp', { attachType: 'xdp' }),
  def('tcx/ingress', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'tcx_ingress' }),
  def('tcx/egress', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'tcx_egress' }),
  def('tc/ingress', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'tcx_ingress' }),
  def('tc/egress', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'tcx_egress' }),
  def('netkit/primary', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'netkit_primary' }),
  def('netkit/peer', 'exact', 'sched_cls', 'tc', { expectedAttachType: 'netkit_peer' }),
  def('tc', 'exact', 'sched_cls', 'tc'),
  def('classifier', 'exact', 'sched_cls', 'tc'),
  def('action', 'exact', 'sched_act', 'tc'),
  def('lwt_in', 'exact', 'lwt_in', 'none'),
  def('lwt_out', 'exact', 'lwt_out', 'none'),
  def('lwt_xmit', 'exact', 'lwt_xmit', 'none'),
  def('lwt_seg6local', 'exact', 'lwt_seg6local', 'none'),
  def('sk_skb/stream_parser', 'exact', 'sk_skb', 'sockmap', { attachType: 'sk_skb_stream_parser' }),
  def('sk_skb/stream_verdict', 'exact', 'sk_skb', 'sockmap', { attachType: 'sk_skb_stream_verdict' }),
  def('sk_skb/verdict', 'exact', 'sk_skb', 'sockmap', { attachType: 'sk_skb_verdict' }),
  def('sk_reuseport/migrate', 'exact', 'sk_reuseport', 'none', { expectedAttachType: 'sk_reuseport_select_or_migrate' }),
  def('sk_reuseport', 'exact', 'sk_reuseport', 'none', { expectedAttachType: 'sk_reuseport_select' }),
  def('sk_lookup', 'exact', 'sk_lookup', 'sk_lookup', { expectedAttachType: 'sk_lookup' }),
  def('flow_dissector', 'exact', 'flow_dissector', 'flow_dissector', { expectedAttachType: 'flow_dissector' }),
  def('lirc_mode2', 'exact', 'lirc_mode2', 'lirc', { expectedAttachType: 'lirc_mode2' }),
  def('netfilter', 'exact', 'netfilter', 'netfilter', { expectedAttachType: 'netfilter' }),
  def('cgroup_skb/ingress', 'exact', 'cgroup_skb', 'cgroup', { expectedAttachType: 'cgroup_inet_ingress' }),
  def('cgroup_skb/egress', 'exact', 'cgroup_skb', 'cgroup', { expectedAttachType: 'cgroup_inet_egress' }),
  def('cgroup/skb', 'exact', 'cgroup_skb', 'cgroup', { attachType: 'cgroup_inet_ingress' }),
  def('cgroup/sock_create', 'exact', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet_sock_create' }),
  def('cgroup/sock_release', 'exact', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet_sock_release' }),
  def('cgroup/post_bind4', 'exact', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet4_post_bind' }),
  def('cgroup/post_bind6', 'exact', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet6_post_bind' }),
  def('cgroup/sock', 'exact', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet_sock_create' }),
  def('cgroup/bind4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet4_bind' }),
  def('cgroup/bind6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet6_bind' }),
  def('cgroup/connect4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet4_connect' }),
  def('cgroup/connect6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet6_connect' }),
  def('cgroup/connect_unix', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_unix_connect' }),
  def('cgroup/sendmsg4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_udp4_sendmsg' }),
  def('cgroup/sendmsg6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_udp6_sendmsg' }),
  def('cgroup/sendmsg_unix', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_unix_sendmsg' }),
  def('cgroup/recvmsg4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_udp4_recvmsg' }),
  def('cgroup/recvmsg6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_udp6_recvmsg' }),
  def('cgroup/recvmsg_unix', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_unix_recvmsg' }),
  def('cgroup/getpeername4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet4_getpeername' }),
  def('cgroup/getpeername6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet6_getpeername' }),
  def('cgroup/getsockname4', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet4_getsockname' }),
  def('cgroup/getsockname6', 'exact', 'cgroup_sock_addr', 'cgroup', { expectedAttachType: 'cgroup_inet6_getsockname' }),
  def('cgroup/sysctl', 'exact', 'cgroup_sysctl', 'cgroup', { expectedAttachType: 'cgroup_sysctl' }),
  def('cgroup/getsockopt', 'exact', 'cgroup_sockopt', 'cgroup', { expectedAttachType: 'cgroup_getsockopt' }),
  def('cgroup/setsockopt', 'exact', 'cgroup_sockopt', 'cgroup', { expectedAttachType: 'cgroup_setsockopt' }),
  def('cgroup/dev', 'exact', 'cgroup_device', 'cgroup', { expectedAttachType: 'cgroup_device' }),
  // bpf_load.c's prefixes, matched as its strncmp did. Broad, so they come last.
  def('socket', 'prefix', 'socket_filter', 'socket', { tailCalls: true }, 'bpf_load'),
  def('kprobe/', 'prefix', 'kprobe', 'kprobe', { tailCalls: true }, 'bpf_load'),
  def('kretprobe/', 'prefix', 'kprobe', 'kretprobe', {}, 'bpf_load'),
  def('tracepoint/', 'prefix', 'tracepoint', 'tracepoint', {}, 'bpf_load'),
  def('raw_tracepoint/', 'prefix', 'raw_tracepoint', 'raw_tracepoint', {}, 'bpf_load'),
  def('xdp', 'prefix', 'xdp', 'xdp', { attachType: 'xdp', tailCalls: true }, 'bpf_load'),
  def('perf_event', 'prefix', 'perf_event', 'perf_event', {}, 'bpf_load'),
  def('cgroup/skb', 'prefix', 'cgroup_skb', 'cgroup', { attachType: 'cgroup_inet_ingress' }, 'bpf_load'),
  def('cgroup/sock', 'prefix', 'cgroup_sock', 'cgroup', { expectedAttachType: 'cgroup_inet_sock_create' }, 'bpf_load'),
  def('sockops', 'prefix', 'sock_ops', 'cgroup', { attachType: 'cgroup_sock_ops', tailCalls: true }, 'bpf_load'),
  def('sk_skb', 'prefix', 'sk_skb', 'sockmap', { tailCalls: true }, 'bpf_load'),
  def('sk_msg', 'prefix', 'sk_msg', 'sockmap', { attachType: 'sk_msg_verdict', tailCalls: true }, 'bpf_load'),
]);

export interface SectionMatch {
  readonly def: SectionDef;
  /** What follows the prefix without its leading `/`: `sched/sched_switch` for `tracepoint/sched/sched_switch`. */
  readonly target: string;
  /** Key in the prog array for `<section>/<N>` names, when the entry allows tail calls. */
  readonly tailCallSlot: number | undefined;
}

/** The one matcher over SECTION_DEFS: the first entry whose prefix matches wins; undefined for unknown names. */
export function matchSection(name: string): SectionMatch | undefined {
  for (const d of SECTION_DEFS) {
    if (!matches(d, name)) continue;
    const rest = name.slice(d.prefix.length);
    // `socket1`, `xdp_pass`: bpf_load.c-style suffixes only tell programs apart; a target follows a slash.
    const target = d.prefix.endsWith('/') ? rest : rest.startsWith('/') ? rest.slice(1) : '';
    return { def: d, target, tailCallSlot: d.tailCalls === true ? tailCallSlot(d.prefix, rest) : undefined };
  }
  return undefined;
}

const SLASH = 0x2f;

function matches(d: SectionDef, name: string): boolean {
  switch (d.match) {
    case 'prefix':
      return name.startsWith(d.prefix);
    case 'exact':
      // No `${prefix}/` string per test: this runs for every table entry of every program section.
      return name.startsWith(d.prefix) && (name.length === d.prefix.length || name.charCodeAt(d.prefix.length) === SLASH);
    case 'target':
      return name.startsWith(d.prefix) && name.length > d.prefix.length;
  }
}

/**
 * bpf_load.c: `socket/N`, `sockops/N`, `sk_skb/N`, `sk_msg/N`, `xdp/N` and `kprobe/N` (digits only) are tail-call
 * slots. It skipped 7 characters for sk_skb and sk_msg (6 long), missing their slash; we read the slot after the
 * prefix for every kind.
 */
function tailCallSlot(prefix: string, rest: string): number | undefined {
  const digits = prefix.endsWith('/') ? rest : rest.startsWith('/') ? rest.slice(1) : undefined;
  if (digits === undefined || !/^[0-9]{1,9}$/.test(digits)) return undefined;
  return Number(digits);
}

/**
 * Kernel program type names a user may give where a section's name says nothing (`--type sched_cls`), and the section
 * name whose table entry they stand for. Types that need a target in the section name (kprobe, tracepoint …) or an
 * attach type the name alone does not pick (cgroup_sock_addr …) are left out: their sections must say it.
 */
const KERNEL_TYPE_SECTIONS: Readonly<Partial<Record<ProgTypeName, string>>> = {
  socket_filter: 'socket', sched_cls: 'tc', sched_act: 'action', xdp: 'xdp', perf_event: 'perf_event',
  cgroup_skb: 'cgroup/skb', cgroup_sock: 'cgroup/sock', lwt_in: 'lwt_in', lwt_out: 'lwt_out', lwt_xmit: 'lwt_xmit',
  lwt_seg6local: 'lwt_seg6local', sock_ops: 'sockops', sk_skb: 'sk_skb', cgroup_device: 'cgroup/dev', sk_msg: 'sk_msg',
  sk_reuseport: 'sk_reuseport', flow_dissector: 'flow_dissector', cgroup_sysctl: 'cgroup/sysctl', sk_lookup: 'sk_lookup',
  lirc_mode2: 'lirc_mode2', syscall: 'syscall', netfilter: 'netfilter',
};

/**
 * Every name `--type` accepts: the kernel type names above, then the table's section names that need nothing after
 * them (libbpf's `tc`, `tc/egress`, `xdp.frags`, `cgroup_skb/egress` …, bpf_load.c's `socket`, `xdp`, `sockops` …).
 */
export const USER_PROGRAM_TYPES: readonly string[] = Object.freeze([...new Set([
  ...Object.keys(KERNEL_TYPE_SECTIONS),
  // uprobe/usdt sections are typed kprobe and need a binary and symbol no section name here gives.
  ...SECTION_DEFS.filter((d) => d.match !== 'target' && !d.prefix.endsWith('/') && d.progType !== 'kprobe').map((d) => d.prefix),
])]);

/** The table entry a user-given type stands for (no target, no tail-call slot); undefined for names it does not know. */
export function matchUserType(type: string): SectionMatch | undefined {
  if (!USER_PROGRAM_TYPES.includes(type)) return undefined;
  const match = matchSection(KERNEL_TYPE_SECTIONS[type as ProgTypeName] ?? type);
  return match === undefined ? undefined : { def: match.def, target: match.target, tailCallSlot: undefined };
}

/**
 * iproute2's tail-call sections, `__section_tail(ID, KEY)` → `ID/KEY`: the program goes into the prog array whose
 * `struct bpf_elf_map` id is ID, at key KEY. Both numbers as C's `%i` reads them (decimal, 0x hex, 0 octal).
 */
export function iproute2TailCall(section: string): { mapId: number; key: number } | undefined {
  const m = /^(0[xX][0-9a-fA-F]{1,8}|0[0-7]*|[1-9][0-9]{0,9})\/(0[xX][0-9a-fA-F]{1,8}|0[0-7]*|[1-9][0-9]{0,9})$/.exec(section);
  if (m === null) return undefined;
  const mapId = cInteger(m[1]!);
  const key = cInteger(m[2]!);
  return mapId > 0xffffffff || key > 0xffffffff ? undefined : { mapId, key };
}

function cInteger(text: string): number {
  if (/^0[xX]/.test(text)) return parseInt(text.slice(2), 16);
  if (text.length > 1 && text.startsWith('0')) return parseInt(text.slice(1), 8);
  return Number(text);
}
