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
  /**
   * Drawn as a log2 histogram: `keys` when its keys are slots and values counts (--hist), `slots` when each value is
   * libbpf-tools' `struct hist { __u32 slots[N]; }`.
   */
  readonly histogram?: 'keys' | 'slots';
}

/** Reads every map once, keeping the entries whose value is not all zeros. */
export function readRound(maps: readonly MapHandle[], perCpu: boolean, histograms: readonly string[] = []): MapRound[] {
  return maps.map((m) => {
    const unlistable = mapTypeTraits(m.spec.type).unlistable;
    if (unlistable !== undefined) return { name: m.name, entries: [], unreadable: `${m.type}: ${unlistable}` };
    try {
      const histogram = histograms.includes(m.name) ? 'keys' : hasHistValues(m) ? 'slots' : undefined;
      const entries = decodeEntries(m, { perCpu: perCpu && histogram === undefined, nonZeroOnly: true });
      return { name: m.name, entries, ...(histogram === undefined ? {} : { histogram }) };
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

/** Values typed `struct hist` whose only member is an integer array `slots`: libbpf-tools' histogram. */
function hasHistValues(m: MapHandle): boolean {
  const btf = btfOf(m);
  const id = m.spec.btfValueTypeId;
  if (btf === undefined || id === undefined) return false;
  const type = btf.type(btf.resolve(id));
  if (type.kind !== 'struct' || type.name !== 'hist' || type.members.length !== 1 || type.members[0]!.name !== 'slots') return false;
  return btf.type(btf.resolve(type.members[0]!.type)).kind === 'array';
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

/** Per-second change of each counter since the round before (--rate). */
export interface RateBase {
  readonly previous: readonly MapRound[];
  readonly seconds: number;
}

/** Text form of one round for the terminal. */
export function renderRound(round: number, maps: readonly MapRound[], paint: Paint = (_style, text) => text, rates?: RateBase): string {
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
    if (m.histogram === 'keys') {
      lines.push(...log2Histogram(new Map(m.entries.map((e) => [Number(e.key), Number(e.value)]))));
      continue;
    }
    if (m.histogram === 'slots') {
      for (const e of m.entries) {
        const slots = (e.value as { slots: BtfValue[] }).slots.map(Number);
        lines.push(`  ${show(e.key)}:`, ...log2Histogram(new Map(slots.map((count, slot) => [slot, count]))));
      }
      continue;
    }
    const before = rates === undefined ? undefined : new Map(rates.previous.find((p) => p.name === m.name)?.entries.map((e) => [show(e.key), e.value]));
    for (const e of m.entries.slice(0, TEXT_ENTRIES_PER_MAP)) {
      const rate = before === undefined ? '' : rateText(e.value, before.get(show(e.key)) ?? 0, rates!.seconds);
      lines.push(`  ${show(e.key).padStart(6)} → ${show(e.value)}${rate === '' ? '' : `  ${paint('cyan', rate)}`}`);
    }
    const more = m.entries.length - TEXT_ENTRIES_PER_MAP;
    if (more > 0) lines.push(`  … ${more} more (--json shows every entry)`);
  }
  return `${lines.join('\n')}\n`;
}

/** `(+12.5/s)` for a counter that is a number (or a decimal string beyond 2^53) now and before; '' otherwise. */
function rateText(now: BtfValue, before: BtfValue, seconds: number): string {
  const integer = (v: BtfValue) => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);
  const a = integer(now);
  const b = integer(before);
  if (a === undefined || b === undefined || seconds <= 0) return '';
  const perSecond = (a - b) / seconds;
  return `(${perSecond >= 0 ? '+' : ''}${Number(perSecond.toFixed(1))}/s)`;
}

const BAR_WIDTH = 40;

/**
 * A log2 histogram as libbpf-tools' print_log2_hist draws it: one row per slot from the first to the last non-empty,
 * slot i counting values in [2^i, 2^(i+1)-1] (slot 0: 0 and 1), bars scaled to the largest count.
 */
export function log2Histogram(counts: ReadonlyMap<number, number>): string[] {
  const used = [...counts.entries()].filter(([slot, n]) => n > 0 && Number.isInteger(slot) && slot >= 0 && slot < 64).map(([slot]) => slot);
  if (used.length === 0) return ['    (empty)'];
  const first = Math.min(...used);
  const last = Math.max(...used);
  const max = Math.max(...used.map((slot) => counts.get(slot)!));
  const range = (slot: number) => {
    const high = 2n ** BigInt(slot + 1) - 1n;
    return `${slot === 0 ? 0n : 2n ** BigInt(slot)} -> ${high}`;
  };
  const width = Math.max(...Array.from({ length: last - first + 1 }, (_, i) => range(first + i).length), 'value'.length);
  const rows = [`    ${'value'.padStart(width)} : count    distribution`];
  for (let slot = first; slot <= last; slot++) {
    const n = counts.get(slot) ?? 0;
    const bar = '*'.repeat(Math.round((n * BAR_WIDTH) / max));
    rows.push(`    ${range(slot).padStart(width)} : ${String(n).padEnd(8)} |${bar.padEnd(BAR_WIDTH)}|`);
  }
  return rows;
}

/** Compact text of a decoded value: numbers and strings as they are, structures as JSON. */
function show(v: BtfValue): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}
