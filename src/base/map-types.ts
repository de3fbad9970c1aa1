/**
 * What each map type is like, in one table every layer reads: the parsers (which types take an inner map), the loader
 * (sizes the kernel fixes, inner maps), map handles (per-CPU values, batch lookups) and the live view (what cannot be
 * listed, and why). Adding a map type: its name in MAP_TYPE_NAMES (uapi.ts), then its row here.
 */
import { MAP_TYPE_NAMES, type MapTypeName } from './uapi.js';

export interface MapTypeTraits {
  /** Values are per CPU: user space reads roundup(value_size, 8) bytes per possible CPU. */
  readonly perCpu: boolean;
  /** What the values are fds of, when user space writes fds into it (read back as ids, or not at all). */
  readonly valueFds: 'maps' | 'programs' | 'perf events' | 'sockets' | 'devices' | 'cpus' | 'cgroups' | undefined;
  /** Why user space cannot list it as key/value pairs (the live view says so); undefined when it can. */
  readonly unlistable: string | undefined;
  /** Key and value sizes the kernel requires whatever the definition says (records are not entries). */
  readonly kernelSizes: { readonly keySize: number; readonly valueSize: number } | undefined;
  /** BPF_MAP_LOOKUP_BATCH reads it (map-in-map values are ids the batch path does not translate). */
  readonly batchLookup: boolean;
}

const PLAIN: MapTypeTraits = { perCpu: false, valueFds: undefined, unlistable: undefined, kernelSizes: undefined, batchLookup: true };
const row = (traits: Partial<MapTypeTraits>): MapTypeTraits => ({ ...PLAIN, ...traits });
const SOCKETS = 'holds sockets';
const RING = 'a ring buffer: records are consumed, not stored';
const CGROUP_STORAGE = 'per-cgroup storage of an attached program';

/** One row per map type the kernel knows. */
export const MAP_TYPE_TRAITS: Readonly<Record<MapTypeName, MapTypeTraits>> = {
  unspec: PLAIN,
  hash: PLAIN,
  array: PLAIN,
  prog_array: row({ valueFds: 'programs' }),
  perf_event_array: row({ valueFds: 'perf events', unlistable: 'holds perf event fds: records go to perf buffers', kernelSizes: { keySize: 4, valueSize: 4 } }),
  percpu_hash: row({ perCpu: true }),
  percpu_array: row({ perCpu: true }),
  stack_trace: PLAIN,
  cgroup_array: row({ valueFds: 'cgroups' }),
  lru_hash: PLAIN,
  lru_percpu_hash: row({ perCpu: true }),
  lpm_trie: PLAIN,
  array_of_maps: row({ valueFds: 'maps', batchLookup: false }),
  hash_of_maps: row({ valueFds: 'maps', batchLookup: false }),
  devmap: row({ valueFds: 'devices' }),
  sockmap: row({ valueFds: 'sockets', unlistable: SOCKETS }),
  cpumap: row({ valueFds: 'cpus' }),
  xskmap: row({ valueFds: 'sockets', unlistable: 'holds AF_XDP sockets' }),
  sockhash: row({ valueFds: 'sockets', unlistable: SOCKETS }),
  cgroup_storage: row({ unlistable: CGROUP_STORAGE }),
  reuseport_sockarray: row({ valueFds: 'sockets', unlistable: SOCKETS }),
  percpu_cgroup_storage: row({ perCpu: true, unlistable: CGROUP_STORAGE }),
  queue: row({ unlistable: 'a queue: reading removes elements' }),
  stack: row({ unlistable: 'a stack: reading removes elements' }),
  sk_storage: row({ unlistable: 'per-socket storage, keyed by socket fds' }),
  devmap_hash: row({ valueFds: 'devices' }),
  struct_ops: row({ unlistable: 'holds kernel operations' }),
  ringbuf: row({ unlistable: RING, kernelSizes: { keySize: 0, valueSize: 0 } }),
  inode_storage: row({ unlistable: 'per-inode storage, keyed by file fds' }),
  task_storage: row({ unlistable: 'per-task storage, keyed by pidfds' }),
  bloom_filter: row({ unlistable: 'a bloom filter: answers membership only' }),
  user_ringbuf: row({ unlistable: RING, kernelSizes: { keySize: 0, valueSize: 0 } }),
  cgrp_storage: row({ unlistable: 'per-cgroup storage, keyed by cgroup fds' }),
  arena: row({ unlistable: 'memory shared by mmap' }),
};

/** The traits of a map type by kernel value or name; a type this table does not know has the plain traits. */
export function mapTypeTraits(type: number | string): MapTypeTraits {
  const name = typeof type === 'number' ? MAP_TYPE_NAMES[type] : type;
  return name !== undefined && Object.hasOwn(MAP_TYPE_TRAITS, name) ? MAP_TYPE_TRAITS[name as MapTypeName] : PLAIN;
}

/** Map-in-map: values are fds of other maps, so creating one needs an inner map. */
export function isMapInMap(type: number | string): boolean {
  return mapTypeTraits(type).valueFds === 'maps';
}
