/**
 * Kernel file systems and CPU facts: mount(2) for tracefs / bpffs / cgroup2 when they are missing (never a shell),
 * what is mounted where, and how many CPUs per-CPU map values span.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KernelFeatureError, SysArgumentError, SysError } from './errors.js';
import { rawMount, rawUmount } from './ffi.js';

/** mount(2) flags used by the loader. */
export const MountFlags = { NOSUID: 2, NODEV: 4, NOEXEC: 8, RELATIME: 1 << 21 } as const;
/** umount2(2) flags. */
export const UnmountFlags = { FORCE: 1, DETACH: 2 } as const;

/** mount(2): e.g. mount('bpf', '/sys/fs/bpf', 'bpf') or mount('tracefs', '/sys/kernel/tracing', 'tracefs'). */
export function mount(source: string, target: string, fstype: string, flags = 0, data: string | null = null): void {
  const ret = rawMount(source, target, fstype, flags, data);
  if (ret < 0) throw new SysError({ syscall: 'mount', errno: -ret, detail: `${fstype} on ${target}` });
}

/** umount2(2). */
export function unmount(target: string, flags = 0): void {
  const ret = rawUmount(target, flags);
  if (ret < 0) throw new SysError({ syscall: 'umount2', errno: -ret, detail: target });
}

export interface MountEntry {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  readonly options: string;
}

/** /proc/mounts escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses /proc/self/mounts text. */
export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [source, target, fstype, options] = line.split(' ');
    if (source === undefined || target === undefined || fstype === undefined || options === undefined) continue;
    entries.push({
      source: unescapeMountField(source), target: unescapeMountField(target), fstype: unescapeMountField(fstype), options,
    });
  }
  return entries;
}

/** The file system type mounted exactly at `path` (the topmost mount wins), or undefined when nothing is. */
export function mountedFsType(path: string, mountsText: string = readFileSync('/proc/self/mounts', 'utf8')): string | undefined {
  const target = resolve(path);
  let found: string | undefined;
  for (const entry of parseMounts(mountsText)) if (entry.target === target) found = entry.fstype;
  return found;
}

/**
 * Parses a kernel CPU list such as "0-3,8,10-11" (/sys/devices/system/cpu/possible) into CPU numbers.
 */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  const trimmed = text.trim();
  if (trimmed === '') return cpus;
  for (const part of trimmed.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const first = Number(m?.[1]);
    const last = m?.[2] === undefined ? first : Number(m[2]);
    if (m === null || !(last >= first)) throw new SysArgumentError(`CPU list ${JSON.stringify(text)}: bad range ${JSON.stringify(part)}`);
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

const POSSIBLE_CPUS = '/sys/devices/system/cpu/possible';
let possibleCpuCache: number | undefined;

/**
 * Number of possible CPUs: the kernel sizes per-CPU map values by it (not by online CPUs, which can be fewer).
 * Read once; the set of possible CPUs is fixed at boot.
 */
export function possibleCpuCount(): number {
  if (possibleCpuCache !== undefined) return possibleCpuCache;
  let text: string;
  try {
    text = readFileSync(POSSIBLE_CPUS, 'utf8');
  } catch (err) {
    throw new KernelFeatureError(POSSIBLE_CPUS, 'possible CPU count', { cause: err });
  }
  const count = parseCpuList(text).length;
  if (count === 0) throw new SysArgumentError(`${POSSIBLE_CPUS}: empty CPU list ${JSON.stringify(text)}`);
  possibleCpuCache = count;
  return count;
}

const ONLINE_CPUS = '/sys/devices/system/cpu/online';

/** CPUs that are online now (perf_event_open on an offline CPU fails with ENODEV). */
export function onlineCpus(): number[] {
  let text: string;
  try {
    text = readFileSync(ONLINE_CPUS, 'utf8');
  } catch (err) {
    throw new KernelFeatureError(ONLINE_CPUS, 'online CPUs', { cause: err, message: `cannot read ${ONLINE_CPUS} (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
  }
  return parseCpuList(text);
}
