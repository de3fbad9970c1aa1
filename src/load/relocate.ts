import { BpfLoadError, withContext } from '../base/errors.js';
import { CallSrc, PseudoSrc } from '../base/uapi.js';
import { INSN_SLOT_SIZE as INSN, InsnSlots, Opcode } from '../insn/index.js';
import type { BpfObjectSpec, ProgramSpec, RelocationSpec, SubprogramSpec } from '../object/index.js';
import { undeclaredExtern, type ExternTarget } from './externs.js';

/** A relocation the loader cannot satisfy: unknown map, extern symbol, missing callee. */
export class RelocationError extends BpfLoadError {
  override name = 'RelocationError';
}

/** Kernel facts the relocation needs, passed in so this stays pure (tests give fake fds). */
export interface RelocationTargets {
  /** fd of the map with this name. */
  mapFd(name: string): number | undefined;
  /** fd of the one-entry array map holding this data section (.data, .rodata, .bss …). */
  dataMapFd(section: string): number | undefined;
  /** What an extern symbol (kfunc, ksym, .kconfig) resolved to; undefined when the object does not declare it. */
  extern?(name: string): ExternTarget | undefined;
}

type Fn = ProgramSpec | SubprogramSpec;

/** Where each function placed in the output starts, and the instructions themselves (host byte order). */
export interface RelocatedProgram {
  readonly insns: Uint8Array;
  /** Functions in output order with their first instruction index: the program first, then appended subprograms. */
  readonly layout: ReadonlyArray<{ readonly fn: Fn; readonly start: number }>;
}

/**
 * Produces the instructions the kernel receives for `program`: a copy of its code with every subprogram it calls
 * (transitively) appended once, call and function-address immediates recomputed for that layout, map references
 * turned into BPF_PSEUDO_MAP_FD and global variables into BPF_PSEUDO_MAP_VALUE. The spec is never mutated.
 *
 * The object must be in the host's byte order (the kernel reads instructions natively): callers check that first.
 */
export function relocateProgram(spec: BpfObjectSpec, program: ProgramSpec, targets: RelocationTargets): RelocatedProgram {
  const functions: Fn[] = [...spec.programs, ...spec.subprograms];
  const layout: Array<{ fn: Fn; start: number }> = [{ fn: program, start: 0 }];
  const placed = new Map<Fn, number>([[program, 0]]);
  let total = program.bytes.byteLength / INSN;

  const place = (fn: Fn): number => {
    let start = placed.get(fn);
    if (start === undefined) {
      start = total;
      placed.set(fn, start);
      layout.push({ fn, start });
      total += fn.bytes.byteLength / INSN;
    }
    return start;
  };

  // Place callees breadth-first; `layout` grows while we walk it.
  const calls: Array<{ at: number; callee: Fn; kind: 'call' | 'func_addr' }> = [];
  for (let i = 0; i < layout.length; i++) {
    const { fn, start } = layout[i]!;
    // Every relocated instruction is accounted for by its relocation (externs included: clang emits their calls with
    // src=1 too), so the scan below only sees calls clang resolved itself.
    const relocated = new Set(fn.relocations.map((r) => r.insn));
    for (const r of fn.relocations) {
      if (r.kind !== 'call' && r.kind !== 'func_addr') continue;
      const callee = findFunction(functions, r, spec);
      calls.push({ at: start + (r.insn - fn.offset / INSN), callee, kind: r.kind });
      place(callee);
    }
    // Calls clang resolved itself (static functions in the same section, older compilers): imm is relative.
    const code = new InsnSlots(fn.bytes, fn.littleEndian);
    const count = code.count;
    for (let slot = 0; slot < count; slot++) {
      const op = code.opcode(slot);
      if (op === Opcode.LD_IMM64) {
        slot++;
        continue;
      }
      const insnInSection = fn.offset / INSN + slot;
      if (op !== Opcode.CALL || code.src(slot) !== CallSrc.PSEUDO_CALL || relocated.has(insnInSection)) continue;
      const targetOffset = (insnInSection + 1 + code.imm(slot)) * INSN;
      const callee = functions.find((f) => f.sectionIndex === fn.sectionIndex && targetOffset >= f.offset && targetOffset < f.offset + f.bytes.byteLength);
      if (callee === undefined) {
        throw new RelocationError(withContext([program.name, `${fn.name} insn ${insnInSection}`], `call to ${fn.section}+0x${targetOffset.toString(16)}, which is not a function`));
      }
      if (callee.offset !== targetOffset) {
        throw new RelocationError(withContext([program.name, `${fn.name} insn ${insnInSection}`], `call into the middle of ${callee.name}`));
      }
      calls.push({ at: layout[i]!.start + slot, callee, kind: 'call' });
      place(callee);
    }
  }

  const out = new Uint8Array(total * INSN);
  const view = new InsnSlots(out, spec.littleEndian);
  for (const { fn, start } of layout) out.set(fn.bytes, start * INSN);

  for (const { fn, start } of layout) {
    for (const r of fn.relocations) {
      const at = start + (r.insn - fn.offset / INSN);
      applyDataRelocation(view, at, r, targets, program, fn);
    }
  }
  for (const c of calls) {
    const rel = placed.get(c.callee)! - (c.at + 1);
    if (c.kind === 'func_addr') view.setImm64(c.at, PseudoSrc.FUNC, rel, 0);
    else view.setImm(c.at, rel);
  }
  return { insns: out, layout };
}

