import { toHex } from '../base/cursor.js';
import { mapTypeTraits } from '../base/map-types.js';
import type { Btf, BtfValue } from '../btf/index.js';
import { decodeUnsigned, type MapHandle } from '../load/index.js';
import type { Paint } from './screen.js';
import { clockTime } from './table.js';

/**
 * A map entry as the live view shows it: decoded through BTF when the object describes the key or value (structs as
 * objects, enums by name, char arrays as strings); otherwise integers for 1/2/4/8-byte fields and hex for the rest.
 */
export interface EntryView {
  readonly key: BtfValue;
  /** Summed over CPUs for per-CPU integer maps; one value per CPU with --per-cpu or when values are not integers. */
  readonly value: BtfValue;
}

export interface MapRound {
  readonly name: string;
  readonly entries: EntryView[];
  /** Set when the map cannot be read from user space (sockmap values, ring buffers …). */
  readonly unreadable?: string;
}

/** Reads every map once, keeping the entries whose value is not all zeros. */
export function readRound(maps: readonly MapHandle[], perCpu: boolean): MapRound[] {
  return maps.map((m) => {
    const unlistable = mapTypeTraits(m.spec.type).unlistable;
    if (unlistable !== undefined) return { name: m.name, entries: [], unreadable: `${m.type}: ${unlistable}` };
    try {
      return { name: m.name, entries: decodeEntries(m, { perCpu, nonZeroOnly: true }) };
    } catch (e) {
      return { name: m.name, entries: [], unreadable: (e as Error).message };
    }
  });
}

/**
 * Every entry of a map (batched reads), decoded. Per-CPU values are summed when they are integers, unless `perCpu`
 * asks for them one per CPU; `nonZeroOnly` leaves out entries whose value is all zeros.
 */
export function decodeEntries(m: MapHandle, options: { perCpu: boolean; nonZeroOnly: boolean }): EntryView[] {
  const entries: EntryView[] = [];
  const btf = btfOf(m);
  const decode = (id: number | undefined, bytes: Buffer): BtfValue =>
    btf !== undefined && id !== undefined ? btf.formatValue(id, bytes) : field(bytes);
  for (const [key, value] of m.readAll()) {
    if (options.nonZeroOnly && value.every((b) => b === 0)) continue;
    const k = decode(m.spec.btfKeyTypeId, key);
    if (m.perCpu && (btf === undefined || m.spec.btfValueTypeId === undefined)) {
      entries.push({ key: k, value: cpuValues(m, value, options.perCpu) });
    } else if (m.perCpu) {
      entries.push({ key: k, value: m.perCpuValues(value).map((v) => decode(m.spec.btfValueTypeId, v)) });
    } else {
      entries.push({ key: k, value: decode(m.spec.btfValueTypeId, value) });
    }
  }
  return entries;
}

/** The object's BTF when this map has BTF types (the live view decodes through it). */
function btfOf(m: MapHandle): Btf | undefined {
  return m.spec.btfKeyTypeId !== undefined || m.spec.btfValueTypeId !== undefined ? m.btf : undefined;
}

function cpuValues(m: MapHandle, value: Buffer, split: boolean): EntryView['value'] {
  const parts = m.perCpuValues(value);
  const numbers = parts.map((p) => decodeUnsigned(p));
  if (numbers.some((n) => n === undefined)) return split ? parts.map((p) => toHex(p)) : parts.map((p) => toHex(p)).join(' ');
  if (split) return numbers.map((n) => jsonNumber(n!));
  return jsonNumber(numbers.reduce<bigint>((sum, n) => sum + BigInt(n!), 0n));
}

/** Integers for 1/2/4/8-byte fields, hex otherwise; numbers beyond 2^53 as decimal strings (JSON-safe). */
export function field(bytes: Uint8Array): number | string {
  const n = decodeUnsigned(bytes);
  return n === undefined ? toHex(bytes) : jsonNumber(n);
}

function jsonNumber(n: number | bigint): number | string {
  if (typeof n === 'number') return n;
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** The terminal view shows this many entries per map; JSON rounds carry them all. */
const TEXT_ENTRIES_PER_MAP = 32;

/** Text form of one round for the terminal. */
export function renderRound(round: number, maps: readonly MapRound[], paint: Paint = (_style, text) => text): string {
  const lines = [paint('dim', `--- round ${round} (${clockTime(new Date())}) ---`)];
  for (const m of maps) {
    if (m.unreadable !== undefined) {
      lines.push(`${paint('bold', m.name)}: ${paint('dim', `(not shown: ${m.unreadable})`)}`);
      continue;
    }
    if (m.entries.length === 0) {
      lines.push(`${paint('bold', m.name)}: ${paint('dim', '(no non-zero entries)')}`);
      continue;
    }
    lines.push(`${paint('bold', m.name)}:`);
    for (const e of m.entries.slice(0, TEXT_ENTRIES_PER_MAP)) lines.push(`  ${show(e.key).padStart(6)} → ${show(e.value)}`);
    const more = m.entries.length - TEXT_ENTRIES_PER_MAP;
    if (more > 0) lines.push(`  … ${more} more (--json shows every entry)`);
  }
  return `${lines.join('\n')}\n`;
}

/** Compact text of a decoded value: numbers and strings as they are, structures as JSON. */
function show(v: BtfValue): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}
