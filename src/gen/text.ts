/** Text helpers of the generator: identifiers, property keys, doc comments, indentation. */

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `flow_key` → `FlowKey`, `__sk_buff` → `SkBuff`; a leading digit gets an underscore. */
export function pascal(name: string): string {
  const out = name.split(/[^A-Za-z0-9]+/).filter((p) => p !== '').map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

export function camel(name: string): string {
  const p = pascal(name);
  return p === '' ? p : p[0]!.toLowerCase() + p.slice(1);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** A property name as written in an object literal or interface (quoted unless a plain identifier). */
export function propertyKey(name: string): string {
  // `__proto__: …` in a literal would set the prototype; quoted in brackets it is a plain own property.
  if (name === '__proto__') return `['__proto__']`;
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

export function accessor(name: string): string {
  return IDENTIFIER.test(name) && name !== '__proto__' ? `.${name}` : `[${JSON.stringify(name)}]`;
}

export function doc(text: string, pad: string): string {
  return `${pad}/** ${text.replace(/\*\//g, '*\\/')} */\n`;
}

export function indent(text: string, pad: string): string {
  return text.split('\n').map((l) => (l === '' ? l : pad + l)).join('\n');
}

export function wrapList(items: readonly string[], pad: string): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    const next = line === '' ? item : `${line}, ${item}`;
    if (pad.length + next.length > 110 && line !== '') {
      lines.push(`${pad}${line},`);
      line = item;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(`${pad}${line},`);
  return lines.join('\n');
}
