import { printable } from '../base/printable.js';

/** Left-aligned text table with a header row; columns sized to their widest cell. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  // Cells hold names from the file: escaped, so a name cannot break the table or drive the terminal.
  rows = rows.map((r) => r.map(printable));
  // A loop, not Math.max(...rows): a file can have more rows than a call can take arguments.
  const widths = header.map((h, i) => rows.reduce((w, r) => Math.max(w, (r[i] ?? '').length), h.length));
  const line = (cells: readonly string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`;
  return [line(header), ...rows.map(line)].join('\n');
}
