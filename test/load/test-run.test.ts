import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { progTypeValue } from '../../src/base/uapi.js';
import { encodeInsns } from '../../src/insn/index.js';
import { loadObject, returnValueName, testRunProgram, testRunProgramInto, TestRunError, type LoadedObject } from '../../src/load/index.js';
import { parseObject } from '../../src/object/index.js';
import { Fd, progLoad } from '../../src/sys/index.js';
import { kernelTest, SAMPLES_DIR } from '../helpers/kernel.js';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_TX = 3;

function load(file: string): LoadedObject {
  return loadObject(parseObject(readFileSync(join(SAMPLES_DIR, file)), { name: file }));
}

/** An Ethernet frame: destination MAC 02:00:00:00:00:01, source 02:00:00:00:00:02, the given EtherType, a payload. */
function ethernet(etherType: number, payload = Buffer.from('payload bytes that stay as they are')): Buffer {
  const header = Buffer.from('020000000001020000000002', 'hex');
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etherType, 0);
  return Buffer.concat([header, type, payload]);
}

describe('BPF_PROG_TEST_RUN', () => {
  kernelTest('XDP on a crafted IPv4 frame: XDP_TX and the MAC addresses swapped in the bytes that come back', () => {
    const obj = load('test_run_kern.o');
    try {
      const input = ethernet(0x0800);
      const r = obj.program('xdp_swap').testRun({ data: input });
      expect(r.retval).toBe(XDP_TX);
      expect(r.data.subarray(0, 12).toString('hex')).toBe('020000000002020000000001');
      expect(r.data.subarray(12)).toEqual(input.subarray(12));
      expect(r.data.byteLength).toBe(input.byteLength);
      expect(input.subarray(0, 12).toString('hex')).toBe('020000000001020000000002'); // the caller's buffer is untouched
    } finally {
      obj.close();
    }
  });

  kernelTest('other frames pass unchanged; a frame shorter than an Ethernet header is dropped', () => {
    const obj = load('test_run_kern.o');
    try {
      const arp = ethernet(0x0806);
      const pass = obj.program('xdp_swap').testRun({ data: arp });
      expect(pass.retval).toBe(XDP_PASS);
      expect(pass.data).toEqual(arp);
      // The kernel wants at least ETH_HLEN bytes for XDP; the program sees the frame cut by its own bounds check.
      const short = obj.program('xdp_ring').testRun({ data: ethernet(0x0800, Buffer.alloc(10)) });
      expect(short.retval).toBe(XDP_DROP);
    } finally {
      obj.close();
    }
  });

  kernelTest('repeat runs N times: the program ran N times and the kernel reports a mean duration', () => {
    const obj = load('test_run_kern.o');
    try {
      const r = obj.program('xdp_ring').testRun({ data: ethernet(0x0800, Buffer.alloc(64)), repeat: 1000 });
      expect(r.retval).toBe(XDP_PASS);
      expect(r.durationNs).toBeGreaterThan(0);
      expect(obj.variable('ring_seq').get()).toBe(1000);
      expect(() => obj.program('xdp_ring').testRun({ repeat: 0 })).toThrow('program xdp_ring (xdp): test run: repeat must be a whole number from 1 to 4294967295, not 0');
    } finally {
      obj.close();
    }
  });

  kernelTest('a program type the kernel cannot test-run: a TestRunError naming the type', () => {
    const obj = load('ringbuf_kern.o');
    try {
      const run = () => obj.program('on_getpid').testRun();
      expect(run).toThrow(TestRunError);
      expect(run).toThrow('program on_getpid (tracepoint): test run: the kernel cannot test-run tracepoint programs (BPF_PROG_TEST_RUN: ENOTSUPP)');
    } finally {
      obj.close();
    }
  });

  kernelTest('input the kernel refuses (an XDP frame shorter than an Ethernet header) names the sizes', () => {
    const obj = load('test_run_kern.o');
    try {
      expect(() => obj.program('xdp_swap').testRun({ data: Buffer.alloc(4) })).toThrow(/program xdp_swap \(xdp\): test run: the kernel refused the input \(data 4 B, ctx 0 B\)/);
    } finally {
      obj.close();
    }
  });
});

