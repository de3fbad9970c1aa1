import { closeSync, mkdtempSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { attachTypeValue, progTypeValue } from '../../src/base/uapi.js';
import {
  PerfAttrFlag, PerfSwConfig, PerfType, Sock, SysError, attachSocketFilter, getSocketOption, closeFd, detachSocketFilter, ifNameToIndex,
  linkCreate, linkDetach, linkGetFdById, linkGetNextId, linkInfo, netlinkReceive, netlinkSend, openNetlinkSocket,
  openRawSocket, parseMounts, perfEventDisable, perfEventEnable, perfEventOpen, perfEventReset, perfEventSetBpf,
  progAttach, progDetach, progInfo, progLoad, progQuery, rawTracepointOpen,
} from '../../src/sys/index.js';
import { kernelTest, noLeaks } from '../helpers/kernel.js';

const RETURN_0 = Buffer.from('b700000000000000' + '9500000000000000', 'hex');
const RETURN_1 = Buffer.from('b700000001000000' + '9500000000000000', 'hex');

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SysError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('sockets', () => {
  kernelTest('attach a socket filter to a raw socket on lo, then detach it', () => noLeaks(() => {
    const prog = progLoad({ progType: progTypeValue('socket_filter'), insns: RETURN_0, license: 'GPL' });
    try {
      const sock = openRawSocket('lo');
      try {
        // Nothing attached yet: detaching is ENOENT, which also proves detach really asks the kernel.
        expect(errnoOf(() => detachSocketFilter(sock))).toBe('ENOENT');
        const type = Buffer.alloc(4);
        expect(getSocketOption(sock, Sock.SOL_SOCKET, 3 /* SO_TYPE */, type)).toBe(4);
        expect(type.readInt32LE(0)).toBe(Sock.SOCK_RAW);
        attachSocketFilter(sock, prog);
        detachSocketFilter(sock);
        expect(errnoOf(() => detachSocketFilter(sock))).toBe('ENOENT');
      } finally {
        closeFd(sock);
      }
    } finally {
      closeFd(prog);
    }
  }));

  kernelTest('unknown interfaces are ENODEV naming the interface', () => noLeaks(() => {
    expect(ifNameToIndex('lo')).toBeGreaterThan(0);
    expect(() => openRawSocket('no-such-if0')).toThrow('if_nametoindex: no-such-if0: No such device (ENODEV)');
  }));

  kernelTest('netlink: RTM_GETLINK for lo comes back with lo\'s index', () => noLeaks(() => {
    const fd = openNetlinkSocket();
    try {
      // struct nlmsghdr (16) + struct ifinfomsg (16): RTM_GETLINK, NLM_F_REQUEST, ifi_index = lo.
      const lo = ifNameToIndex('lo');
      const req = Buffer.alloc(32);
      req.writeUInt32LE(32, 0);
      req.writeUInt16LE(18, 4); // RTM_GETLINK
      req.writeUInt16LE(1, 6); // NLM_F_REQUEST
      req.writeUInt32LE(4242, 8); // seq
      req.writeInt32LE(lo, 20); // ifi_index
      expect(netlinkSend(fd, req)).toBe(32);
      const reply = netlinkReceive(fd);
      expect(reply.readUInt32LE(0)).toBe(reply.byteLength); // one whole message
      expect(reply.readUInt16LE(4)).toBe(16); // RTM_NEWLINK
      expect(reply.readUInt32LE(8)).toBe(4242);
      expect(reply.readInt32LE(20)).toBe(lo);
    } finally {
      closeFd(fd);
    }
  }));
});

describe('perf events', () => {
  kernelTest('open a software cpu-clock event on cpu 0, drive it with ioctls, close it', () => noLeaks(() => {
    const fd = perfEventOpen(
      { type: PerfType.SOFTWARE, config: PerfSwConfig.CPU_CLOCK, samplePeriod: 1_000_000n, flags: PerfAttrFlag.DISABLED },
      -1, 0,
    );
    try {
      expect(fd).toBeGreaterThan(2);
      perfEventReset(fd);
      perfEventEnable(fd);
      perfEventDisable(fd);
      // A socket filter cannot run on a perf event: the kernel says so through the ioctl.
      const prog = progLoad({ progType: progTypeValue('socket_filter'), insns: RETURN_0, license: 'GPL' });
      try {
        let err: unknown;
        try {
          perfEventSetBpf(fd, prog);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(SysError);
        expect((err as SysError).message).toMatch(/^ioctl\(PERF_EVENT_IOC_SET_BPF\): fd \d+: /);
      } finally {
        closeFd(prog);
      }
    } finally {
      closeFd(fd);
    }
  }));

  kernelTest('perf_event_open errors name the event', () => noLeaks(() => {
    expect(() => perfEventOpen({ type: PerfType.SOFTWARE, config: 999 }, -1, 0))
      .toThrow(/^perf_event_open: type 1 config 999 pid -1 cpu 0: .*\(ENOENT\)$/);
  }));
});

function cgroup2Root(): string | undefined {
  return parseMounts(readFileSync('/proc/self/mounts', 'utf8')).find((m) => m.fstype === 'cgroup2')?.target;
}

describe('cgroup attach, query and links', () => {
  kernelTest('PROG_ATTACH / PROG_QUERY / PROG_DETACH and LINK_CREATE / LINK_DETACH on a fresh cgroup', () => noLeaks(() => {
    const root = cgroup2Root();
    expect(root, 'a cgroup2 mount').toBeDefined();
    const dir = mkdtempSync(join(root ?? '/sys/fs/cgroup', 'bpf-load-sys-'));
    const cg = openSync(dir, 'r');
    const ingress = attachTypeValue('cgroup_inet_ingress');
    const prog = progLoad({
      progType: progTypeValue('cgroup_skb'), insns: RETURN_1, license: 'GPL', expectedAttachType: ingress,
    });
    try {
      const id = progInfo(prog).id;
      expect(progQuery({ targetFd: cg, attachType: ingress }).progIds).toEqual([]);
      progAttach({ targetFd: cg, attachBpfFd: prog, attachType: ingress });
      expect(progQuery({ targetFd: cg, attachType: ingress }).progIds).toEqual([id]);
      progDetach({ targetFd: cg, attachBpfFd: prog, attachType: ingress });
      expect(progQuery({ targetFd: cg, attachType: ingress }).progIds).toEqual([]);

      const link = linkCreate({ progFd: prog, targetFd: cg, attachType: ingress });
      try {
        const info = linkInfo(link);
        expect(info).toMatchObject({ typeName: 'cgroup', progId: id, attachTypeName: 'cgroup_inet_ingress' });
        expect(info.cgroupId).toBeGreaterThan(0n);
        const ids: number[] = [];
        for (let next = linkGetNextId(0); next !== undefined; next = linkGetNextId(next)) ids.push(next);
        expect(ids).toContain(info.id);
        const again = linkGetFdById(info.id);
        try {
          expect(linkInfo(again).id).toBe(info.id);
        } finally {
          closeFd(again);
        }
        expect(progQuery({ targetFd: cg, attachType: ingress }).progIds).toEqual([id]);
        linkDetach(link);
        expect(progQuery({ targetFd: cg, attachType: ingress }).progIds).toEqual([]);
      } finally {
        closeFd(link);
      }
    } finally {
      closeFd(prog);
      closeSync(cg);
      rmdirSync(dir);
    }
  }));

  kernelTest('RAW_TRACEPOINT_OPEN returns a link that knows its tracepoint', () => noLeaks(() => {
    const prog = progLoad({ progType: progTypeValue('raw_tracepoint'), insns: RETURN_0, license: 'GPL' });
    try {
      const link = rawTracepointOpen('sys_enter', prog);
      try {
        expect(linkInfo(link)).toMatchObject({ typeName: 'raw_tracepoint', tpName: 'sys_enter', progId: progInfo(prog).id });
      } finally {
        closeFd(link);
      }
      expect(() => rawTracepointOpen('no_such_tracepoint_xyz', prog))
        .toThrow(/^bpf\(BPF_RAW_TRACEPOINT_OPEN\): no_such_tracepoint_xyz: .*\(ENOENT\)$/);
    } finally {
      closeFd(prog);
    }
  }));
});
