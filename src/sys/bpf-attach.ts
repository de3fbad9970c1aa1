/** bpf(2) attach commands: cgroup-style attach/detach/query, raw tracepoints, BPF links. */
import { attachTypeName } from '../base/uapi.js';
import { Errno } from './errors.js';
import { AttrWriter, cString } from './ffi.js';
import { AttachFlags, BPF_ATTR, NONE_TOLERATED, bpfCall } from './bpf.js';

export interface ProgAttachAttr {
  readonly targetFd: number;
  readonly attachBpfFd: number;
  readonly attachType: number;
  readonly attachFlags?: number;
  readonly replaceBpfFd?: number;
}

/** BPF_PROG_ATTACH (cgroups, sockmaps, flow dissector, lirc). */
export function progAttach(a: ProgAttachAttr): void {
  const L = BPF_ATTR.progAttach;
  const w = new AttrWriter(L.size)
    .u32(L.target_fd, a.targetFd)
    .u32(L.attach_bpf_fd, a.attachBpfFd)
    .u32(L.attach_type, a.attachType)
    .u32(L.attach_flags, a.attachFlags ?? 0)
    .u32(L.replace_bpf_fd, a.replaceBpfFd ?? 0);
  bpfCall('PROG_ATTACH', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

/** BPF_PROG_DETACH; attachBpfFd selects the program when several are attached (BPF_F_ALLOW_MULTI). */
export function progDetach(a: { readonly targetFd: number; readonly attachType: number; readonly attachBpfFd?: number }): void {
  const L = BPF_ATTR.progAttach;
  const w = new AttrWriter(L.size).u32(L.target_fd, a.targetFd).u32(L.attach_bpf_fd, a.attachBpfFd ?? 0).u32(L.attach_type, a.attachType);
  bpfCall('PROG_DETACH', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

export interface ProgQueryResult {
  readonly attachFlags: number;
  readonly progIds: readonly number[];
}

/** BPF_PROG_QUERY: ids of the programs attached to targetFd for attachType (growing the id buffer as needed). */
export function progQuery(a: { readonly targetFd: number; readonly attachType: number; readonly queryFlags?: number }): ProgQueryResult {
  const L = BPF_ATTR.query;
  let capacity = 64;
  for (;;) {
    const ids = new Uint32Array(capacity);
    const w = new AttrWriter(L.size)
      .u32(L.target_fd, a.targetFd)
      .u32(L.attach_type, a.attachType)
      .u32(L.query_flags, a.queryFlags ?? 0)
      .pointer(L.prog_ids, new Uint8Array(ids.buffer))
      .u32(L.prog_cnt, capacity);
    // ENOSPC: more programs than room; prog_cnt now holds the real count.
    const ret = bpfCall('PROG_QUERY', w, [Errno.ENOSPC], attachTypeName(a.attachType));
    const count = w.readU32(L.prog_cnt);
    if (ret >= 0) return { attachFlags: w.readU32(L.attach_flags), progIds: Array.from(ids.subarray(0, Math.min(count, capacity))) };
    capacity = Math.max(count, capacity * 2);
  }
}

/** BPF_RAW_TRACEPOINT_OPEN → link fd. `name` null for BTF-typed programs (tp_btf, fentry …) attached by their BTF id. */
export function rawTracepointOpen(name: string | null, progFd: number): number {
  const L = BPF_ATTR.rawTracepoint;
  const w = new AttrWriter(L.size).pointer(L.name, name === null ? null : cString(name, 'tracepoint name')).u32(L.prog_fd, progFd);
  return bpfCall('RAW_TRACEPOINT_OPEN', w, NONE_TOLERATED, name ?? undefined);
}

export interface LinkCreateAttr {
  readonly progFd: number;
  /** target_fd (cgroup, netns, perf event fd …) or target_ifindex (xdp, tcx): the same slot. */
  readonly targetFd?: number;
  readonly targetIfindex?: number;
  readonly attachType: number;
  readonly flags?: number;
  /** tracing / ext links: BTF id of the target. */
  readonly targetBtfId?: number;
  /** perf_event links: value for bpf_get_attach_cookie(). */
  readonly bpfCookie?: bigint;
}

/** BPF_LINK_CREATE → link fd. */
export function linkCreate(a: LinkCreateAttr): number {
  const L = BPF_ATTR.linkCreate;
  const w = new AttrWriter(L.size)
    .u32(L.prog_fd, a.progFd)
    .u32(L.target_fd, a.targetFd ?? a.targetIfindex ?? 0)
    .u32(L.attach_type, a.attachType)
    .u32(L.flags, a.flags ?? 0);
  if (a.bpfCookie !== undefined) w.u64(L['perf_event.bpf_cookie'], a.bpfCookie);
  else if (a.targetBtfId !== undefined) w.u32(L.target_btf_id, a.targetBtfId);
  return bpfCall('LINK_CREATE', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

/** BPF_LINK_DETACH: the link stays open but is detached from its target. */
export function linkDetach(linkFd: number, tolerated: readonly number[] = NONE_TOLERATED): void {
  const L = BPF_ATTR.linkDetach;
  bpfCall('LINK_DETACH', new AttrWriter(L.size).u32(L.link_fd, linkFd), tolerated);
}

/** BPF_LINK_UPDATE: the link runs `newProgFd` from now on (atomically); with `oldProgFd`, only if that one is still there. */
export function linkUpdate(a: { readonly linkFd: number; readonly newProgFd: number; readonly oldProgFd?: number }): void {
  const L = BPF_ATTR.linkUpdate;
  const w = new AttrWriter(L.size).u32(L.link_fd, a.linkFd).u32(L.new_prog_fd, a.newProgFd);
  // old_prog_fd is only read with BPF_F_REPLACE.
  if (a.oldProgFd !== undefined) w.u32(L.flags, AttachFlags.REPLACE).u32(L.old_prog_fd, a.oldProgFd);
  bpfCall('LINK_UPDATE', w, NONE_TOLERATED, `link fd ${a.linkFd}`);
}
