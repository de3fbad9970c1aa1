/**
 * The attach kinds bpf-load attaches, listed once. attach/index.ts must have an attacher for each (the compiler checks)
 * and the CLI's `--skip` accepts exactly these. Kept free of imports with side effects so the CLI can read it without
 * loading the attach modules.
 */
import type { AttachKind } from '../object/index.js';

export const ATTACHABLE_KINDS = [
  'socket', 'xdp', 'tc', 'tracepoint', 'raw_tracepoint', 'tracing', 'lsm', 'kprobe', 'kretprobe', 'perf_event', 'cgroup',
  'sockmap',
] as const satisfies readonly AttachKind[];
export type AttachableKind = (typeof ATTACHABLE_KINDS)[number];

export function isAttachableKind(kind: string): kind is AttachableKind {
  return (ATTACHABLE_KINDS as readonly string[]).includes(kind);
}
