import { BTF_TYPE_SIZE, type BtfDatasec, type BtfVarSecinfo } from './types.js';
import type { Btf } from './btf.js';

/**
 * Extern sections have no ELF section behind them: their sizes and offsets are assigned when externs are resolved,
 * not from symbols, so the fixup leaves them alone (as libbpf does).
 */
const EXTERN_DATASECS: ReadonlySet<string> = new Set(['.kconfig', '.ksyms']);

/**
 * clang emits DATASEC size 0 and VAR offsets 0 for the sections of an object; the kernel wants the real ones. For
 * every DATASEC of size 0 this fills the size from `sections` (ELF section name → size) and each variable's offset
 * from `symbolOffsets` (its ELF symbol value), then (for every DATASEC) orders the entries by offset, which the
 * kernel requires. Objects that went through a static linker already carry sizes and offsets, which are kept.
 *
 * Returns a new Btf over patched bytes, so `raw` is exactly what BPF_BTF_LOAD must receive.
 */
export function withDatasecFixups(
  btf: Btf,
  sections: ReadonlyMap<string, number>,
  symbolOffsets: (sectionName: string, varName: string) => number | undefined,
): Btf {
  // A copy: `raw` is a view of the caller's bytes, and Buffer#slice would be another view, not a copy.
  const raw = new Uint8Array(btf.raw);
  const patched = new Map<number, BtfDatasec>();
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = btf.littleEndian;

  for (const t of btf.types) {
    if (t.kind !== 'datasec' || EXTERN_DATASECS.has(t.name)) continue;
    const where = { typeId: t.id, offset: btf.layout.typeOffsets[t.id]! };
    let size = t.size;
    let vars: BtfVarSecinfo[] = [...t.vars];
    if (size === 0) {
      const sectionSize = sections.get(t.name);
      if (sectionSize === undefined || sectionSize === 0) {
        throw btf.error(where, `datasec ${t.name} has size 0 and the object has no non-empty section of that name`);
      }
      if (!Number.isSafeInteger(sectionSize) || sectionSize < 0 || sectionSize > 0xffffffff) {
        throw btf.error(where, `datasec ${t.name}: section size ${sectionSize} does not fit BTF's 32 bits`);
      }
      size = sectionSize;
      vars = vars.map((v) => {
        const target = btf.type(v.type);
        if (target.kind !== 'var') throw btf.error(where, `datasec ${t.name} holds a ${target.kind} [${v.type}], not a var`);
        const offset = symbolOffsets(t.name, target.name);
        if (offset === undefined) throw btf.error(where, `datasec ${t.name}: no symbol for variable ${target.name}`);
        if (!Number.isSafeInteger(offset) || offset < 0 || offset + v.size > size) {
          throw btf.error(where, `datasec ${t.name}: variable ${target.name} at offset ${offset} (${v.size} bytes) lies outside the ${size}-byte section`);
        }
        return { type: v.type, offset, size: v.size };
      });
    }
    // Array.prototype.sort is stable, so equal offsets keep their order.
    vars.sort((a, b) => a.offset - b.offset);

    const record = btf.layout.typeOffsets[t.id]!;
    view.setUint32(record + 8, size, le);
    vars.forEach((v, i) => {
      const entry = record + BTF_TYPE_SIZE + i * 12;
      view.setUint32(entry, v.type, le);
      view.setUint32(entry + 4, v.offset, le);
      view.setUint32(entry + 8, v.size, le);
    });
    // Written out, not spread: `{ ...t, more }` is a slow runtime call in V8, and this runs on every load.
    const frozenVars = Object.freeze(vars.map((v) => Object.freeze({ type: v.type, offset: v.offset, size: v.size })));
    patched.set(t.id, Object.freeze({ kind: t.kind, id: t.id, name: t.name, size, vars: frozenVars }));
  }
  return btf.withDatasecs(raw, patched);
}
