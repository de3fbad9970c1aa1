export { catchError } from '../helpers/errors.js';

/** One type as `bpftool btf dump file X format raw` prints it: `[id] KIND 'name' k=v ...` plus indented lines. */
export interface RawDumpType {
  id: number;
  kind: string;
  name: string;
  attrs: Record<string, string>;
  children: Array<{ name?: string; attrs: Record<string, string> }>;
}

function parseAttrs(text: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  // Datasec entries end in "(VAR 'name')", a comment for humans; VAR separates its fields with a comma.
  for (const word of text.replace(/\(\w+ '[^']*'\)\s*$/, '').split(/[\s,]+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq < 0) throw new Error(`unexpected bpftool token "${word}" in "${text}"`);
    attrs[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return attrs;
}

export function parseRawDump(text: string): RawDumpType[] {
  const out: RawDumpType[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const head = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (head !== null) {
      out.push({ id: Number(head[1]), kind: head[2]!, name: head[3]!, attrs: parseAttrs(head[4]!), children: [] });
      continue;
    }
    const current = out[out.length - 1];
    if (current === undefined || !line.startsWith('\t')) throw new Error(`unexpected bpftool line "${line}"`);
    const named = /^\t'([^']*)' (.*)$/.exec(line);
    current.children.push(named !== null ? { name: named[1]!, attrs: parseAttrs(named[2]!) } : { attrs: parseAttrs(line.slice(1)) });
  }
  return out;
}
