/**
 * The source tree's shape, read with the TypeScript compiler's parser: every relative import of every src file
 * (value and type-only, `export … from` included), and every function's length. For test/structure.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { PROJECT_ROOT } from './kernel.js';

export const SRC = join(PROJECT_ROOT, 'src');

/** Every .ts file under src, as paths relative to src (`load/loader.ts`). */
export function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(SRC, path));
    }
  };
  walk(SRC);
  return out.sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, readFileSync(join(SRC, file), 'utf8'), ts.ScriptTarget.Latest, true);
}

export interface SourceImport {
  /** The imported module: a src-relative .ts path for relative imports, else the package name. */
  readonly target: string;
  readonly typeOnly: boolean;
}

/** Imports and re-exports of `file`, type-only ones marked. */
export function importsOf(file: string): SourceImport[] {
  const out: SourceImport[] = [];
  const add = (spec: ts.Expression | undefined, typeOnly: boolean) => {
    if (spec === undefined || !ts.isStringLiteral(spec)) return;
    const text = spec.text;
    const target = text.startsWith('.') ? relative(SRC, resolve(SRC, dirname(file), text)).replace(/\.js$/, '.ts') : text;
    out.push({ target, typeOnly });
  };
  for (const node of parse(file).statements) {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && clause.namedBindings !== undefined &&
        ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    }
  }
  return out;
}

export interface FunctionShape {
  readonly file: string;
  readonly name: string;
  readonly line: number;
  readonly lines: number;
  /** The comment lines just above it (JSDoc and `//`), where a reason for its length goes. */
  readonly leadingComment: string;
}

/** Every function, method, accessor, constructor and function-valued const, with its length in lines. */
export function functionsOf(file: string): FunctionShape[] {
  const source = parse(file);
  const text = source.getFullText();
  const out: FunctionShape[] = [];
  const visit = (node: ts.Node, owner: string | undefined) => {
    let name: string | undefined;
    let commentNode: ts.Node = node;
    if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) {
      name = node.name?.getText(source) ?? 'default';
    } else if (ts.isConstructorDeclaration(node)) {
      name = 'constructor';
    } else if ((ts.isArrowFunction(node) || ts.isFunctionExpression(node)) && ts.isVariableDeclaration(node.parent)) {
      name = node.parent.name.getText(source);
      commentNode = node.parent.parent.parent; // the variable statement carries the comment
    }
    if (name !== undefined) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const comments = ts.getLeadingCommentRanges(text, commentNode.getFullStart()) ?? [];
      out.push({
        file, name: owner === undefined ? name : `${owner}.${name}`, line: start + 1, lines: end - start + 1,
        leadingComment: comments.map((c) => text.slice(c.pos, c.end)).join('\n'),
      });
    }
    const nextOwner = ts.isClassDeclaration(node) ? node.name?.getText(source) : owner;
    ts.forEachChild(node, (child) => visit(child, nextOwner));
  };
  visit(source, undefined);
  return out;
}

/** Strongly connected components of more than one file (or a file importing itself): the import cycles. */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string) => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) connect(v);
  return cycles;
}
