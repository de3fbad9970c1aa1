import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'; // spawns oracles and our CLI with argument arrays: no shell
import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import { attachTypeValue, progTypeValue } from '../../src/base/uapi.js';
import { attachCgroup, checkCgroupPath, findCgroup2Mount } from '../../src/attach/cgroup.js';
import { AttachConflictError, AttachError, type Link } from '../../src/attach/link.js';
import { attachSockmap, findSockMap, sockmapAttachType } from '../../src/attach/sockmap.js';
import { attachXdp, netlinkMessages, parseXdpState, queryXdp, xdpProgramIds } from '../../src/attach/xdp.js';
import { loadObject, type LoadedObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { closeFd, progAttach, progDetach, progLoad } from '../../src/sys/index.js';
import { runCli } from '../helpers/cli.js';
import { buildElf } from '../helpers/elf-builder.js';
import { udpToSelf } from '../helpers/traffic.js';
import { isExecutable, kernelTest, kernelUnavailableReason, openFdCount, SAMPLES_DIR } from '../helpers/kernel.js';
import {
  cgroupAttachedIds, linksOfPrograms, mapAttachedIds, programExists, programsStillLoaded, xdpProgramOn,
} from '../helpers/leftovers.js';
import { catchError } from '../helpers/errors.js';

const IPPROTO_UDP = 17;

function load(file: string): LoadedObject {
  return loadObject(parseObject(readFileSync(join(SAMPLES_DIR, file)), { name: file }));
}

/** Sum of a per-CPU u64 array slot. */
function perCpuSum(object: LoadedObject, map: string, key: number): bigint {
  const handle = object.map(map);
  const value = handle.get(key);
  if (value === undefined) throw new Error(`${map}[${key}] missing`);
  return handle.perCpuValues(value).reduce((sum, v) => sum + v.readBigUInt64LE(0), 0n);
}

function u64At(object: LoadedObject, map: string, key: number): bigint {
  const value = object.map(map).get(key);
  if (value === undefined) throw new Error(`${map}[${key}] missing`);
  return value.readBigUInt64LE(0);
}

/**
 * A node child (argument array, no shell) that waits for a line on stdin before running `body`, so the test can move
 * it into a cgroup first. It reports with lines on stdout.
 */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private stderr = '';
  private exitCode: number | null | undefined;
  private readonly closed: Promise<void>;

  constructor(body: string) {
    const code = `const net = require('node:net'); const dgram = require('node:dgram');
      const stdinLines = []; const waiting = [];
      require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
        const w = waiting.shift(); if (w) w(l); else stdinLines.push(l);
      });
      const nextInput = () => stdinLines.length > 0 ? Promise.resolve(stdinLines.shift()) : new Promise((r) => waiting.push(r));
      const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
      (async () => { await nextInput(); ${body} })().then(() => process.exit(0), (e) => { console.error(e); process.exit(3); });`;
    this.process = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
    let partial = '';
    this.process.stdout.setEncoding('utf8').on('data', (d: string) => {
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.process.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.closed = new Promise((resolve) => this.process.on('close', (code) => {
      this.exitCode = code;
      resolve();
    }));
  }

  get pid(): number {
    const pid = this.process.pid;
    if (pid === undefined) throw new Error(`child did not start: ${this.stderr}`);
    return pid;
  }

  send(line: string): void {
    this.process.stdin.write(`${line}\n`);
  }

  async nextReport(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.exitCode !== undefined) throw new Error(`child exited (${this.exitCode}) without reporting: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`child silent for ${timeoutMs} ms: ${this.stderr}`);
      await sleep(10);
    }
    return JSON.parse(this.lines.shift()!) as Record<string, unknown>;
  }

  async exit(): Promise<number | null> {
    await this.closed;
    if (this.exitCode !== 0) throw new Error(`child exited with ${this.exitCode}: ${this.stderr}`);
    return this.exitCode;
  }

  /** Last resort in finally blocks: ends this child (by its handle) and waits for it. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) {
      this.process.kill('SIGKILL');
      await this.closed;
    }
  }
}

/** A fresh cgroup under the cgroup2 root; removed (retrying while the kernel reaps its last task) by remove(). */
function makeCgroup(): { path: string; moveIn(pid: number): void; remove(): Promise<void> } {
  const root = findCgroup2Mount();
  if (root === undefined) throw new Error('no cgroup2 mount');
  const path = mkdtempSync(join(root, 'bpf-load-net-'));
  return {
    path,
    moveIn(pid) {
      writeFileSync(join(path, 'cgroup.procs'), String(pid));
    },
    async remove() {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(path);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || attempt > 100) throw e;
          await sleep(20);
        }
      }
    },
  };
}

/** Everything the objects loaded is gone once they are closed: programs unloaded, no links left, fds back. */
async function expectGone(objects: LoadedObject | LoadedObject[], fdsBefore: number): Promise<void> {
  const all = Array.isArray(objects) ? objects : [objects];
  const ids = all.flatMap((o) => o.programs.map((p) => p.id));
  for (const o of all) o.close();
  expect(linksOfPrograms(ids)).toEqual([]);
  expect(await programsStillLoaded(ids)).toEqual([]);
  expect(openFdCount()).toBe(fdsBefore);
}

function bpftool(...args: string[]): string {
  const run = spawnSync('bpftool', args, { encoding: 'utf8' });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0) throw new Error(`bpftool ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

// ---------------------------------------------------------------------------------------------------------------

describe('rtnetlink parsing (no kernel)', () => {
  /** RTM_NEWLINK payload: ifinfomsg + IFLA_XDP nest holding the given u8/u32 attributes. */
  function newlinkPayload(nested: Array<[type: number, value: number, size: 1 | 4]>): Buffer {
    const inner = Buffer.concat(nested.map(([type, value, size]) => {
      const a = Buffer.alloc(8);
      a.writeUInt16LE(4 + size, 0);
      a.writeUInt16LE(type, 2);
      if (size === 1) a.writeUInt8(value, 4);
      else a.writeUInt32LE(value, 4);
      return a;
    }));
    const ifla = Buffer.alloc(4);
    ifla.writeUInt16LE(4 + inner.byteLength, 0);
    ifla.writeUInt16LE(43 | 0x8000, 2);
    // An unrelated attribute first (IFLA_MTU), so the walk must skip it.
    const mtu = Buffer.from([8, 0, 4, 0, 0, 0, 1, 0]);
    return Buffer.concat([Buffer.alloc(16), mtu, ifla, inner]);
  }

  it('reads the program id and mode from IFLA_XDP', () => {
    expect(parseXdpState(newlinkPayload([[2, 2, 1], [4, 77, 4]]), 1)).toEqual({ ifindex: 1, attached: 2, skbProgId: 77, drvProgId: 0, hwProgId: 0 });
    expect(parseXdpState(newlinkPayload([[2, 1, 1], [4, 78, 4]]), 1)).toMatchObject({ drvProgId: 78, skbProgId: 0 });
    const multi = parseXdpState(newlinkPayload([[2, 4, 1], [6, 5, 4], [7, 9, 4]]), 3);
    expect(xdpProgramIds(multi)).toEqual([5, 9]);
    expect(xdpProgramIds(parseXdpState(newlinkPayload([[2, 0, 1]]), 1))).toEqual([]);
    expect(xdpProgramIds(parseXdpState(Buffer.alloc(16), 1))).toEqual([]);
  });

  it('refuses lengths that leave the datagram, with a typed error', () => {
    const truncated = newlinkPayload([[2, 2, 1], [4, 77, 4]]).subarray(0, 30);
    expect(() => parseXdpState(truncated, 1)).toThrow(BpfLoadError);
    const header = Buffer.alloc(16);
    header.writeUInt32LE(400, 0); // claims 400 bytes
    expect(() => netlinkMessages(header)).toThrow(/outside the 16-byte message/);
    header.writeUInt32LE(8, 0); // shorter than a header
    expect(() => netlinkMessages(header)).toThrow(/below the header size/);
  });
});

describe('cgroup paths (no kernel)', () => {
  it('finds the cgroup2 mount among v1 hierarchies', () => {
    const mounts = [
      'tmpfs /sys/fs/cgroup tmpfs rw 0 0',
      'cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0',
    ].join('\n');
    expect(findCgroup2Mount(mounts)).toBe('/sys/fs/cgroup/unified');
    expect(findCgroup2Mount('cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n')).toBeUndefined();
  });

  it('refuses relative, unsafe and non-cgroup2 paths before any syscall', () => {
    expect(() => checkCgroupPath('sys/fs/cgroup', 'cgroup')).toThrow(/not an absolute path/);
    expect(() => checkCgroupPath('/sys/fs/cgroup/unified/../x', 'cgroup')).toThrow(/unsafe name/);
    expect(() => checkCgroupPath('/tmp/a b', 'cgroup')).toThrow(/unsafe name/);
    expect(() => checkCgroupPath('/proc', 'cgroup')).toThrow(/\/proc is not in a cgroup v2 hierarchy \(file system magic 0x9fa0/);
    expect(() => checkCgroupPath('/no/such/cgroup', 'cgroup')).toThrow(/cannot read it \(ENOENT\)/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('XDP', () => {
  beforeAll(() => {
    if (kernelUnavailableReason() !== undefined) return;
    // A program left on lo by an earlier, crashed run would make every test here fail for the wrong reason.
    expect(xdpProgramOn('lo'), 'lo must start without an XDP program').toBeUndefined();
  });

  kernelTest('xdp1 on lo counts our UDP datagrams; detach leaves lo without XDP; close unloads', async () => {
    const fds = openFdCount();
    const object = load('xdp1_kern.o');
    const program = object.program('xdp_prog1');
    let link: Link | undefined;
    try {
      link = attachXdp(program, {});
      expect(link).toMatchObject({ kind: 'xdp', program: 'xdp_prog1', target: 'lo (xdp skb mode)' });
      // iproute2 and our own netlink query agree on what runs on lo.
      expect(xdpProgramOn('lo')).toBe(program.id);
      expect(queryXdp('lo')).toMatchObject({ attached: 2, skbProgId: program.id, drvProgId: 0, hwProgId: 0 });
      // This kernel has XDP links: the attachment is one, owned by us.
      expect(linksOfPrograms([program.id])).toMatchObject([{ typeName: 'xdp', progId: program.id, ifindex: 1 }]);

      const before = perCpuSum(object, 'rxcnt', IPPROTO_UDP);
      await udpToSelf(25);
      expect(perCpuSum(object, 'rxcnt', IPPROTO_UDP) - before).toBeGreaterThanOrEqual(25n);

      link.detach();
      link.detach(); // twice is harmless
      expect(xdpProgramOn('lo')).toBeUndefined();
      expect(linksOfPrograms([program.id])).toEqual([]);
      // Nothing runs any more: the counter stands still.
      const after = perCpuSum(object, 'rxcnt', IPPROTO_UDP);
      await udpToSelf(5);
      expect(perCpuSum(object, 'rxcnt', IPPROTO_UDP)).toBe(after);
    } finally {
      link?.detach();
      await expectGone(object, fds);
    }
  });

  kernelTest('a program we attached through a link is never replaced: refused without force, kernel refuses with it', async () => {
    const fds = openFdCount();
    const foreign = load('xdp1_kern.o');
    const ours = load('xdp1_kern.o');
    const foreignProgram = foreign.program('xdp_prog1');
    const ourProgram = ours.program('xdp_prog1');
    let foreignLink: Link | undefined;
    try {
      foreignLink = attachXdp(foreignProgram, { iface: 'lo' });
      const refused = catchError(() => attachXdp(ourProgram, { iface: 'lo' }));
      expect(refused).toBeInstanceOf(AttachConflictError);
      expect(refused.message).toBe(`program xdp_prog1 (section xdp1): lo (xdp skb mode): lo already runs XDP program id ${foreignProgram.id} "xdp_prog1"`);
      // The kernel protects a link from replacement: force says so, naming the link, before asking rtnetlink.
      const forced = catchError(() => attachXdp(ourProgram, { iface: 'lo', force: true }));
      expect(forced).toBeInstanceOf(AttachError);
      expect(forced).not.toBeInstanceOf(AttachConflictError);
      const linkId = linksOfPrograms([foreignProgram.id])[0]!.id;
      expect(forced.message).toBe(`program xdp_prog1 (section xdp1): lo (xdp skb mode): lo runs XDP program id ${foreignProgram.id} "xdp_prog1" through BPF link id ${linkId}, which force cannot replace: it goes when its owner closes or unpins the link`);
      // The CLI names its flag; with it, the same refusal as the library's.
      const cli = runCli(['c-samples/xdp1_kern.o', '--count', '0']);
      expect(cli.status).toBe(1);
      expect(cli.stderr).toMatch(new RegExp(`^bpf-load: program xdp_prog1 \\(section xdp1\\): lo \\(xdp skb mode\\): lo already runs XDP program id ${foreignProgram.id} "xdp_prog1"; --force replaces it\n$`));
      const cliForced = runCli(['c-samples/xdp1_kern.o', '--count', '0', '--force']);
      expect(cliForced.status).toBe(1);
      expect(cliForced.stderr).toContain(`through BPF link id ${linkId}, which force cannot replace`);
      // Attaching the same program twice is refused as such.
      expect(catchError(() => attachXdp(foreignProgram, {})).message).toMatch(/program id \d+ \(this program, already attached\)/);
      expect(xdpProgramOn('lo')).toBe(foreignProgram.id);
    } finally {
      foreignLink?.detach();
      await expectGone([ours, foreign], fds);
      expect(xdpProgramOn('lo')).toBeUndefined();
    }
  });

  kernelTest('a foreign program attached by bpftool (rtnetlink): refused without force, replaced with it; detach removes only ours and puts theirs back', async () => {
    if (!isExecutable('/usr/sbin/bpftool') && !isExecutable('/usr/bin/bpftool')) throw new Error('bpftool is needed as the foreign attacher');
    const fds = openFdCount();
    const foreign = load('xdp1_kern.o');
    const ours = load('xdp1_kern.o');
    const foreignId = foreign.program('xdp_prog1').id;
    const ourProgram = ours.program('xdp_prog1');
    let link: Link | undefined;
    try {
      bpftool('net', 'attach', 'xdpgeneric', 'id', String(foreignId), 'dev', 'lo');
      expect(xdpProgramOn('lo')).toBe(foreignId);
      expect(catchError(() => attachXdp(ourProgram, {})).message).toMatch(new RegExp(`lo already runs XDP program id ${foreignId} "xdp_prog1"$`));
      expect(xdpProgramOn('lo')).toBe(foreignId);

      link = attachXdp(ourProgram, { force: true });
      expect(xdpProgramOn('lo')).toBe(ourProgram.id);
      expect(linksOfPrograms([ourProgram.id])).toEqual([]); // rtnetlink attachment, not a link
      const before = perCpuSum(ours, 'rxcnt', IPPROTO_UDP);
      await udpToSelf(10);
      expect(perCpuSum(ours, 'rxcnt', IPPROTO_UDP) - before).toBeGreaterThanOrEqual(10n);

      // Someone puts theirs back over ours: our detach must leave theirs alone.
      bpftool('net', 'attach', 'xdpgeneric', 'id', String(foreignId), 'dev', 'lo', 'overwrite');
      link.detach();
      expect(xdpProgramOn('lo')).toBe(foreignId);

      // Replace again: detach removes ours and puts back the program force displaced.
      link = attachXdp(ourProgram, { force: true });
      expect(xdpProgramOn('lo')).toBe(ourProgram.id);
      link.detach();
      expect(xdpProgramOn('lo')).toBe(foreignId);
      bpftool('net', 'detach', 'xdpgeneric', 'dev', 'lo');
      expect(xdpProgramOn('lo')).toBeUndefined();
    } finally {
      link?.detach();
      if (xdpProgramOn('lo') !== undefined) bpftool('net', 'detach', 'xdpgeneric', 'dev', 'lo');
      await expectGone([ours, foreign], fds);
    }
  });

  kernelTest('bad interfaces and modes fail with the name and the kernel\'s reason', async () => {
    const fds = openFdCount();
    const object = load('xdp1_kern.o');
    const program = object.program('xdp_prog1');
    try {
      const unsafe = catchError(() => attachXdp(program, { iface: 'lo; reboot' }));
      expect(unsafe).toBeInstanceOf(AttachError);
      expect(unsafe.message).toBe('program xdp_prog1 (section xdp1): interface: unsafe name "lo; reboot" (only letters, digits and _.:/- are allowed, no "..")');
      const missing = catchError(() => attachXdp(program, { iface: 'nosuchif0' }));
      expect(missing).toBeInstanceOf(AttachError);
      expect(missing.message).toBe('program xdp_prog1 (section xdp1): nosuchif0 (xdp skb mode): if_nametoindex: nosuchif0: No such device (ENODEV)');
      // lo has no driver XDP: the link attempt fails, rtnetlink then brings the kernel's explanation.
      const drv = catchError(() => attachXdp(program, { xdpMode: 'drv' }));
      expect(drv).toBeInstanceOf(AttachError);
      expect(drv.message).toMatch(/^program xdp_prog1 \(section xdp1\): lo \(xdp drv mode\): netlink\(RTM_SETLINK\): lo: .*\(EOPNOTSUPP\): .*native mode/);
      expect(xdpProgramOn('lo')).toBeUndefined();
    } finally {
      await expectGone(object, fds);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('cgroup programs', () => {
  kernelTest('cgroup/skb and cgroup/sock on a test cgroup count a child\'s traffic and sockets, and nobody else\'s', async () => {
    const fds = openFdCount();
    const cgroup = makeCgroup();
    const object = load('cgroup_kern.o');
    const skb = object.program('count_skb');
    const sock = object.program('count_sock_create');
    const links: Link[] = [];
    const datagrams = 12;
    const child = new Child(`
      const udp = dgram.createSocket('udp4');
      await new Promise((r) => udp.bind(0, '127.0.0.1', r));
      let got = 0;
      const all = new Promise((r) => udp.on('message', () => { if (++got === ${datagrams}) r(); }));
      for (let i = 0; i < ${datagrams}; i++) udp.send(Buffer.alloc(100), udp.address().port, '127.0.0.1');
      await all;
      udp.close();
      const server = net.createServer((c) => c.end('pong'));
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const reply = await new Promise((resolve, reject) => {
        let text = '';
        net.connect(server.address().port, '127.0.0.1').on('data', (d) => (text += d)).on('end', () => resolve(text)).on('error', reject);
      });
      server.close();
      say({ udp: got, tcp: reply });`);
    try {
      links.push(attachCgroup(skb, { cgroup: cgroup.path }));
      links.push(attachCgroup(sock, { cgroup: cgroup.path }));
      expect(links.map((l) => l.target)).toEqual([`${cgroup.path} (cgroup_inet_ingress)`, `${cgroup.path} (cgroup_inet_sock_create)`]);
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_inet_ingress')).toEqual([skb.id]);
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_inet_sock_create')).toEqual([sock.id]);
      expect(linksOfPrograms([skb.id, sock.id]).map((l) => l.attachTypeName).sort()).toEqual(['cgroup_inet_ingress', 'cgroup_inet_sock_create']);

      // This process is not in the cgroup: its sockets and datagrams are not counted.
      await udpToSelf(5);
      expect([u64At(object, 'skb_stats', 0), u64At(object, 'skb_stats', 1), u64At(object, 'sock_creates', 0)]).toEqual([0n, 0n, 0n]);

      cgroup.moveIn(child.pid);
      expect(readFileSync(join(cgroup.path, 'cgroup.procs'), 'utf8').trim()).toBe(String(child.pid));
      child.send('go');
      expect(await child.nextReport()).toEqual({ udp: datagrams, tcp: 'pong' });
      await child.exit();

      const packets = u64At(object, 'skb_stats', 0);
      const bytes = u64At(object, 'skb_stats', 1);
      // Ingress sees the datagrams (IP header included in skb->len: 20 + 8 + 100) plus the TCP segments.
      expect(packets).toBeGreaterThanOrEqual(BigInt(datagrams + 3));
      expect(bytes).toBeGreaterThanOrEqual(BigInt(datagrams * 128));
      // The UDP socket, the listener and the client (accepted sockets are clones, not creations).
      expect(u64At(object, 'sock_creates', 0)).toBeGreaterThanOrEqual(3n);

      for (const l of links) l.detach();
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_inet_ingress')).toEqual([]);
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_inet_sock_create')).toEqual([]);
      expect(linksOfPrograms([skb.id, sock.id])).toEqual([]);
    } finally {
      await child.kill();
      for (const l of links) l.detach();
      await cgroup.remove();
      await expectGone(object, fds);
    }
  });

  kernelTest('the default target is the cgroup2 root; ours joins whatever is there and leaves it', async () => {
    const fds = openFdCount();
    const root = findCgroup2Mount()!;
    const object = load('cgroup_kern.o');
    const sock = object.program('count_sock_create');
    const othersBefore = cgroupAttachedIds(root, 'cgroup_inet_sock_create');
    let link: Link | undefined;
    try {
      link = attachCgroup(sock, {});
      expect(link.target).toBe(`${root} (cgroup_inet_sock_create)`);
      expect(cgroupAttachedIds(root, 'cgroup_inet_sock_create')).toEqual([...othersBefore, sock.id]);
      // The root covers this process too.
      await udpToSelf(1);
      expect(u64At(object, 'sock_creates', 0)).toBeGreaterThanOrEqual(1n);
      link.detach();
      expect(cgroupAttachedIds(root, 'cgroup_inet_sock_create')).toEqual(othersBefore);
    } finally {
      link?.detach();
      await expectGone(object, fds);
    }
  });

  kernelTest('a program attached exclusively by someone else is not displaced, and the error says so', async () => {
    const fds = openFdCount();
    const cgroup = makeCgroup();
    const object = load('cgroup_kern.o');
    const ingress = attachTypeValue('cgroup_inet_ingress');
    // "Someone else": a return-1 cgroup_skb program attached without BPF_F_ALLOW_MULTI.
    const other = progLoad({
      progType: progTypeValue('cgroup_skb'), license: 'GPL', expectedAttachType: ingress,
      insns: Buffer.from('b700000001000000' + '9500000000000000', 'hex'),
    });
    try {
      const dir = openSync(cgroup.path, 'r');
      try {
        progAttach({ targetFd: dir, attachBpfFd: other, attachType: ingress });
        const otherId = cgroupAttachedIds(cgroup.path, 'cgroup_inet_ingress')[0];
        const err = catchError(() => attachCgroup(object.program('count_skb'), { cgroup: cgroup.path }));
        expect(err).toBeInstanceOf(AttachError);
        expect(err.message).toContain(`program count_skb (section cgroup/skb): ${cgroup.path} (cgroup_inet_ingress): bpf(BPF_LINK_CREATE)`);
        expect(err.message).toContain(`the cgroup already has program id ${otherId} attached exclusively for cgroup_inet_ingress`);
        expect(cgroupAttachedIds(cgroup.path, 'cgroup_inet_ingress')).toEqual([otherId]);
        progDetach({ targetFd: dir, attachBpfFd: other, attachType: ingress });
      } finally {
        closeSync(dir);
      }
    } finally {
      closeFd(other);
      await cgroup.remove();
      await expectGone(object, fds);
    }
  });

  kernelTest('cgroup targets are checked before use', async () => {
    const fds = openFdCount();
    const object = load('cgroup_kern.o');
    try {
      const skb = object.program('count_skb');
      expect(catchError(() => attachCgroup(skb, { cgroup: '/sys/fs/cgroup/cpu' })).message)
        .toMatch(/^program count_skb \(section cgroup\/skb\): cgroup: \/sys\/fs\/cgroup\/cpu is not in a cgroup v2 hierarchy/);
      expect(catchError(() => attachCgroup(skb, { cgroup: '../unified' })).message).toMatch(/unsafe name/);
    } finally {
      await expectGone(object, fds);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('sockops and sockmap programs', () => {
  kernelTest('sockops fills sock_map with a child\'s TCP connection; sk_skb and sk_msg programs on the map see its data', async () => {
    const fds = openFdCount();
    const cgroup = makeCgroup();
    const object = load('sockmap_kern.o');
    const sockMap = object.map('sock_map');
    const sockops = object.program('sockmap_sockops');
    const parser = object.program('sockmap_stream_parser');
    const verdict = object.program('sockmap_stream_verdict');
    const msg = object.program('sockmap_msg');
    const links: Link[] = [];
    const child = new Child(`
      const server = net.createServer((c) => c.on('data', (d) => c.write('pong:' + d)));
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const client = net.connect(server.address().port, '127.0.0.1');
      await new Promise((r, j) => client.on('connect', r).on('error', j));
      client.write('ping');
      const reply = await new Promise((r) => client.once('data', (d) => r(String(d))));
      say({ reply });
      await nextInput();
      client.destroy();
      server.close();`);
    try {
      // Programs on the map first: a socket takes the map's programs when it is added.
      links.push(attachSockmap(parser, object), attachSockmap(verdict, object), attachSockmap(msg, object));
      expect(links.map((l) => l.target)).toEqual([
        'map sock_map (sk_skb_stream_parser)', 'map sock_map (sk_skb_stream_verdict)', 'map sock_map (sk_msg_verdict)',
      ]);
      expect(mapAttachedIds(sockMap.fd, 'sk_skb_stream_parser')).toEqual([parser.id]);
      expect(mapAttachedIds(sockMap.fd, 'sk_skb_stream_verdict')).toEqual([verdict.id]);
      expect(mapAttachedIds(sockMap.fd, 'sk_msg_verdict')).toEqual([msg.id]);
      links.push(attachCgroup(sockops, { cgroup: cgroup.path }));
      expect(links[3]!.target).toBe(`${cgroup.path} (cgroup_sock_ops)`);
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_sock_ops')).toEqual([sockops.id]);

      cgroup.moveIn(child.pid);
      child.send('go');
      expect(await child.nextReport()).toEqual({ reply: 'pong:ping' });
      const stats = [0, 1, 2, 3, 4].map((k) => u64At(object, 'sock_stats', k));
      expect(stats[0], 'passive established').toBe(1n);
      expect(stats[1], 'active established').toBe(1n);
      expect(stats[2], 'sock_map updates').toBe(2n);
      expect(stats[3], 'sk_msg runs (ping and pong)').toBeGreaterThanOrEqual(2n);
      expect(stats[4], 'stream verdicts (ping and pong)').toBeGreaterThanOrEqual(2n);
      // Both slots hold a socket while the connection is open: each delete succeeds once, then the slot is empty.
      expect(sockMap.delete(0)).toBe(true);
      expect(sockMap.delete(1)).toBe(true);
      expect(catchError(() => sockMap.delete(0))).toMatchObject({ code: 'EINVAL' });
      child.send('exit');
      await child.exit();

      for (const l of links) l.detach();
      expect(mapAttachedIds(sockMap.fd, 'sk_skb_stream_parser')).toEqual([]);
      expect(mapAttachedIds(sockMap.fd, 'sk_skb_stream_verdict')).toEqual([]);
      expect(mapAttachedIds(sockMap.fd, 'sk_msg_verdict')).toEqual([]);
      expect(cgroupAttachedIds(cgroup.path, 'cgroup_sock_ops')).toEqual([]);
      expect(linksOfPrograms([sockops.id])).toEqual([]);
    } finally {
      await child.kill();
      for (const l of links) l.detach();
      await cgroup.remove();
      await expectGone(object, fds);
    }
  });

  kernelTest('sockmap attachments: one program per hook, closing the object releases them', async () => {
    const fds = openFdCount();
    const object = load('sockmap_kern.o');
    const parser = object.program('sockmap_stream_parser');
    try {
      attachSockmap(parser, object);
      expect(catchError(() => attachSockmap(parser, object)).message)
        .toBe('program sockmap_stream_parser (section sk_skb/stream_parser): map sock_map (sk_skb_stream_parser): this program is already attached there');
      expect(programExists(parser.id)).toBe(true);
    } finally {
      // No detach: the attachment dies with the map.
      await expectGone(object, fds);
    }
  });

  kernelTest('an sk_skb section that does not say parser or verdict, and an object without a sockmap, are refused', async () => {
    const fds = openFdCount();
    const object = loadObject(parseObject(skSkbObject(['sk_skb', 'sk_skb/stream_verdict']), { name: 'sk_skb_test.o' }));
    try {
      const [bare, verdictOnly] = object.programs;
      const unnamed = catchError(() => attachSockmap(bare!, object));
      expect(unnamed).toBeInstanceOf(AttachError);
      expect(unnamed.message).toMatch(/^program \S+ \(section sk_skb\): an sk_skb program is either a stream parser or a verdict program and the section name does not say which; name the section sk_skb\/stream_parser/);
      expect(catchError(() => attachSockmap(verdictOnly!, object)).message).toMatch(/\(section sk_skb\/stream_verdict\): the object has no sockmap or sockhash/);
    } finally {
      await expectGone(object, fds);
    }
  });
});

describe('sockmap choice (no kernel)', () => {
  type Fake = Parameters<typeof findSockMap>;
  const program = (mapIds: number[]) => ({ name: 'p', section: 'sk_msg', type: 'sk_msg', id: 9, spec: { attachType: 'sk_msg_verdict' }, info: { mapIds } }) as unknown as Fake[0];
  const object = (...maps: Array<[string, string, number]>) => ({ maps: maps.map(([name, type, id]) => ({ name, type, id })) }) as unknown as Fake[1];

  it('uses the map the program uses, else the only one, else explains', () => {
    const two = object(['a', 'sockmap', 1], ['b', 'sockhash', 2], ['stats', 'array', 3]);
    expect(findSockMap(program([2, 3]), two).name).toBe('b');
    expect(findSockMap(program([3]), object(['a', 'sockmap', 1], ['stats', 'array', 3])).name).toBe('a');
    expect(() => findSockMap(program([3]), two)).toThrow('program p (section sk_msg): the program uses no sockmap/sockhash and the object has several (a (sockmap, id 1), b (sockhash, id 2)); attach it to one of them yourself');
    expect(() => findSockMap(program([1, 2]), two)).toThrow(/uses several sockmaps\/sockhashes \(a \(sockmap, id 1\), b \(sockhash, id 2\)\)/);
    expect(sockmapAttachType(program([]))).toBe('sk_msg_verdict');
  });
});

afterAll(() => {
  if (kernelUnavailableReason() !== undefined) return;
  expect(xdpProgramOn('lo'), 'lo ends without an XDP program').toBeUndefined();
});

/** A small legacy object: one `return 1` sk_skb program per section name, no maps. */
function skSkbObject(sections: string[]): Uint8Array {
  const SHT_PROGBITS = 1;
  const SHF_ALLOC_EXEC = 0x2 | 0x4;
  const returnOne = Buffer.from('b700000001000000' + '9500000000000000', 'hex');
  return buildElf({
    machine: 247,
    sections: [
      ...sections.map((name) => ({ name, type: SHT_PROGBITS, flags: SHF_ALLOC_EXEC, data: returnOne, addralign: 8 })),
      { name: 'license', type: SHT_PROGBITS, flags: 0x3, data: Buffer.from('GPL\0') },
    ],
    symbols: sections.map((_, i) => ({ name: `prog${i}`, value: 0, size: 16, type: 2, bind: 1, shndx: i + 1 })),
  });
}
