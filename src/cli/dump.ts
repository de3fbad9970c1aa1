import { annotatedText, type ObjectDump } from '../object/describe.js';
import { table } from './table.js';

/** Human-readable --dump: header, sections, maps, programs, relocations, annotated disassembly. */
export function renderDump(d: ObjectDump, options: { helpers?: boolean; raw?: boolean } = {}): string {
  const out: string[] = [];
  out.push(`${d.file ?? '<bytes>'}: ELF64 ${d.byteOrder}-endian relocatable, machine ${d.machine}`);
  out.push(`license: ${d.license === '' ? '(none)' : JSON.stringify(d.license)}` +
    (d.kernVersion === null ? '' : `   version: ${formatKernelVersion(d.kernVersion)}`));

  out.push('', 'Sections:');
  out.push(table(['#', 'name', 'type', 'size', 'flags', 'role'],
    d.sections.map((s) => [String(s.index), s.name, s.type, String(s.size), s.flags, s.role])));

  out.push('', `Maps (${d.maps.length}):`);
  if (d.maps.length > 0) {
    const typed = (size: number, type: string | null) => (type === null ? String(size) : `${size} (${type})`);
    out.push(table(['#', 'name', 'type', 'key', 'value', 'max', 'flags', 'inner', 'pinning', 'source'],
      d.maps.map((m) => [String(m.index), m.name, m.type, typed(m.keySize, m.keyType), typed(m.valueSize, m.valueType), String(m.maxEntries),
        `0x${m.flags.toString(16)}`, m.innerMap ?? '-', m.pinning, `${m.source} (${m.section})`])));
  }
  if (d.variables.length > 0) {
    out.push('', `Global variables (${d.variables.length}):`);
    out.push(table(['section', 'offset', 'size', 'name', 'type'],
      d.variables.map((v) => [v.section, String(v.offset), String(v.size), v.name, v.type ?? '-'])));
  }

  out.push('', `Programs (${d.programs.length}):`);
  if (d.programs.length > 0) {
    out.push(table(['section', 'name', 'type', 'attach type', 'attach', 'insns', 'tail call'],
      d.programs.map((p) => [p.section, p.name, p.type, p.attachType ?? '-', p.attach === 'none' ? '-' : `${p.attach} ${p.attachTarget}`.trim(),
        String(p.insnCount), p.tailCallSlot === null ? '-' : `slot ${p.tailCallSlot}`])));
  }
  if (d.subprograms.length > 0) {
    out.push('', `Subprograms (${d.subprograms.length}):`);
    out.push(table(['section', 'name', 'linkage', 'insns'],
      d.subprograms.map((s) => [s.section, s.name, s.global ? 'global' : 'static', String(s.insnCount)])));
  }

  out.push('', `Relocations (${d.relocations.length}):`);
  if (d.relocations.length > 0) {
    out.push(table(['section', 'insn', 'program', 'symbol', 'kind', 'target'],
      d.relocations.map((r) => [r.section, String(r.insn), r.program || '-', r.symbol, r.kind, r.target])));
  }

  for (const fn of [...d.programs, ...d.subprograms]) {
    out.push('', `Disassembly of ${fn.name} (section ${fn.section}):`);
    const width = String(fn.insns.at(-1)?.index ?? 0).length;
    // llvm-objdump's syntax by default; on request bpftool's helper names, and the bytes as llvm-objdump shows them
    // (spaced, all of a ld_imm64's 16 on its line).
    const rawWidth = Math.max(0, ...fn.insns.map((i) => i.raw.length * 1.5 - 1));
    for (const i of fn.insns) {
      const text = options.helpers === true && i.helper !== undefined ? `call ${i.helper}` : annotatedText(i);
      const raw = options.raw === true ? `${i.raw.replace(/(..)(?!$)/g, '$1 ').padEnd(rawWidth)}  ` : '';
      out.push(`  ${String(i.index).padStart(width)}: ${raw}${text}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** 0x060c00 → "6.12.0 (0x060c00)": the `version` section holds LINUX_VERSION_CODE. */
function formatKernelVersion(v: number): string {
  return `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff} (0x${v.toString(16).padStart(6, '0')})`;
}
