/**
 * Names that come from a file (sections, symbols, BTF types, maps, programs) are bytes anyone could have written:
 * a newline in one would split a one-line error, an escape sequence would drive the user's terminal. Every such name
 * passes through here before it is shown.
 */

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * The text with every control character written as an escape (`\n`, `\t`, `\x1b`, `\u2028`), so it stays one line
 * and inert on a terminal. Idempotent: escapes are printable, and backslashes are kept as they are.
 */
export function printable(text: string): string {
  UNPRINTABLE.lastIndex = 0;
  if (!UNPRINTABLE.test(text)) return text;
  return text.replace(UNPRINTABLE, (c) => {
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) return short;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
