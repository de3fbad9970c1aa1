import { BpfLoadError, withContext } from '../base/errors.js';
import { PseudoSrc } from '../base/uapi.js';
import type { BpfObjectSpec, ProgramSpec, RelocationSpec, SubprogramSpec } from '../object/index.js';
import { undeclaredExtern, type ExternTarget } from './externs.js';

const INSN = 8;
const OP_LD_IMM64 = 0x18;
const OP_CALL = 0x85;
const CALL_SRC_PSEUDO = 1;
const CALL_SRC_KFUNC = 2;

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
    const view = new DataView(fn.bytes.buffer, fn.bytes.byteOffset, fn.bytes.byteLength);
    for (let o = 0; o < fn.bytes.byteLength; o += INSN) {
      const op = view.getUint8(o);
      if (op === OP_LD_IMM64) {
        o += INSN;
        continue;
      }
      const insnInSection = fn.offset / INSN + o / INSN;
      if (op !== OP_CALL || srcReg(view.getUint8(o + 1), fn.littleEndian) !== CALL_SRC_PSEUDO || relocated.has(insnInSection)) continue;
      const targetOffset = (insnInSection + 1 + view.getInt32(o + 4, fn.littleEndian)) * INSN;
      const callee = functions.find((f) => f.sectionIndex === fn.sectionIndex && targetOffset >= f.offset && targetOffset < f.offset + f.bytes.byteLength);
      if (callee === undefined) {
        throw new RelocationError(withContext([program.name, `${fn.name} insn ${insnInSection}`], `call to ${fn.section}+0x${targetOffset.toString(16)}, which is not a function`));
      }
      if (callee.offset !== targetOffset) {
        throw new RelocationError(withContext([program.name, `${fn.name} insn ${insnInSection}`], `call into the middle of ${callee.name}`));
      }
      calls.push({ at: layout[i]!.start + o / INSN, callee, kind: 'call' });
      place(callee);
    }
  }

  const out = new Uint8Array(total * INSN);
  const view = new DataView(out.buffer);
  for (const { fn, start } of layout) out.set(fn.bytes, start * INSN);

  for (const { fn, start } of layout) {
    for (const r of fn.relocations) {
      const at = start + (r.insn - fn.offset / INSN);
      applyDataRelocation(view, at, r, targets, program, fn);
    }
  }
  for (const c of calls) {
    const rel = placed.get(c.callee)! - (c.at + 1);
    view.setInt32(c.at * INSN + 4, rel, true);
    if (c.kind === 'func_addr') {
      setSrc(view, c.at, PseudoSrc.FUNC);
      view.setInt32((c.at + 1) * INSN + 4, 0, true);
    }
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

function applyDataRelocation(view: DataView, at: number, r: RelocationSpec, targets: RelocationTargets, program: ProgramSpec, fn: Fn): void {
  const where = [program.name === fn.name ? program.name : `${program.name} (via ${fn.name})`, `insn ${r.insn} of ${r.section}`];
  switch (r.kind) {
    case 'map': {
      const fd = targets.mapFd(r.target);
      if (fd === undefined) throw new RelocationError(withContext(where, `map ${r.target} was not created`));
      setSrc(view, at, PseudoSrc.MAP_FD);
      view.setInt32(at * INSN + 4, fd, true);
      view.setInt32((at + 1) * INSN + 4, 0, true);
      return;
    }
    case 'data': {
      const fd = targets.dataMapFd(r.target);
      if (fd === undefined) throw new RelocationError(withContext(where, `no map holds data section ${r.target}`));
      setSrc(view, at, PseudoSrc.MAP_VALUE);
      view.setInt32(at * INSN + 4, fd, true);
      view.setInt32((at + 1) * INSN + 4, r.targetOffset, true);
      return;
    }
    case 'extern':
      applyExtern(view, at, r, targets, where);
      return;
    case 'call':
    case 'func_addr':
      return;
  }
}

function applyExtern(view: DataView, at: number, r: RelocationSpec, targets: RelocationTargets, where: string[]): void {
  const target = targets.extern?.(r.target);
  if (target === undefined) throw new RelocationError(withContext(where, undeclaredExtern(r.target)));
  const isCall = view.getUint8(at * INSN) === OP_CALL;
  const setImm64 = (src: number, lo: number, hi: number) => {
    setSrc(view, at, src);
    view.setInt32(at * INSN + 4, lo, true);
    view.setInt32((at + 1) * INSN + 4, hi, true);
  };
  switch (target.kind) {
    case 'unresolved':
      throw new RelocationError(withContext(where, target.reason));
    case 'kernel_func':
      if (isCall) {
        // off 0: the function is in vmlinux (module kfuncs would name their BTF's fd index here).
        setSrc(view, at, CALL_SRC_KFUNC);
        view.setInt16(at * INSN + 2, 0, true);
        view.setInt32(at * INSN + 4, target.btfId, true);
      } else {
        setImm64(PseudoSrc.BTF_ID, target.btfId, 0);
      }
      return;
    case 'absent':
      if (isCall) {
        // libbpf's poisoned kfunc call: fine in dead code (`if (bpf_ksym_exists(f))`), named by the verifier otherwise.
        setSrc(view, at, 0);
        view.setInt16(at * INSN + 2, 0, true);
        view.setInt32(at * INSN + 4, target.poison, true);
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

/** The instruction registers byte: src in the high nibble (little-endian objects, which are the only loadable ones). */
function srcReg(regs: number, littleEndian: boolean): number {
  return littleEndian ? regs >> 4 : regs & 0xf;
}

function setSrc(view: DataView, at: number, src: number): void {
  const o = at * INSN + 1;
  view.setUint8(o, (view.getUint8(o) & 0x0f) | (src << 4));
}
