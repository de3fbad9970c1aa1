/**
 * Kernel-state oracles for tests: each reads the kernel itself (or an independent tool) to prove that nothing a test
 * attached or loaded remains. They never go through the attach layer's own bookkeeping.
 */
import { spawnSync } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, constants, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { attachTypeValue, type AttachTypeName } from '../../src/base/uapi.js';
import {
  closeFd, Errno, linkGetFdById, linkGetNextId, linkInfo, progGetFdById, progQuery, SysError, type LinkInfo,
} from '../../src/sys/index.js';

/**
 * Id of the XDP program on `ifname`, or undefined, as iproute2 reports it (`ip -json -details link show`): an
 * oracle independent of our netlink code. Throws when ip is missing or fails.
 */
export function xdpProgramOn(ifname: string): number | undefined {
  const run = spawnSync('ip', ['-json', '-details', 'link', 'show', 'dev', ifname], { encoding: 'utf8' });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0) throw new Error(`ip link show dev ${ifname} failed (${run.status}): ${run.stderr}`);
  const links = JSON.parse(run.stdout) as Array<{ xdp?: { prog?: { id?: number }; attached?: Array<{ prog?: { id?: number } }> } }>;
  const xdp = links[0]?.xdp;
  if (xdp === undefined) return undefined;
  // One mode: xdp.prog; several modes at once: xdp.attached[] (the first is enough to say "something is there").
  return xdp.prog?.id ?? xdp.attached?.find((a) => a.prog?.id !== undefined)?.prog?.id;
}

/** Program ids attached directly to the cgroup directory `path` for `attachType` (BPF_PROG_QUERY, not effective). */
export function cgroupAttachedIds(path: string, attachType: AttachTypeName): number[] {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return [...progQuery({ targetFd: fd, attachType: attachTypeValue(attachType) }).progIds];
  } finally {
    closeSync(fd);
  }
}

/** Program ids attached to a sockmap/sockhash fd for `attachType` (BPF_PROG_QUERY on the map). */
export function mapAttachedIds(mapFd: number, attachType: AttachTypeName): number[] {
  return [...progQuery({ targetFd: mapFd, attachType: attachTypeValue(attachType) }).progIds];
}

/** Every BPF link in the system whose program is one of `progIds` (walks all link ids). */
export function linksOfPrograms(progIds: readonly number[]): LinkInfo[] {
  const wanted = new Set(progIds);
  const found: LinkInfo[] = [];
  for (let id = linkGetNextId(0); id !== undefined; id = linkGetNextId(id)) {
    let fd: number;
    try {
      fd = linkGetFdById(id);
    } catch (e) {
      if (e instanceof SysError && e.errno === Errno.ENOENT) continue; // released while we walked
      throw e;
    }
    try {
      const info = linkInfo(fd);
      if (wanted.has(info.progId)) found.push(info);
    } finally {
      closeFd(fd);
    }
  }
  return found;
}

/** Whether a program with this id is still loaded (BPF_PROG_GET_FD_BY_ID, fd closed at once). */
export function programExists(id: number): boolean {
  let fd: number;
  try {
    fd = progGetFdById(id);
  } catch (e) {
    if (e instanceof SysError && e.errno === Errno.ENOENT) return false;
    throw e;
  }
  closeFd(fd);
  return true;
}

/**
 * Ids among `ids` still loaded after waiting up to `timeoutMs`. Programs held by a map's attachment (sockmap) are
 * released from a kernel work queue after the map fd closes, so "gone" is eventually, not instantly, true.
 */
export async function programsStillLoaded(ids: readonly number[], timeoutMs = 3000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = ids.filter(programExists);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(20);
  }
}
