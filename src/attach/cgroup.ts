/**
 * cgroup programs (cgroup/skb, cgroup/sock*, the sock_addr hooks, sysctl, sockopt, dev, sockops) on a cgroup v2
 * directory.
 *
 * A BPF link (BPF_LINK_CREATE, 5.7+) is preferred: it joins the cgroup's multi-program list, so it never displaces
 * what others attached, and the kernel detaches it when the link fd closes, even if the loader crashes. Kernels
 * without cgroup links get BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, which shares the same way.
 */
import { constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { withContext } from '../base/errors.js';
import { attachTypeName, attachTypeValue } from '../base/uapi.js';
import type { LoadedProgram } from '../load/index.js';
import {
  AttachFlags, Errno, Fd, linkCreate, MountFlags, mount, parseMounts, progAttach, progDetach, progQuery,
  SysError,
} from '../sys/index.js';
import { AttachError, bpfLink, checkSafeName, type AttachOptions, type Link, onceLink } from './link.js';

/** statfs(2) f_type of a cgroup v2 file system (linux/magic.h). */
export const CGROUP2_SUPER_MAGIC = 0x63677270;
/** Where a cgroup2 hierarchy is mounted when none is (the systemd hybrid-layout location). */
export const DEFAULT_CGROUP2_MOUNT = '/sys/fs/cgroup/unified';

/** The first cgroup2 mount point in /proc/self/mounts text, or undefined. */
export function findCgroup2Mount(mountsText: string = readFileSync('/proc/self/mounts', 'utf8')): string | undefined {
  return parseMounts(mountsText).find((m) => m.fstype === 'cgroup2')?.target;
}

/**
 * The cgroup2 root: the existing mount, or a new one at /sys/fs/cgroup/unified (a fresh directory under the temp
 * directory when that one cannot be created). A mount made here stays: it is system state like the hierarchy itself.
 */
export function cgroup2Root(): string {
  const found = findCgroup2Mount();
  if (found !== undefined) return found;
  let dir = DEFAULT_CGROUP2_MOUNT;
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  } catch {
    dir = mkdtempSync(join(tmpdir(), 'bpf-load-cgroup2-'));
  }
  try {
    mount('cgroup2', dir, 'cgroup2', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC);
  } catch (e) {
    throw new AttachError(withContext(['no cgroup2 file system is mounted', `mounting one at ${dir}`], e instanceof Error ? e.message : String(e)), { cause: e });
  }
  return dir;
}

/**
 * A path a cgroup program may be attached to: absolute, made of safe characters, and a directory of a cgroup v2
 * file system (statfs magic), so a typo or a v1 hierarchy is refused with a message instead of an EBADF.
 */
export function checkCgroupPath(path: string, what: string): string {
  checkSafeName(path, what);
  if (!isAbsolute(path)) throw new AttachError(`${what}: ${JSON.stringify(path)} is not an absolute path`);
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new AttachError(`${what}: ${path}: cannot read it (${code})`, { cause: e });
  }
  if (type !== CGROUP2_SUPER_MAGIC) {
    throw new AttachError(`${what}: ${path} is not in a cgroup v2 hierarchy (file system magic 0x${type.toString(16)}, cgroup2 is 0x${CGROUP2_SUPER_MAGIC.toString(16)})`);
  }
  return resolve(path);
}

/**
 * Attaches a cgroup program to `options.cgroup` (default: the cgroup2 root) with the section's attach type
 * (cgroup/skb: ingress; cgroup_skb/egress: egress; sockops: cgroup_sock_ops …). Programs others attached stay.
 */
export function attachCgroup(program: LoadedProgram, options: AttachOptions): Link {
  const where = `program ${program.name} (section ${program.section})`;
  const typeName = program.spec.attachType;
  if (typeName === undefined) throw new AttachError(`${where}: the section names no cgroup attach type`);
  const attachType = attachTypeValue(typeName);
  const path = checkCgroupPath(options.cgroup ?? cgroup2Root(), `${where}: cgroup`);
  const target = `${path} (${typeName})`;

  let cgroup: Fd;
  try {
    cgroup = new Fd(openSync(path, constants.O_RDONLY | constants.O_DIRECTORY), `cgroup ${path}`);
  } catch (e) {
    throw new AttachError(withContext([where, target], `cannot open the cgroup (${(e as NodeJS.ErrnoException).code ?? 'error'})`), { cause: e });
  }
  try {
    const linkFd = attach(program, cgroup.value, attachType);
    if (linkFd !== undefined) {
      cgroup.close(); // the link holds the cgroup itself
      return bpfLink({ kind: 'cgroup', program: program.name, target }, linkFd);
    }
    return attachedCgroupProgram(program, target, cgroup, attachType);
  } catch (e) {
    try {
      if (e instanceof SysError) throw new AttachError(withContext([where, target], explain(e, cgroup.value, attachType)), { cause: e });
      throw e;
    } finally {
      cgroup.close();
    }
  }
}

/** LINK_CREATE → link fd; on kernels without cgroup links, PROG_ATTACH with ALLOW_MULTI → undefined. */
function attach(program: LoadedProgram, cgroupFd: number, attachType: number): number | undefined {
  try {
    return linkCreate({ progFd: program.fd, targetFd: cgroupFd, attachType });
  } catch (e) {
    // Before 5.7 there is no LINK_CREATE (EINVAL); a real EINVAL (wrong attach type) fails again below, as it should.
    if (!(e instanceof SysError) || e.errno !== Errno.EINVAL) throw e;
  }
  progAttach({ targetFd: cgroupFd, attachBpfFd: program.fd, attachType, attachFlags: AttachFlags.ALLOW_MULTI });
  return undefined;
}

/** EPERM as root means the cgroup holds programs attached exclusively: say which, instead of blaming privileges. */
function explain(e: SysError, cgroupFd: number, attachType: number): string {
  if (e.errno !== Errno.EPERM) return e.message;
  try {
    const query = progQuery({ targetFd: cgroupFd, attachType });
    if (query.progIds.length > 0 && (query.attachFlags & AttachFlags.ALLOW_MULTI) === 0) {
      const how = (query.attachFlags & AttachFlags.ALLOW_OVERRIDE) !== 0 ? 'with BPF_F_ALLOW_OVERRIDE' : 'exclusively';
      return `${e.message}: the cgroup already has program id ${query.progIds.join(', ')} attached ${how} for ${attachTypeName(attachType)}; ` +
        'adding ours would displace it, so it was not done';
    }
  } catch {
    // The query is only for the message.
  }
  return `${e.message} (or a parent cgroup has an exclusive ${attachTypeName(attachType)} program)`;
}

/** BPF_PROG_ATTACH on kernels without cgroup links: detached with PROG_DETACH through the cgroup fd it keeps. */
function attachedCgroupProgram(program: LoadedProgram, target: string, cgroup: Fd, attachType: number): Link {
  return onceLink({
    kind: 'cgroup',
    program: program.name,
    target,
  }, () => {
    try {
      progDetach({ targetFd: cgroup.value, attachType, attachBpfFd: program.fd });
    } finally {
      cgroup.close();
    }
  });
}
