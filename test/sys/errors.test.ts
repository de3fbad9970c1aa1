import { describe, expect, it } from 'vitest';
import { BpfLoadError } from '../../src/base/errors.js';
import {
  Errno, KernelFeatureError, SysError, UnsupportedPlatformError, errnoName, errnoText, parseCpuList, parseMounts,
  mountedFsType, syscallNumbers,
} from '../../src/sys/index.js';
import { kernelUnavailableReason } from '../helpers/kernel.js';

describe('SysError', () => {
  it('names the call, the strerror text and the errno code', () => {
    const e = new SysError({ syscall: 'bpf', command: 'BPF_MAP_CREATE', errno: Errno.EINVAL });
    expect(e).toBeInstanceOf(BpfLoadError);
    expect(e.message).toBe('bpf(BPF_MAP_CREATE): Invalid argument (EINVAL)');
    expect([e.command, e.errno, e.code, e.syscall, e.name]).toEqual(['BPF_MAP_CREATE', 22, 'EINVAL', 'bpf', 'SysError']);
  });

  it('adds a detail as context and defaults the command to the syscall', () => {
    const e = new SysError({ syscall: 'mount', errno: Errno.ENOENT, detail: 'bpf on /nope' });
    expect(e.message).toBe('mount: bpf on /nope: No such file or directory (ENOENT)');
    expect(e.command).toBe('mount');
  });

  it('tells how to get privileges on EPERM (unprivileged), and on EACCES except from the verifier', () => {
    const perm = new SysError({ syscall: 'bpf', command: 'BPF_MAP_CREATE', errno: Errno.EPERM });
    if (kernelUnavailableReason() === undefined) {
      // A privileged process's EPERM is the kernel's refusal; the unprivileged wording is checked by the CLI test
      // that runs bpf-load under setpriv.
      expect(perm.message).toBe('bpf(BPF_MAP_CREATE): Operation not permitted (EPERM) — refused although this process has CAP_SYS_ADMIN: the kernel does not allow it (lockdown, or a feature this kernel lacks)');
    } else {
      expect(perm.message).toMatch(/^bpf\(BPF_MAP_CREATE\): Operation not permitted \(EPERM\) — run as root or grant CAP_BPF \(CAP_NET_ADMIN \/ CAP_PERFMON to attach\); on kernels before 5\.11 also raise RLIMIT_MEMLOCK$/);
    }
    const acces = new SysError({ syscall: 'perf_event_open', errno: Errno.EACCES });
    expect(acces.message).toContain('Permission denied (EACCES) — run as root or grant CAP_BPF');
    const verifier = new SysError({ syscall: 'bpf', command: 'BPF_PROG_LOAD', errno: Errno.EACCES });
    expect(verifier.message).toBe('bpf(BPF_PROG_LOAD): Permission denied (EACCES)');
  });

  it('knows the kernel-internal ENOTSUPP and survives unknown values', () => {
    expect(errnoName(524)).toBe('ENOTSUPP');
    expect(errnoText(524)).toMatch(/not supported/);
    expect(errnoName(4000)).toBe('E4000');
    expect(errnoText(4000)).toBe('Unknown error 4000');
  });
});

describe('other errors', () => {
  it('KernelFeatureError says what is missing', () => {
    const e = new KernelFeatureError('BPF_MAP_TYPE_RINGBUF', 'map events');
    expect(e.message).toBe('map events: this kernel lacks BPF_MAP_TYPE_RINGBUF');
    expect(e.feature).toBe('BPF_MAP_TYPE_RINGBUF');
    expect(e).toBeInstanceOf(BpfLoadError);
  });

  it('picks the syscall table by architecture and refuses others', () => {
    expect(syscallNumbers('x64', 'linux')).toEqual({ bpf: 321, perf_event_open: 298 });
    expect(syscallNumbers('arm64', 'linux')).toEqual({ bpf: 280, perf_event_open: 241 });
    expect(() => syscallNumbers('riscv64', 'linux')).toThrow(UnsupportedPlatformError);
    expect(() => syscallNumbers('riscv64', 'linux')).toThrow(/unsupported CPU architecture riscv64/);
    expect(() => syscallNumbers('x64', 'darwin')).toThrow(/needs Linux, this is darwin/);
  });
});

describe('CPU lists and mounts', () => {
  it('parses kernel CPU lists', () => {
    expect(parseCpuList('0\n')).toEqual([0]);
    expect(parseCpuList('0-3')).toEqual([0, 1, 2, 3]);
    expect(parseCpuList('0-1,4,6-7\n')).toEqual([0, 1, 4, 6, 7]);
    expect(parseCpuList('')).toEqual([]);
    expect(() => parseCpuList('3-1')).toThrow(/bad range "3-1"/);
    expect(() => parseCpuList('0-x')).toThrow(/bad range/);
  });

  it('reads /proc/mounts lines, octal escapes included', () => {
    const text = 'bpf /sys/fs/bpf bpf rw,nosuid 0 0\nnone /mnt/with\\040space tmpfs rw 0 0\n' +
      'tmpfs /sys/fs/bpf tmpfs rw 0 0\n';
    expect(parseMounts(text)[1]).toEqual({ source: 'none', target: '/mnt/with space', fstype: 'tmpfs', options: 'rw' });
    // The last mount on a path hides the earlier ones.
    expect(mountedFsType('/sys/fs/bpf', text)).toBe('tmpfs');
    expect(mountedFsType('/mnt/with space/', text)).toBe('tmpfs');
    expect(mountedFsType('/sys/kernel/tracing', text)).toBeUndefined();
  });
});
