/**
 * The text forms a classic filter travels in: `tcpdump -ddd` (a count line, then `code jt jf k` in decimal),
 * the same joined by commas (`iptables -m bpf --bytecode`, `tc … bpf bytecode`), and `tcpdump -dd` (a C array of
 * `{ code, jt, jf, k },`). Every parsed program is checked like the kernel checks it.
 */
import { ClassicFilterError } from './errors.js';
import { checkClassicProgram, type ClassicParseOptions, type SockFilter } from './program.js';

/** Which form a text is in; `expression` means none of the bytecode forms (a pcap-filter expression, presumably). */
export type ClassicTextForm = 'decimal' | 'c-array' | 'expression';

const DECIMAL_FORM = /^\s*\d+\s*(?:[,\n]|$)/;
const C_ARRAY_FORM = /^\s*(?:(?:static\s+)?(?:const\s+)?struct\s+sock_filter\s+\w+\s*\[\s*\w*\s*\]\s*=\s*\{\s*)?\{/;

export function classicTextForm(text: string): ClassicTextForm {
  if (DECIMAL_FORM.test(text)) return 'decimal';
  if (C_ARRAY_FORM.test(text)) return 'c-array';
  return 'expression';
}

/** A C or decimal integer literal (0x1c, 28, 034) that fits `max`; undefined otherwise. */
function literal(token: string, max: number): number | undefined {
  const t = token.trim().replace(/[uUlL]+$/, '');
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) value = parseInt(t.slice(2), 16);
  else if (/^0[0-7]+$/.test(t)) value = parseInt(t.slice(1), 8);
  else if (/^(?:0|[1-9]\d*)$/.test(t)) value = Number(t);
  else return undefined;
  return value <= max ? value : undefined;
}

function insnFrom(fields: readonly string[], fail: (cause: string) => never): SockFilter {
  if (fields.length !== 4) fail(`expected 4 fields (code jt jf k), got ${fields.length}`);
  const code = literal(fields[0]!, 0xffff);
  const jt = literal(fields[1]!, 0xff);
  const jf = literal(fields[2]!, 0xff);
  const k = literal(fields[3]!, 0xffffffff);
  if (code === undefined) fail(`code ${JSON.stringify(fields[0])} is not a 16-bit number`);
  if (jt === undefined) fail(`jt ${JSON.stringify(fields[1])} is not an 8-bit number`);
  if (jf === undefined) fail(`jf ${JSON.stringify(fields[2])} is not an 8-bit number`);
  if (k === undefined) fail(`k ${JSON.stringify(fields[3])} is not a 32-bit number`);
  return { code: code!, jt: jt!, jf: jf!, k: k! };
}

function checked(program: SockFilter[], source: string | undefined, options: ClassicParseOptions): SockFilter[] {
  if (options.kernelCheck !== false) checkClassicProgram(program, source);
  return program;
}

/** `tcpdump -ddd` output, or its comma-joined one-line form. */
export function parseClassicDecimal(text: string, source?: string, options: ClassicParseOptions = {}): SockFilter[] {
  const records = text.split(/[,\n]/).map((r) => r.trim());
  while (records.length > 0 && records.at(-1) === '') records.pop();
  const countText = records[0] ?? '';
  const count = literal(countText, 0xffff);
  if (count === undefined || !/^\d+$/.test(countText)) {
    throw new ClassicFilterError(source, undefined, `record 1: expected the instruction count, got ${JSON.stringify(countText)}`);
  }
  if (records.length - 1 !== count) {
    throw new ClassicFilterError(source, undefined, `the count says ${count} instructions but ${records.length - 1} follow`);
  }
  const program = records.slice(1).map((record, i) => insnFrom(record.split(/\s+/), (cause) => {
    throw new ClassicFilterError(source, i, cause);
  }));
  return checked(program, source, options);
}

/** `tcpdump -dd` output: `{ 0x28, 0, 0, 0x0000000c },` lines, optionally inside `struct sock_filter code[] = { … };`. */
export function parseClassicCArray(text: string, source?: string, options: ClassicParseOptions = {}): SockFilter[] {
  let body = text.trim();
  const wrapper = /^(?:static\s+)?(?:const\s+)?struct\s+sock_filter\s+\w+\s*\[\s*\w*\s*\]\s*=\s*\{([\s\S]*)\}\s*;?$/.exec(body);
  if (wrapper !== null) body = wrapper[1]!.trim();
  const program: SockFilter[] = [];
  const entry = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = entry.exec(body); m !== null; m = entry.exec(body)) {
    const between = body.slice(last, m.index);
    if (!/^[\s,]*$/.test(between)) {
      throw new ClassicFilterError(source, program.length, `unexpected text ${JSON.stringify(between.replace(/^[\s,]+|[\s,]+$/g, '').slice(0, 40))} before the entry`);
    }
    const index = program.length;
    program.push(insnFrom(m[1]!.split(',').map((f) => f.trim()).filter((f, i, all) => f !== '' || i < all.length - 1), (cause) => {
      throw new ClassicFilterError(source, index, cause);
    }));
    last = m.index + m[0].length;
  }
  const rest = body.slice(last);
  if (!/^[\s,]*$/.test(rest)) throw new ClassicFilterError(source, undefined, `unexpected text ${JSON.stringify(rest.replace(/^[\s,]+|[\s,]+$/g, '').slice(0, 40))} after the last entry`);
  return checked(program, source, options);
}