function findFunction(functions: readonly Fn[], r: RelocationSpec, spec: BpfObjectSpec): Fn {
  const byOffset = functions.find((f) => f.name === r.target && r.targetOffset >= f.offset && r.targetOffset < f.offset + f.bytes.byteLength);
  const fn = byOffset ?? functions.find((f) => f.name === r.target);
  if (fn === undefined) {
    throw new RelocationError(withContext([spec.file, r.program, `insn ${r.insn}`], `call target ${r.target} is not a function of this object`));
  }
  return fn;
}

function applyDataRelocation(view: InsnSlots, at: number, r: RelocationSpec, targets: RelocationTargets, program: ProgramSpec, fn: Fn): void {
  // Built only for a message: this runs once per relocation (20k in a large object).
  const where = () => [program.name === fn.name ? program.name : `${program.name} (via ${fn.name})`, `insn ${r.insn} of ${r.section}`];
  switch (r.kind) {
    case 'map': {
      const fd = targets.mapFd(r.target);
      if (fd === undefined) throw new RelocationError(withContext(where(), `map ${r.target} was not created`));
      view.setImm64(at, PseudoSrc.MAP_FD, fd, 0);
      return;
    }
    case 'data': {
      const fd = targets.dataMapFd(r.target);
      if (fd === undefined) throw new RelocationError(withContext(where(), `no map holds data section ${r.target}`));
      view.setImm64(at, PseudoSrc.MAP_VALUE, fd, r.targetOffset);
      return;
    }
    case 'extern':
      applyExtern(view, at, r, targets, where());
      return;
    case 'call':
    case 'func_addr':
      return;
  }
}

function applyExtern(view: InsnSlots, at: number, r: RelocationSpec, targets: RelocationTargets, where: string[]): void {
  const target = targets.extern?.(r.target);
  if (target === undefined) throw new RelocationError(withContext(where, undeclaredExtern(r.target)));
  const isCall = view.opcode(at) === Opcode.CALL;
  const setImm64 = (src: number, lo: number, hi: number) => view.setImm64(at, src, lo, hi);
  switch (target.kind) {
    case 'unresolved':
      throw new RelocationError(withContext(where, target.reason));
    case 'kernel_func':
      if (isCall) {
        // off 0: the function is in vmlinux (module kfuncs would name their BTF's fd index here).
        view.setSrc(at, CallSrc.KFUNC_CALL);
        view.setOff(at, 0);
        view.setImm(at, target.btfId);
      } else {
        setImm64(PseudoSrc.BTF_ID, target.btfId, 0);
      }
      return;
    case 'absent':
      if (isCall) {
        // libbpf's poisoned kfunc call: fine in dead code (`if (bpf_ksym_exists(f))`), named by the verifier otherwise.
        view.setSrc(at, CallSrc.HELPER);
        view.setOff(at, 0);
        view.setImm(at, target.poison);
      } else {
        setImm64(0, 0, 0);
      }
      return;
  }
  if (isCall) throw new RelocationError(withContext(where, `call to ${r.target}, which is a variable, not a kfunc`));
  switch (target.kind) {
    case 'kernel_var':
      setImm64(PseudoSrc.BTF_ID, target.btfId, 0);
      return;
    case 'address':
      setImm64(0, Number(BigInt.asIntN(32, target.value)), Number(BigInt.asIntN(32, target.value >> 32n)));
      return;
    case 'kconfig': {
      const fd = targets.dataMapFd('.kconfig');
      if (fd === undefined) throw new RelocationError(withContext(where, `no .kconfig map holds ${r.target}`));
      setImm64(PseudoSrc.MAP_VALUE, fd, target.offset);
      return;
    }
  }
}
