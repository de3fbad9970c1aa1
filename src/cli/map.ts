import { mapTypeTraits } from '../base/map-types.js';
import { listMaps, openMap } from '../load/index.js';
import { UsageError, type CliOptions } from './args.js';
import { jsonText, objectRef, table } from './table.js';
import { decodeEntries } from './watch.js';

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** `bpf-load map [list]` and `bpf-load map dump ID|PINNED`: maps the kernel holds and their contents. */
export async function mapVerb(options: CliOptions): Promise<number> {
  const [action = 'list', ...rest] = options.args;
  if (action === 'list' || action === 'show') {
    if (rest.length > 0) throw new UsageError(`map ${action}: takes no arguments, not ${rest.join(' ')}`);
    const maps = listMaps();
    if (options.json) {
      out(jsonText(maps.map((m) => ({
        id: m.id, type: m.typeName, name: m.name, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries,
        flags: m.mapFlags, btfId: m.btfId,
      }))));
      return 0;
    }
    out(table(['id', 'type', 'name', 'key', 'value', 'max', 'flags', 'btf'], maps.map((m) => [
      String(m.id), m.typeName, m.name === '' ? '-' : m.name, `${m.keySize} B`, `${m.valueSize} B`, String(m.maxEntries),
      `0x${m.mapFlags.toString(16)}`, m.btfId === 0 ? '-' : String(m.btfId),
    ])));
    return 0;
  }
  if (action === 'dump') {
    const { info, handle } = openMap(objectRef(rest, 'map dump'));
    try {
      const unlistable = mapTypeTraits(info.typeName).unlistable;
      if (unlistable !== undefined) throw new UsageError(`map dump: ${info.name} (id ${info.id}) is a ${info.typeName} map: ${unlistable}`);
      // Every entry, zeros included, per-CPU values one per CPU: what is in the map, as bpftool shows it.
      const entries = decodeEntries(handle, { perCpu: true, nonZeroOnly: false });
      if (options.json) {
        out(jsonText(entries));
        return 0;
      }
      const show = (v: unknown) => (typeof v === 'object' && v !== null ? jsonText(v) : String(v));
      out([`${info.name === '' ? '-' : info.name}: ${info.typeName}, id ${info.id}, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`,
        ...entries.map((e) => `  ${show(e.key)} → ${show(e.value)}`)].join('\n'));
      return 0;
    } finally {
      handle.close();
    }
  }
  throw new UsageError(`map ${action}: unknown action (list or dump)`);
}
