import { listLinks } from '../load/index.js';
import { UsageError, type CliOptions } from './args.js';
import { jsonText, table } from './table.js';

/** `bpf-load link [list]`: the BPF links the kernel holds, with the program and where each attaches it. */
export async function linkVerb(options: CliOptions): Promise<number> {
  const [action = 'list', ...rest] = options.args;
  if ((action !== 'list' && action !== 'show') || rest.length > 0) throw new UsageError(`link ${options.args.join(' ')}: the action is list`);
  const links = listLinks();
  if (options.json) {
    process.stdout.write(`${jsonText(links.map((l) => ({ id: l.id, type: l.typeName, progId: l.progId, target: l.target, ...(l.attachTypeName === undefined ? {} : { attachType: l.attachTypeName }) })))}\n`);
    return 0;
  }
  process.stdout.write(`${table(['id', 'type', 'prog', 'target'], links.map((l) => [String(l.id), l.typeName, String(l.progId), l.target === '' ? '-' : l.target]))}\n`);
  return 0;
}
