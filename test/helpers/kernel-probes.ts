/**
 * What the running kernel does, asked directly with BPF_PROG_LOAD on hand-written instructions (no object file, no
 * loader): tests compare the loader's outcome with these answers, so a change in our code that flips an outcome fails
 * whichever way this kernel happens to behave.
 */
import { attachTypeValue, CallSrc, progTypeValue, PseudoSrc } from '../../src/base/uapi.js';
import { encodeInsns, type Insn } from '../../src/insn/index.js';
import { runningKernelBtf } from '../../src/load/index.js';
import { Fd, progLoad, SysError } from '../../src/sys/index.js';

const insn = (opcode: number, dst: number, src: number, off: number, imm: number): Insn => ({ opcode, dst, src, off, imm });
const MOV64_IMM = 0xb7;
const CALL = 0x85;
const EXIT = 0x95;
const RETURN_0 = [insn(MOV64_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)];

/** Whether the kernel loads a program (true), or the errno name it refuses it with. */
function loads(attr: Parameters<typeof progLoad>[0]): true | string {
  try {
    new Fd(progLoad(attr), `probe ${attr.progName ?? ''}`).close();
    return true;
  } catch (e) {
    if (e instanceof SysError) return e.code;
    throw e;
  }
}

function vmlinuxFuncId(name: string): number {
  const id = runningKernelBtf().findByName('func', name)?.id;
  if (id === undefined) throw new Error(`probe: vmlinux BTF has no func ${name}`);
  return id;
}

/** An fentry program on vmlinux function `target`: true when the kernel loads it, else its errno (EPERM here). */
export function fentryLoads(target: string): true | string {
  return loads({
    progType: progTypeValue('tracing'), expectedAttachType: attachTypeValue('trace_fentry'), attachBtfId: vmlinuxFuncId(target),
    insns: encodeInsns(RETURN_0, true), license: 'GPL', progName: 'probe_fentry',
  });
}

/**
 * A sched_cls program calling the kfuncs bpf_rcu_read_lock / bpf_rcu_read_unlock (registered for every program type):
 * true when this kernel takes kfunc calls from tc programs at all.
 */
export function kfuncCallsLoad(): true | string {
  return loads({
    progType: progTypeValue('sched_cls'),
    insns: encodeInsns([
      insn(CALL, 0, CallSrc.KFUNC_CALL, 0, vmlinuxFuncId('bpf_rcu_read_lock')),
      insn(CALL, 0, CallSrc.KFUNC_CALL, 0, vmlinuxFuncId('bpf_rcu_read_unlock')),
      ...RETURN_0,
    ], true),
    license: 'GPL', progName: 'probe_kfunc',
  });
}

/**
 * A socket filter loading the address of vmlinux variable `name` (ld_imm64 BPF_PSEUDO_BTF_ID, as a typed __ksym is
 * relocated): true when the kernel resolves it, else its errno (ENOENT when kallsyms cannot find data symbols).
 */
export function typedKsymLoads(name: string): true | string {
  const id = runningKernelBtf().findByName('var', name)?.id;
  if (id === undefined) throw new Error(`probe: vmlinux BTF has no variable ${name}`);
  return loads({
    progType: progTypeValue('socket_filter'),
    insns: encodeInsns([{ opcode: 0x18, dst: 1, src: PseudoSrc.BTF_ID, off: 0, imm: id, imm64: BigInt(id) }, ...RETURN_0], true),
    license: 'GPL', progName: 'probe_ksym',
  });
}
