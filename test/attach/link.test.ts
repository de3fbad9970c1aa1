import { existsSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCgroup2Mount } from '../../src/attach/cgroup.js';
import { AttachError, BpfLink, Fd, openObject, openPinnedLink, SysArgumentError } from '../../src/index.js';
import { objPin, SysError } from '../../src/sys/index.js';
import { eventually, kernelTest, openFdCount } from '../helpers/kernel.js';
import { cgroupAttachedIds, linksOfPrograms, programExists } from '../helpers/leftovers.js';

/** A bpffs directory of our own, removed with everything in it. */
function pinDir(): string {
  return mkdtempSync(join('/sys/fs/bpf', `bpf-load-link-${process.pid}-`));
}

describe('Fd', () => {
  kernelTest('closes once, refuses use after close by name, and tracks where open fds were made', () => {
    Fd.track(true);
    try {
      const before = openFdCount();
      const obj = openObject('c-samples/raw_tp_kern.o');
      const link = obj.attach(obj.programs[0]!);
      const fd = link.fd!;
      expect(Fd.openFds().map((r) => r.what)).toContain(fd.what);
      expect(Fd.openFds().find((r) => r.what === fd.what)?.createdAt).toMatch(/raw-tracepoint/);
      obj.close();
      expect(fd.closed).toBe(true);
      expect(Fd.openFds().map((r) => r.what)).not.toContain(fd.what);
      expect(() => fd.value).toThrow(SysArgumentError);
      expect(() => fd.value).toThrow(`${fd.what}: used after its fd was closed`);
      fd.close(); // a second close is a no-op, not EBADF on someone else's fd
      expect(openFdCount()).toBe(before);
    } finally {
      Fd.track(false);
    }
  });

  it('refuses what is not a descriptor', () => {
    expect(() => new Fd(-1, 'map m')).toThrow('map m: -1 is not a file descriptor');
  });
});

describe('Link', () => {
  kernelTest('a BPF link pins, reopens from its pin, reports info, updates to another program, and detaches', async () => {
    const root = findCgroup2Mount();
    if (root === undefined) throw new Error('no cgroup2 mount');
    const cgroup = mkdtempSync(join(root, 'bpf-load-link-'));
    const dir = pinDir();
    const first = openObject('c-samples/cgroup_kern.o');
    const second = openObject('c-samples/cgroup_kern.o');
    try {
      const program = first.programs.find((p) => p.spec.attachType === 'cgroup_inet_ingress')!;
      const replacement = second.program(program.name);
      const link = first.attach(program, { cgroup });
      expect(link).toBeInstanceOf(BpfLink);
      expect(link.info()).toMatchObject({ typeName: 'cgroup', progId: program.id, attachTypeName: 'cgroup_inet_ingress' });

      const path = join(dir, 'ingress');
      link.pin(path);
      expect(link.pinnedPath).toBe(path);
      expect(() => link.pin(join(dir, 'again'))).toThrow(/already pinned at/);
      const reopened = openPinnedLink(path);
      expect(reopened.info().id).toBe(link.info().id);
      expect(reopened).toMatchObject({ kind: 'cgroup', program: program.name, pinnedPath: path });

      link.update(replacement);
      expect(cgroupAttachedIds(cgroup, 'cgroup_inet_ingress')).toEqual([replacement.id]);
      expect(reopened.info().progId).toBe(replacement.id);

      reopened.release(); // our second reference goes; the link stays
      expect(cgroupAttachedIds(cgroup, 'cgroup_inet_ingress')).toEqual([replacement.id]);
      link.detach();
      expect(existsSync(path)).toBe(false);
      expect(cgroupAttachedIds(cgroup, 'cgroup_inet_ingress')).toEqual([]);
      expect(linksOfPrograms([program.id, replacement.id])).toEqual([]);
    } finally {
      first.close();
      second.close();
      rmSync(dir, { recursive: true, force: true });
      rmdirSync(cgroup);
    }
  });

  kernelTest('a pinned link stays attached after its object closes; detaching it through the pin removes everything', () => {
    const dir = pinDir();
    let id = 0;
    try {
      const obj = openObject('c-samples/raw_tp_kern.o');
      const program = obj.programs[0]!;
      id = program.id;
      obj.attach(program).pin(join(dir, 'link'));
      obj.close();
      expect(programExists(id)).toBe(true);
      expect(linksOfPrograms([id]).map((l) => l.typeName)).toEqual(['raw_tracepoint']);

      const link = openPinnedLink(join(dir, 'link'));
      expect(link).toMatchObject({ kind: 'raw_tracepoint', program: program.name });
      link.detach();
      expect(existsSync(join(dir, 'link'))).toBe(false);
      expect(linksOfPrograms([id])).toEqual([]);
      expect(eventually(() => !programExists(id))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  kernelTest('attachments that are not BPF links say what they cannot do; detach still works', () => {
    const obj = openObject('c-samples/sockex1_kern.o');
    try {
      const link = obj.attach('bpf_prog1', { iface: 'lo' });
      expect(link.fd).toBeUndefined();
      expect(() => link.pin('/sys/fs/bpf/x')).toThrow(AttachError);
      expect(() => link.pin('/sys/fs/bpf/x')).toThrow('socket attachment of bpf_prog1 (lo) is not a BPF link and cannot be pinned');
      expect(() => link.update(obj.program('bpf_prog1'))).toThrow(/is not a BPF link and cannot be updated/);
      expect(() => link.info()).toThrow(/is not a BPF link and cannot be asked for link info/);
      link.detach();
      link.detach();
    } finally {
      obj.close();
    }
  });

  kernelTest('openPinnedLink names what is pinned when it is not a link', () => {
    const dir = pinDir();
    const obj = openObject('c-samples/raw_tp_kern.o');
    try {
      const path = join(dir, 'a-map');
      objPin(obj.maps[0]!.fd, path);
      expect(() => openPinnedLink(path)).toThrow(`${path}: pinned object is a map, not a link`);
      const missing = join(dir, 'nothing');
      const e = (() => {
        try {
          openPinnedLink(missing);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(AttachError);
      expect((e as AttachError).cause).toBeInstanceOf(SysError);
      expect((e as Error).message).toBe(`bpf(BPF_OBJ_GET): ${missing}: No such file or directory (ENOENT)`);
    } finally {
      obj.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
