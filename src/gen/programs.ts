/**
 * The skeleton's programs: the union of their names, and a typed handle each whose type says what its kind allows —
 * attach() with the options that kind reads, attachUprobe() for kprobe-type programs, testRun() where the kernel can
 * test-run the program type (naming XDP and tc actions).
 */
import type { AttachableKind } from '../attach/index.js';
import type { BpfObjectSpec, ProgramSpec } from '../object/index.js';
import { doc, propertyKey } from './text.js';

/** The runtime option type each attachable kind's attach() takes (the compiler refuses a kind left out). */
const ATTACH_OPTIONS: Readonly<Record<AttachableKind, string>> = {
  socket: 'SocketAttachOptions', xdp: 'XdpAttachOptions', tc: 'TcAttachOptions', cgroup: 'CgroupAttachOptions',
  perf_event: 'PerfEventAttachOptions', tracepoint: 'TracefsAttachOptions', kprobe: 'TracefsAttachOptions',
  kretprobe: 'TracefsAttachOptions', uprobe: 'TracefsAttachOptions', raw_tracepoint: 'NoAttachOptions', tracing: 'NoAttachOptions',
  lsm: 'NoAttachOptions', sockmap: 'NoAttachOptions',
};

/**
 * Program types BPF_PROG_TEST_RUN runs (the kernel's test_run hooks); `tracing` only for fentry/fexit, so it is left
 * out, as are struct_ops and netfilter, which need a context bpf-load does not build.
 */
const TEST_RUN_RESULTS: Readonly<Record<string, string>> = {
  xdp: 'XdpRunResult', sched_cls: 'TcRunResult', sched_act: 'TcRunResult',
  socket_filter: 'TestRunResult', cgroup_skb: 'TestRunResult', lwt_in: 'TestRunResult', lwt_out: 'TestRunResult',
  lwt_xmit: 'TestRunResult', lwt_seg6local: 'TestRunResult', flow_dissector: 'TestRunResult', sk_lookup: 'TestRunResult',
  raw_tracepoint: 'TestRunResult', raw_tracepoint_writable: 'TestRunResult', syscall: 'TestRunResult',
};

export interface ProgramField {
  readonly name: string;
  readonly ts: string;
  readonly init: string;
  readonly comment: string;
}

/** The programs a skeleton names: those with a type, one per name (the first of a name wins). */
export function skeletonPrograms(spec: BpfObjectSpec): ProgramSpec[] {
  const seen = new Set<string>();
  return spec.programs.filter((p) => p.type !== 'unspecified' && !seen.has(p.name) && seen.add(p.name));
}

export function programField(p: ProgramSpec): ProgramField {
  const parts = ['Program'];
  const notes: string[] = [];
  const options = Object.hasOwn(ATTACH_OPTIONS, p.attach) ? ATTACH_OPTIONS[p.attach as AttachableKind] : undefined;
  if (options !== undefined) {
    parts.push(`Attachable<${options}>`);
    notes.push('attach()');
  }
  if (p.type === 'kprobe') {
    parts.push('UprobeAttachable');
    notes.push('attachUprobe()');
  }
  const result = Object.hasOwn(TEST_RUN_RESULTS, p.type) ? TEST_RUN_RESULTS[p.type] : undefined;
  if (result !== undefined) {
    parts.push(`TestRunnable<${result}>`);
    notes.push(result === 'TestRunResult' ? 'testRun()' : 'testRun() (the action by name)');
  }
  const generic = result === undefined || result === 'TestRunResult' ? '' : `<${result}>`;
  return {
    name: p.name,
    ts: parts.join(' & '),
    init: `new SkeletonProgram${generic}(this.bpf, ${JSON.stringify(p.name)})`,
    comment: `\`${p.name}\`: ${p.type} in section ${p.section}${notes.length === 0 ? '' : `; ${notes.join(', ')}`}.`,
  };
}

/** The union of program names, and the list of them. */
export function programNames(programs: readonly ProgramSpec[]): string {
  if (programs.length === 0) return 'export type ProgramName = never;';
  const names = programs.map((p) => JSON.stringify(p.name));
  return `/** The object's programs. */\nexport type ProgramName = ${names.join(' | ')};\nexport const PROGRAMS: readonly ProgramName[] = [${names.join(', ')}];`;
}

/** The class's `programs` declaration lines. */
export function programDeclarations(fields: readonly ProgramField[]): string[] {
  const lines = [`  /** The programs by name: attach()/testRun() where the kind allows (\`.handle\` is the loaded program). */`];
  if (fields.length === 0) return [...lines, `  readonly programs: Record<string, never>;`];
  return [...lines, `  readonly programs: {`, ...fields.map((f) => `${doc(f.comment, '    ')}    readonly ${propertyKey(f.name)}: ${f.ts};`), `  };`];
}
