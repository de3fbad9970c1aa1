import { toHex } from '../base/cursor.js';
import { decodeUnsigned, type MapHandle } from '../load/index.js';

/** A map entry as the live view shows it: integers for 1/2/4/8-byte fields, hex otherwise. */
export interface EntryView {
  readonly key: number | string;
  /** Summed over CPUs for per-CPU maps; an array per CPU with --per-cpu. */
  readonly value: number | string | Array<number | string>;
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
    try {
      const entries: EntryView[] = [];
      for (const [key, value] of m.readAll()) {
        if (value.every((b) => b === 0)) continue;
        entries.push({ key: field(key), value: m.perCpu ? cpuValues(m, value, perCpu) : field(value) });
      }
      return { name: m.name, entries };
    } catch (e) {
      return { name: m.name, entries: [], unreadable: (e as Error).message };
    }
  });
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

/** Text form of one round for the terminal. */
export function renderRound(round: number, maps: readonly MapRound[]): string {
  const lines = [`--- round ${round} (${new Date().toLocaleTimeString()}) ---`];
  for (const m of maps) {
    if (m.unreadable !== undefined) {
      lines.push(`${m.name}: (unreadable: ${m.unreadable})`);
      continue;
    }
    if (m.entries.length === 0) {
      lines.push(`${m.name}: (no non-zero entries)`);
      continue;
    }
    lines.push(`${m.name}:`);
    for (const e of m.entries) lines.push(`  ${String(e.key).padStart(6)} → ${Array.isArray(e.value) ? `[${e.value.join(', ')}]` : e.value}`);
  }
  return `${lines.join('\n')}\n`;
}
