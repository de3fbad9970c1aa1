import type { BtfType, BtfTypeLookup } from './types.js';

/**
 * Upper bound on the nodes one name may visit: func_proto parameters fan out, so a hostile DAG of prototypes could
 * otherwise make rendering exponential.
 */
const NAME_BUDGET = 100_000;
/**
 * Upper bound on nesting (pointer to pointer to …): each level is a JS stack frame, so a 30,000-deep chain would
 * overflow the stack long before the node budget ran out. C declarations in real BTF nest a few dozen deep at most.
 */
const NAME_DEPTH = 1_000;

/**
 * C declarator rendering: the declarator grows inside-out (`*`, `[n]`, `(args)`) and the base type goes on the left,
 * with parentheses where C needs them (`int (*)[4]`, `void (*)(int)`).
 */
export function renderTypeName(btf: BtfTypeLookup, rootId: number): string {
  let budget = NAME_BUDGET;
  const onPath = new Set<number>();

  const render = (id: number, declarator: string): string => {
    if (--budget < 0) throw btf.error({ typeId: rootId }, 'type name too complex to render');
    if (onPath.size >= NAME_DEPTH) throw btf.error({ typeId: rootId }, `type name nests deeper than ${NAME_DEPTH} levels`);
    if (onPath.has(id)) throw btf.error({ typeId: rootId }, `reference loop through [${id}] while rendering the type name`);
    const t = btf.type(id);
    onPath.add(id);
    try {
      return renderOne(t, declarator);
    } finally {
      onPath.delete(id);
    }
  };

  const renderOne = (t: BtfType, declarator: string): string => {
    switch (t.kind) {
      case 'void':
        return join('void', declarator);
      case 'int': case 'float': case 'typedef':
        return join(t.name, declarator);
      case 'struct': case 'union':
        return join(`${t.kind} ${t.name || '(anon)'}`, declarator);
      case 'enum': case 'enum64':
        return join(`enum ${t.name || '(anon)'}`, declarator);
      case 'fwd':
        return join(`${t.fwdKind} ${t.name}`, declarator);
      case 'ptr': {
        const target = btf.type(t.type).kind;
        return render(t.type, target === 'array' || target === 'func_proto' ? `(*${declarator})` : `*${declarator}`);
      }
      case 'const': case 'volatile': case 'restrict': case 'type_tag': {
        const qualifier = t.kind === 'type_tag' ? `__attribute__((btf_type_tag("${t.name}")))` : t.kind;
        // A qualified pointer puts the qualifier after the star (`char *const`); anything else before the type.
        if (btf.type(t.type).kind === 'ptr') return render(t.type, join(qualifier, declarator));
        return `${qualifier} ${render(t.type, declarator)}`;
      }
      case 'array':
        return render(t.type, `${declarator}[${t.nelems}]`);
      case 'func_proto': {
        const params = t.params.map((p) => render(p.type, ''));
        if (t.variadic) params.push('...');
        return render(t.returnType, `${declarator}(${params.length === 0 ? 'void' : params.join(', ')})`);
      }
      case 'func':
        return render(t.type, join(t.name, declarator));
      case 'var':
        return render(t.type, join(t.name, declarator));
      case 'datasec':
        return join(`SEC("${t.name}")`, declarator);
      case 'decl_tag':
        return render(t.type, declarator);
    }
  };

  return render(rootId, '');
}

function join(base: string, declarator: string): string {
  if (declarator === '') return base;
  if (base === '') return declarator;
  return declarator.startsWith('[') ? `${base}${declarator}` : `${base} ${declarator}`;
}
