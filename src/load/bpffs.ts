/** bpffs: where pins can live, mounted at /sys/fs/bpf when the samples expect it. */
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BpfLoadError } from '../base/errors.js';
import { mount, parseMounts } from '../sys/index.js';

export class PinError extends BpfLoadError {
  override name = 'PinError';
}

const DEFAULT_BPFFS = '/sys/fs/bpf';

/**
 * Makes sure `dir` lies on a bpf file system: when nothing bpf is mounted over it and it is under /sys/fs/bpf, mounts
 * bpffs at /sys/fs/bpf (as the kernel samples expect); elsewhere it is the user's to mount.
 */
export function ensureBpffs(dir: string, mountsText: string = readFileSync('/proc/self/mounts', 'utf8')): void {
  const target = resolve(dir);
  const covering = parseMounts(mountsText)
    .filter((m) => target === m.target || target.startsWith(m.target.endsWith('/') ? m.target : `${m.target}/`))
    .sort((a, b) => a.target.length - b.target.length)
    .at(-1);
  if (covering?.fstype === 'bpf') return;
  if (target === DEFAULT_BPFFS || target.startsWith(`${DEFAULT_BPFFS}/`)) {
    mkdirSync(DEFAULT_BPFFS, { recursive: true });
    mount('bpf', DEFAULT_BPFFS, 'bpf');
    return;
  }
  throw new PinError(`${target}: not on a bpf file system (mounted there: ${covering?.fstype ?? 'nothing'}); use a directory under ${DEFAULT_BPFFS} or mount bpffs first`);
}