describe('testRunInto: the packet after the run into the caller\'s buffer', () => {
  kernelTest('XDP_TX with the MAC addresses swapped in `out`; dataSize says how much of it; the input is untouched', () => {
    const obj = load('test_run_kern.o');
    try {
      const prog = obj.program('xdp_swap');
      const out = Buffer.alloc(256, 0xee);
      const input = ethernet(0x0800);
      const r = prog.testRunInto(input, out);
      expect(r.retval).toBe(XDP_TX);
      expect(r.dataSize).toBe(input.length);
      expect(out.subarray(0, 12).toString('hex')).toBe('020000000002020000000001');
      expect(out.subarray(12, r.dataSize)).toEqual(input.subarray(12));
      expect(out.subarray(r.dataSize)).toEqual(Buffer.alloc(256 - input.length, 0xee)); // nothing written past it
      expect(input.subarray(0, 12).toString('hex')).toBe('020000000001020000000002');
      // The same buffer again, another frame: the same answers as testRun() gives.
      const arp = ethernet(0x0806, Buffer.from('a longer payload than the first frame had, to change the size'));
      const again = prog.testRunInto(arp, out);
      expect(again.retval).toBe(XDP_PASS);
      expect(out.subarray(0, again.dataSize)).toEqual(prog.testRun({ data: arp }).data);
      // An exact fit is enough.
      expect(prog.testRunInto(input, Buffer.alloc(input.length)).dataSize).toBe(input.length);
    } finally {
      obj.close();
    }
  });

  kernelTest('repeat: the program runs N times and the kernel reports a mean duration', () => {
    const obj = load('test_run_kern.o');
    try {
      const r = obj.program('xdp_ring').testRunInto(ethernet(0x0800, Buffer.alloc(64)), Buffer.alloc(128), { repeat: 500 });
      expect(r.retval).toBe(XDP_PASS);
      expect(r.durationNs).toBeGreaterThan(0);
      expect(obj.variable('ring_seq').get()).toBe(500);
      expect(() => obj.program('xdp_ring').testRunInto(ethernet(0x0800), Buffer.alloc(128), { repeat: 1.5 })).toThrow(
        new TestRunError('program xdp_ring (xdp): test run: repeat must be a whole number from 1 to 4294967295, not 1.5'));
    } finally {
      obj.close();
    }
  });

  kernelTest('an output buffer too small for the packet after the run (or empty) is a TestRunError giving both sizes', () => {
    const obj = load('test_run_kern.o');
    try {
      const input = ethernet(0x0800);
      const small = Buffer.alloc(10, 0xee);
      expect(() => obj.program('xdp_swap').testRunInto(input, small)).toThrow(
        new TestRunError(`program xdp_swap (xdp): test run: the packet after the run is ${input.length} bytes, the output buffer holds 10`));
      expect(() => obj.program('xdp_swap').testRunInto(input, Buffer.alloc(0))).toThrow(
        new TestRunError(`program xdp_swap (xdp): test run: the packet after the run is ${input.length} bytes, the output buffer holds 0`));
    } finally {
      obj.close();
    }
  });

  kernelTest('input the kernel refuses and types it cannot run: the same errors as testRun()', () => {
    const xdp = load('test_run_kern.o');
    const tp = load('ringbuf_kern.o');
    try {
      expect(() => xdp.program('xdp_swap').testRunInto(Buffer.alloc(4), Buffer.alloc(64))).toThrow(
        /program xdp_swap \(xdp\): test run: the kernel refused the input \(data 4 B, ctx 0 B\)/);
      expect(() => tp.program('on_getpid').testRunInto(Buffer.alloc(64), Buffer.alloc(64))).toThrow(
        new TestRunError('program on_getpid (tracepoint): test run: the kernel cannot test-run tracepoint programs (BPF_PROG_TEST_RUN: ENOTSUPP)'));
    } finally {
      xdp.close();
      tp.close();
    }
  });

  kernelTest('one input buffer rewritten between runs: every run sees its current bytes (staged, then by address)', () => {
    const obj = load('test_run_kern.o');
    try {
      const prog = obj.program('xdp_swap');
      const frame = ethernet(0x0800, Buffer.alloc(40));
      for (let i = 0; i < 5; i++) {
        frame.fill(i + 1, 14); // the payload changes in place; the first run copies it, later ones read it where it is
        expect(prog.testRun({ data: frame }).data.subarray(14)).toEqual(Buffer.alloc(40, i + 1));
        const out = Buffer.alloc(128);
        expect(prog.testRunInto(frame, out).dataSize).toBe(frame.length);
        expect(out.subarray(14, frame.length)).toEqual(Buffer.alloc(40, i + 1));
      }
    } finally {
      obj.close();
    }
  });

  kernelTest('testRun() returns a Buffer of its own per call: later runs leave earlier results as they were', () => {
    const obj = load('test_run_kern.o');
    try {
      const prog = obj.program('xdp_swap');
      const frames = Array.from({ length: 600 }, (_, i) => ethernet(0x0800, Buffer.alloc(20 + (i % 50), i & 0xff)));
      const results = frames.map((f) => prog.testRun({ data: f }));
      expect(results.every((r, i) => r.retval === XDP_TX && r.data.length === frames[i]!.length &&
        r.data.subarray(14).equals(frames[i]!.subarray(14)) && r.data.subarray(0, 12).toString('hex') === '020000000002020000000001')).toBe(true);
      results[0]!.data.fill(0);
      expect(results[1]!.data.subarray(14)).toEqual(frames[1]!.subarray(14));
    } finally {
      obj.close();
    }
  });
});

