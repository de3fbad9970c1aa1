import { printable } from '../base/printable.js';
import { UsageError } from './args.js';

/** Left-aligned text table with a header row; columns sized to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  return Array.from(tableLines(header, rows.length, (i) => rows[i]!)).join('\n');
}

/**
 * The same table one line at a time, each row made by `row(i)` when needed (twice: once to size the columns, once to
 * print it), so a table with a row per relocation (20k in a big object) is never all in memory at once.
 */
export function* tableLines(header: readonly string[], count: number, row: (i: number) => readonly string[]): Generator<string, void, undefined> {
  // Cells hold names from the file: escaped, so a name cannot break the table or drive the terminal.
  const widths = header.map((h) => h.length);
  for (let i = 0; i < count; i++) {
    const cells = row(i);
    for (let c = 0; c < widths.length; c++) widths[c] = Math.max(widths[c]!, printable(cells[c] ?? '').length);
  }
  yield tableLine(header, widths);
  for (let i = 0; i < count; i++) yield tableLine(row(i), widths);
}

/** One line of such a table: cells escaped and padded to `widths`, two spaces apart, indented, trailing blanks trimmed. */
export function tableLine(cells: readonly string[], widths: readonly number[]): string {
  return `  ${cells.map((c, i) => printable(c).padEnd(widths[i] ?? 0)).join('  ').trimEnd()}`;
}

/** JSON text where bigints become numbers when exact, decimal strings beyond 2^53, and Dates ISO strings. */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }, indent);
}

/** Local time, 24-hour, second resolution: `2026-11-29 10:05:03` (with `withDate`) or `10:05:03`. */
export function clockTime(date: Date, withDate = false): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  return withDate ? `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${time}` : time;
}

/** The argument of `prog dump`/`map dump`: an id (`12`, `id 12`) or a pinned path (`/sys/fs/bpf/x`, `pinned PATH`). */
export function objectRef(words: readonly string[], what: string): number | string {
  const [first, second] = words[0] === 'id' || words[0] === 'pinned' ? [words[1], words.length - 2] : [words[0], words.length - 1];
  if (first === undefined) throw new UsageError(`${what}: expects an id or a pinned path`);
  if (second > 0) throw new UsageError(`${what}: one id or pinned path, not ${words.join(' ')}`);
  if (words[0] === 'pinned' || !/^\d+$/.test(first)) return first;
  return Number(first);
}
