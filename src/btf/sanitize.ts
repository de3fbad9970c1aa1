import { BTF_TYPE_SIZE, BtfKind } from './types.js';
import type { Btf } from './btf.js';
import { parseBtf } from './parse.js';

const LINKAGE_GLOBAL = 1;
/** BTF_VAR_GLOBAL_ALLOCATED: the only non-static VAR linkage the kernel accepts. */
const VAR_GLOBAL_ALLOCATED = 1;
const INT_SIZE = 4;
const DUMMY_VAR_NAME = 'dummy_ksym_var';

/**
 * The object's BTF made acceptable to BPF_BTF_LOAD, as libbpf does before loading it: the kernel refuses extern
 * linkage ("Invalid func linkage", "Linkage not supported") and VARs of type void.
 *
 * - extern FUNCs get global linkage, and their unnamed parameters a name (the kernel requires named arguments of
 *   global functions);
 * - `.ksyms` entries all become 4-byte int VARs (kfuncs point at one appended dummy VAR) laid end to end: the
 *   section only has to pass the kernel's checks, its contents are never used;
 * - `.kconfig` VARs become global-allocated and take the offsets of `kconfigOffsets` (name → offset in the .kconfig
 *   map), the section the size `kconfigSize`.
 *
 * Appended types go after the existing ones and new strings after the existing strings, so every existing type id
 * and string offset stays valid.
 */
// Long: one pass patching a copy of the type section; its closures share that copy's view and the appended strings.
export function sanitizeExternsForKernel(btf: Btf, kconfigOffsets: ReadonlyMap<string, number> = new Map(), kconfigSize = 0): Btf {
  // Most objects declare no externs: the kernel then takes their BTF as it is, without a copy parsed again.
  if (!btf.types.some((t) => (t.kind === 'func' && t.linkage === 'extern') || (t.kind === 'datasec' && (t.name === '.ksyms' || t.name === '.kconfig')))) {
    return btf;
  }
  const le = btf.littleEndian;
  const { header } = btf.layout;
  const hdrLen = header.hdrLen;
  const typesStart = hdrLen + header.typeOff;
  // A copy (Buffer#slice would share the object's bytes), with its own buffer so offsets start at 0.
  const types = new Uint8Array(btf.raw.subarray(typesStart, typesStart + header.typeLen));
  const tview = new DataView(types.buffer);
  const at = (id: number) => btf.layout.typeOffsets[id]! - typesStart;

  const newStrings: string[] = [];
  let stringsLength = btf.layout.stringsLength;
  const addString = (s: string): number => {
    const off = stringsLength;
    newStrings.push(s);
    stringsLength += Buffer.byteLength(s) + 1;
    return off;
  };
  const newTypes: number[][] = [];
  let nextId = btf.types.length;
  const addType = (words: number[]): number => {
    newTypes.push(words);
    return nextId++;
  };

  let intId = btf.types.find((t) => t.kind === 'int' && t.size === INT_SIZE && t.bits === 32 && t.bitOffset === 0)?.id;
  let dummyVar: { id: number; nameOff: number } | undefined;
  const dummy = () => {
    if (dummyVar === undefined) {
      intId ??= addType([addString('int'), BtfKind.INT << 24, INT_SIZE, 0x01000020]);
      const nameOff = addString(DUMMY_VAR_NAME);
      dummyVar = { id: addType([nameOff, BtfKind.VAR << 24, intId, VAR_GLOBAL_ALLOCATED]), nameOff };
    }
    return dummyVar;
  };

  for (const t of btf.types) {
    if (t.kind === 'func' && t.linkage === 'extern') {
      const o = at(t.id);
      const info = tview.getUint32(o + 4, le);
      tview.setUint32(o + 4, (info & 0xffff0000) | LINKAGE_GLOBAL, le);
      const proto = btf.type(t.type);
      if (proto.kind === 'func_proto') {
        proto.params.forEach((p, i) => {
          if (p.name === '' && p.type !== 0) tview.setUint32(at(proto.id) + BTF_TYPE_SIZE + i * 8, dummy().nameOff, le);
        });
      }
    }
    if (t.kind !== 'datasec' || (t.name !== '.ksyms' && t.name !== '.kconfig')) continue;
    const record = at(t.id);
    let size = 0;
    const entries: Array<{ type: number; offset: number; size: number }> = [];
    t.vars.forEach((v, i) => {
      const target = btf.type(v.type);
      let entryType = v.type;
      let offset: number;
      let entrySize: number;
      if (t.name === '.ksyms') {
        offset = i * INT_SIZE;
        entrySize = INT_SIZE;
        if (target.kind === 'var') {
          tview.setUint32(at(target.id) + 8, intId ?? dummyIntId(), le);
          tview.setUint32(at(target.id) + BTF_TYPE_SIZE, VAR_GLOBAL_ALLOCATED, le);
        } else {
          entryType = dummy().id;
        }
      } else {
        if (target.kind !== 'var') throw btf.error({ typeId: t.id }, `.kconfig holds a ${target.kind} [${v.type}], not a var`);
        const placed = kconfigOffsets.get(target.name);
        if (placed === undefined) throw btf.error({ typeId: t.id }, `.kconfig: no offset given for extern ${target.name}`);
        offset = placed;
        entrySize = v.size;
        tview.setUint32(at(target.id) + BTF_TYPE_SIZE, VAR_GLOBAL_ALLOCATED, le);
      }
      entries.push({ type: entryType, offset, size: entrySize });
      size = Math.max(size, offset + entrySize);
    });
    // The kernel wants entries in increasing offset order.
    entries.sort((x, y) => x.offset - y.offset).forEach((e, i) => {
      const entry = record + BTF_TYPE_SIZE + i * 12;
      tview.setUint32(entry, e.type, le);
      tview.setUint32(entry + 4, e.offset, le);
      tview.setUint32(entry + 8, e.size, le);
    });
    tview.setUint32(record + 8, t.name === '.kconfig' ? Math.max(size, kconfigSize) : size, le);
  }

  function dummyIntId(): number {
    dummy();
    return intId!;
  }

  const appendedTypes = new Uint8Array(newTypes.reduce((n, w) => n + w.length * 4, 0));
  const aview = new DataView(appendedTypes.buffer);
  let p = 0;
  for (const words of newTypes) for (const w of words) (aview.setUint32(p, w >>> 0, le), (p += 4));
  const appendedStrings = Buffer.from(newStrings.map((s) => `${s}\0`).join(''), 'utf8');
  const strings = btf.raw.subarray(btf.layout.stringsStart, btf.layout.stringsStart + btf.layout.stringsLength);

  const typeLen = types.byteLength + appendedTypes.byteLength;
  const out = new Uint8Array(hdrLen + typeLen + stringsLength);
  out.set(btf.raw.subarray(0, hdrLen), 0);
  const hview = new DataView(out.buffer);
  hview.setUint32(8, 0, le); // type_off
  hview.setUint32(12, typeLen, le);
  hview.setUint32(16, typeLen, le); // str_off: strings right after the types
  hview.setUint32(20, stringsLength, le);
  out.set(types, hdrLen);
  out.set(appendedTypes, hdrLen + types.byteLength);
  out.set(strings, hdrLen + typeLen);
  out.set(appendedStrings, hdrLen + typeLen + strings.byteLength);
  return parseBtf(out, le, { file: btf.file });
}