describe('a packet that grows beyond the headroom testRun() offers at first', () => {
  /** A bare XDP program: bpf_xdp_adjust_tail(ctx, grow), then XDP_PASS. */
  function growingProgram(grow: number): Fd {
    const insn = (opcode: number, dst: number, imm: number) => ({ opcode, dst, src: 0, off: 0, imm });
    const BPF_FUNC_xdp_adjust_tail = 65;
    return new Fd(progLoad({
      progType: progTypeValue('xdp'), license: 'GPL', progName: 'grow_tail',
      insns: encodeInsns([insn(0xb7, 2, grow), insn(0x85, 0, BPF_FUNC_xdp_adjust_tail), insn(0xb7, 0, XDP_PASS), insn(0x95, 0, 0)], true),
    }), 'program grow_tail');
  }

  kernelTest('testRun() retries with room for the whole packet; testRunInto() names both sizes when `out` is short', () => {
    const fd = growingProgram(1000);
    try {
      const program = { fd: fd.value, name: 'grow_tail', type: 'xdp' };
      const frame = ethernet(0x0800, Buffer.alloc(50, 0x33));
      const r = testRunProgram(program, { data: frame });
      expect(r.retval).toBe(XDP_PASS);
      expect(r.data.length).toBe(frame.length + 1000); // more than the first offer (the frame + 512 bytes)
      expect(r.data.subarray(0, frame.length)).toEqual(frame);
      const out = Buffer.alloc(2048);
      expect(testRunProgramInto(program, frame, out).dataSize).toBe(frame.length + 1000);
      expect(out.subarray(0, frame.length)).toEqual(frame);
      expect(() => testRunProgramInto(program, frame, Buffer.alloc(600))).toThrow(
        new TestRunError(`program grow_tail (xdp): test run: the packet after the run is ${frame.length + 1000} bytes, the output buffer holds 600`));
    } finally {
      fd.close();
    }
  });
});

describe('return values by name', () => {
  it('XDP and tc actions as the uapi headers name them; other types and unknown values have none', () => {
    expect([0, 1, 2, 3, 4].map((v) => returnValueName('xdp', v))).toEqual(['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT']);
    expect(returnValueName('xdp', 5)).toBeUndefined();
    expect(returnValueName('sched_cls', 0)).toBe('TC_ACT_OK');
    expect(returnValueName('sched_act', 2)).toBe('TC_ACT_SHOT');
    expect(returnValueName('sched_cls', 8)).toBe('TC_ACT_TRAP');
    expect(returnValueName('sched_cls', 0xffff_ffff)).toBe('TC_ACT_UNSPEC'); // -1 as the kernel's u32
    expect(returnValueName('sched_cls', 9)).toBeUndefined();
    expect(returnValueName('socket_filter', 0)).toBeUndefined();
  });
});
