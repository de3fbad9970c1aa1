import { dumpProgram, listPrograms } from '../load/index.js';
import { UsageError, type CliOptions } from './args.js';
import { clockTime, jsonText, objectRef, table } from './table.js';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** `bpf-load prog [list]` and `bpf-load prog dump ID|PINNED`: programs the kernel holds, as bpftool shows them. */
export async function progVerb(options: CliOptions): Promise<number> {
  const [action = 'list', ...rest] = options.args;
  if (action === 'list' || action === 'show') {
    if (rest.length > 0) throw new UsageError(`prog ${action}: takes no arguments, not ${rest.join(' ')}`);
    const programs = listPrograms();
    if (options.json) {
      out(jsonText(programs.map((p) => ({
        id: p.id, type: p.typeName, name: p.name, tag: p.tag, loadedAt: p.loadedAt.toISOString(), uid: p.createdByUid,
        mapIds: p.mapIds, btfId: p.btfId, xlatedBytes: p.xlatedProgLen, jitedBytes: p.jitedProgLen, attachedAt: p.attachedAt,
      }))));
      return 0;
    }
    out(table(['id', 'type', 'name', 'tag', 'loaded at', 'maps', 'attached'], programs.map((p) => [
      String(p.id), p.typeName, p.name === '' ? '-' : p.name, p.tag, clockTime(p.loadedAt, true),
      p.mapIds.length === 0 ? '-' : p.mapIds.join(','), p.attachedAt.length === 0 ? '-' : p.attachedAt.join('; '),
    ])));
    return 0;
  }
  if (action === 'dump') {
    const dump = dumpProgram(objectRef(rest, 'prog dump'));
    if (options.json) {
      out(jsonText({
        id: dump.info.id, type: dump.info.typeName, name: dump.info.name, tag: dump.info.tag,
        maps: dump.maps.map((m) => ({ id: m.id, name: m.name, type: m.typeName })), insns: dump.insns,
      }));
      return 0;
    }
    const i = dump.info;
    const maps = dump.maps.map((m) => `${m.name} (id ${m.id})`).join(', ');
    const lines = [`${i.name === '' ? '-' : i.name}: ${i.typeName}, id ${i.id}, tag ${i.tag}, ${dump.insns.at(-1) === undefined ? 0 : i.xlatedProgLen / 8} insns as the kernel runs them${maps === '' ? '' : `; maps ${maps}`}`];
    const width = String(dump.insns.at(-1)?.index ?? 0).length;
    for (const insn of dump.insns) {
      if (insn.source !== undefined) lines.push(`; ${insn.source.text} @ ${insn.source.file}:${insn.source.line}`);
      lines.push(`  ${String(insn.index).padStart(width)}: ${insn.text}`);
    }
    out(lines.join('\n'));
    return 0;
  }
  throw new UsageError(`prog ${action}: unknown action (list or dump)`);
}
