/**
 * The attach kinds bpf-load attaches, listed once. attach/index.ts must have an attacher for each (the compiler checks)
 * and the CLI's `--skip` accepts exactly these. Kept free of imports with side effects so the CLI can read it without
 * loading the attach modules.
 */
import type { AttachKind } from '../object/index.js';
import type { LinkTypeName } from '../sys/index.js';

export const ATTACHABLE_KINDS = [
  'socket', 'xdp', 'tc', 'tracepoint', 'raw_tracepoint', 'tracing', 'lsm', 'kprobe', 'kretprobe', 'perf_event', 'cgroup',
  'sockmap', 'uprobe',
] as const satisfies readonly AttachKind[];
export type AttachableKind = (typeof ATTACHABLE_KINDS)[number];

/**
 * Kernel link types (bpf_link_type names) and the attach kind each serves: how openPinnedLink names a pinned link's
 * kind. A kind whose attacher makes BPF links adds its link type here.
 */
export const KIND_OF_LINK_TYPE: Readonly<Partial<Record<LinkTypeName, AttachableKind>>> = {
  xdp: 'xdp', tcx: 'tc', cgroup: 'cgroup', raw_tracepoint: 'raw_tracepoint', tracing: 'tracing', perf_event: 'perf_event',
};

export function isAttachableKind(kind: string): kind is AttachableKind {
  return (ATTACHABLE_KINDS as readonly string[]).includes(kind);
}
