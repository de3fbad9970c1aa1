import { withContext } from '../base/errors.js';
import { LoadError } from './errors.js';
import type { Btf, BtfType } from '../btf/index.js';
import type { BpfObjectSpec } from '../object/index.js';

/** What an extern symbol became, by kind; relocateProgram turns it into instruction fields. */
export type ExternTarget =
  /** A kernel function (kfunc) by its id in the kernel's BTF: calls become BPF_PSEUDO_KFUNC_CALL. */
  | { readonly kind: 'kernel_func'; readonly btfId: number }
  /** A typed ksym: ld_imm64 becomes BPF_PSEUDO_BTF_ID with the kernel VAR's id. */
  | { readonly kind: 'kernel_var'; readonly btfId: number }
  /** An untyped ksym: its address from /proc/kallsyms, loaded as a 64-bit constant. */
  | { readonly kind: 'address'; readonly value: bigint }
  /** A .kconfig extern: BPF_PSEUDO_MAP_VALUE into the .kconfig map at this offset. */
  | { readonly kind: 'kconfig'; readonly offset: number }
  /** A weak extern the kernel lacks: loads as 0; calls become libbpf's poisoned helper call `poison`. */
  | { readonly kind: 'absent'; readonly poison: number }
  /** A strong extern that cannot be resolved: programs that use it fail with `reason`. */
  | { readonly kind: 'unresolved'; readonly reason: string };

/** Kernel facts the resolution needs; the loader reads them lazily, tests pass fakes. */
export interface ExternFacts {
  readonly kernelBtf: () => Btf;
  /** Text of /proc/kallsyms. */
  readonly kallsyms: () => string;
  /** Text of the kernel's .config (/proc/config.gz unpacked, or /boot/config-*); undefined when there is none. */
  readonly kconfig: () => string | undefined;
  /** LINUX_VERSION_CODE of the kernel. */
  readonly kernelVersion: number;
  /** Whether syscalls are entered through arch wrappers (__x64_sys_bpf …): LINUX_HAS_SYSCALL_WRAPPER. */
  readonly hasSyscallWrapper?: () => boolean;
}

export interface ExternResolution {
  readonly targets: ReadonlyMap<string, ExternTarget>;
  /** The .kconfig map: its contents and each extern's offset; undefined when the object has no .kconfig externs. */
  readonly kconfig: { readonly contents: Uint8Array; readonly offsets: ReadonlyMap<string, number> } | undefined;
}

/** bpf_attr.value_size is 32 bits. */
const MAX_KCONFIG_SIZE = 0xffffffff;

/** libbpf's POISON_CALL_KFUNC_BASE: a weak kfunc the kernel lacks becomes a call to helper base + extern index. */
export const KFUNC_POISON_BASE = 2002000000;

type KconfigKind = 'bool' | 'tristate' | 'char' | 'char_array' | 'int';

interface Extern {
  readonly name: string;
  readonly section: '.ksyms' | '.kconfig';
  /** The object's BTF type: a FUNC (kfunc) or a VAR. */
  readonly type: BtfType;
  readonly weak: boolean;
}

/**
 * Resolves every extern symbol the object's code references, the way libbpf does: `.ksyms` FUNCs are kfuncs found
 * by name in the kernel's BTF, typed `.ksyms` VARs are kernel BTF VARs, untyped ones addresses from kallsyms, and
 * `.kconfig` VARs values from the kernel version and config laid out in one read-only map. Names lose a `___flavor`
 * suffix before the kernel lookup, as in libbpf. Failures are per extern (see `unresolved`), so only the programs
 * that use a missing symbol fail to load.
 */
// Long: one case per extern kind (kfunc, typed ksym, untyped ksym, kconfig), in libbpf's order, sharing the lazily read kallsyms.
export function resolveExterns(spec: BpfObjectSpec, facts: ExternFacts): ExternResolution {
  const externs = collectExterns(spec);
  const targets = new Map<string, ExternTarget>();
  let kallsyms: Map<string, bigint> | undefined;
  let config: Map<string, string> | undefined;

  externs.forEach((ext, index) => {
    const missing = (what: string): ExternTarget => ext.weak
      ? { kind: 'absent', poison: KFUNC_POISON_BASE + index }
      : { kind: 'unresolved', reason: `extern ${ext.name}: ${what}` };
    const kernelName = essentialName(ext.name);
    if (ext.section === '.kconfig') return;
    if (ext.type.kind === 'func') {
      const f = facts.kernelBtf().findByName('func', kernelName);
      targets.set(ext.name, f === undefined ? missing(`the kernel's BTF has no function ${kernelName} (kfunc)`) : { kind: 'kernel_func', btfId: f.id });
    } else if (ext.type.kind === 'var' && ext.type.type !== 0) {
      const v = facts.kernelBtf().findByName('var', kernelName);
      targets.set(ext.name, v === undefined ? missing(`the kernel's BTF has no variable ${kernelName} (typed ksym)`) : { kind: 'kernel_var', btfId: v.id });
    } else {
      kallsyms ??= parseKallsyms(facts.kallsyms());
      const address = kallsyms.get(kernelName);
      targets.set(ext.name, address === undefined ? missing(`/proc/kallsyms has no symbol ${kernelName} (ksym)`) : { kind: 'address', value: address });
    }
  });

  const kconfigExterns = externs.filter((e) => e.section === '.kconfig');
  if (kconfigExterns.length === 0) return { targets, kconfig: undefined };
  const btf = spec.btf!;
  const typed = kconfigExterns.map((ext) => ({ ext, layout: kconfigLayout(btf, ext) }));
  // libbpf's order: most aligned first (then by name), each at the next offset of its alignment.
  typed.sort((a, b) => (b.layout?.align ?? 1) - (a.layout?.align ?? 1) || (a.ext.name < b.ext.name ? -1 : a.ext.name > b.ext.name ? 1 : 0));
  const offsets = new Map<string, number>();
  let size = 0;
  for (const { ext, layout } of typed) {
    const align = layout?.align ?? 1;
    size = Math.ceil(size / align) * align;
    offsets.set(ext.name, size);
    size += layout?.size ?? (ext.type.kind === 'var' ? btf.sizeof(ext.type.type) : 1);
    // The area becomes one map value, whose size the kernel takes as 32 bits; checked before anything is allocated.
    if (size > MAX_KCONFIG_SIZE) {
      throw new LoadError(withContext([spec.file, `extern ${ext.name} (.kconfig)`],
        `the .kconfig area grows to ${size} bytes; a map value holds at most ${MAX_KCONFIG_SIZE}`));
    }
  }
  const contents = new Uint8Array(Math.max(size, 1));
  for (const { ext, layout } of typed) {
    const offset = offsets.get(ext.name)!;
    const fail = (what: string) => targets.set(ext.name, { kind: 'unresolved', reason: `extern ${ext.name} (.kconfig): ${what}` });
    if (layout === undefined) {
      fail(`type ${btf.typeLabel(ext.type.kind === 'var' ? ext.type.type : ext.type.id)} is not supported (bool, tristate, char, char array or integer)`);
      continue;
    }
    let value: string | undefined;
    if (ext.name === 'LINUX_KERNEL_VERSION') value = String(facts.kernelVersion);
    else if (ext.name === 'LINUX_HAS_SYSCALL_WRAPPER') value = (facts.hasSyscallWrapper ?? (() => hasSyscallWrapper(facts.kallsyms())))() ? 'y' : 'n';
    else if (ext.name.startsWith('LINUX_')) {
      fail('not a value libbpf knows (LINUX_KERNEL_VERSION, LINUX_HAS_SYSCALL_WRAPPER)');
      continue;
    } else if (ext.name.startsWith('CONFIG_')) {
      if (config === undefined) {
        const text = facts.kconfig();
        config = text === undefined ? new Map() : parseKconfig(text);
        if (text === undefined) config.set('\0unavailable', '');
      }
      value = config.get(ext.name);
      if (value === undefined && !ext.weak) {
        fail(config.has('\0unavailable') ? 'the kernel config is unavailable (no /proc/config.gz or /boot/config-<release>)' : 'not set in the kernel config');
        continue;
      }
    } else {
      fail('.kconfig externs are named CONFIG_* or LINUX_*');
      continue;
    }
    if (value !== undefined) {
      const problem = writeKconfigValue(contents.subarray(offset, offset + layout.size), layout.kind, value, spec.littleEndian);
      if (problem !== undefined) {
        fail(problem);
        continue;
      }
    }
    targets.set(ext.name, { kind: 'kconfig', offset });
  }
  return { targets, kconfig: { contents, offsets } };
}

/**
 * The externs of `.ksyms` and `.kconfig` as the object's BTF declares them, with their weakness. Every extern the
 * code references must be one of them: anything else (a function declared but never defined) gets no entry and its
 * relocation fails naming it.
 */
function collectExterns(spec: BpfObjectSpec): Extern[] {
  const btf = spec.btf;
  if (btf === undefined) return [];
  const referenced = new Map<string, boolean>();
  for (const r of spec.relocations) {
    if (r.kind === 'extern') referenced.set(r.target, (referenced.get(r.target) ?? false) || r.weak);
  }
  const out: Extern[] = [];
  for (const section of ['.ksyms', '.kconfig'] as const) {
    const sec = btf.findByName('datasec', section);
    for (const v of sec?.vars ?? []) {
      const type = btf.type(v.type);
      if ((type.kind !== 'var' && type.kind !== 'func') || !referenced.has(type.name)) continue;
      out.push({ name: type.name, section, type, weak: referenced.get(type.name)! });
    }
  }
  return out;
}



/** libbpf ignores a `___suffix` (flavor) when looking a symbol up in the kernel. */
function essentialName(name: string): string {
  const i = name.indexOf('___');
  return i > 0 ? name.slice(0, i) : name;
}

/** Symbol → address from /proc/kallsyms text ("ffffffff814c9f50 T name [module]"); the first address wins. */
export function parseKallsyms(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [address, , name] = line.split(/\s+/);
    if (address === undefined || name === undefined || !/^[0-9a-fA-F]+$/.test(address) || out.has(name)) continue;
    out.set(name, BigInt(`0x${address}`));
  }
  return out;
}

/** CONFIG_X → raw value from .config text; `# CONFIG_X is not set` is 'n'. */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const unset = /^# (CONFIG_\w+) is not set/.exec(line);
    if (unset !== null) {
      out.set(unset[1]!, 'n');
      continue;
    }
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line.trim());
    if (m !== null) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Syscalls go through arch wrappers (__x64_sys_bpf, __arm64_sys_bpf …) on kernels built with them. */
function hasSyscallWrapper(kallsyms: string): boolean {
  return /^[0-9a-fA-F]+ \w __\w+_sys_bpf$/m.test(kallsyms);
}

/** How a .kconfig extern is stored (libbpf's find_kcfg_type). */
function kconfigLayout(btf: Btf, ext: Extern): { kind: KconfigKind; size: number; align: number } | undefined {
  if (ext.type.kind !== 'var') return undefined;
  const t = btf.type(btf.resolve(ext.type.type));
  if (t.kind === 'int') {
    if (t.bits !== t.size * 8 || t.bitOffset !== 0) return undefined;
    if (t.bool) return t.size === 1 ? { kind: 'bool', size: 1, align: 1 } : undefined;
    if (t.size === 1) return { kind: 'char', size: 1, align: 1 };
    return [2, 4, 8].includes(t.size) ? { kind: 'int', size: t.size, align: t.size } : undefined;
  }
  if (t.kind === 'enum') return t.name === 'libbpf_tristate' && t.size === 4 ? { kind: 'tristate', size: 4, align: 4 } : undefined;
  if (t.kind === 'array') {
    const e = btf.type(btf.resolve(t.type));
    if (e.kind === 'int' && e.size === 1 && (e.char || e.bits === 8) && t.nelems > 0) return { kind: 'char_array', size: t.nelems, align: 1 };
  }
  return undefined;
}

/** Writes `value` (y/m/n, "string" or a number, as in .config) into `out`; returns why it cannot, or undefined. */
function writeKconfigValue(out: Uint8Array, kind: KconfigKind, value: string, littleEndian: boolean): string | undefined {
  if (value === 'y' || value === 'n' || value === 'm') {
    switch (kind) {
      case 'bool':
        if (value === 'm') return `value 'm' does not fit a bool`;
        out[0] = value === 'y' ? 1 : 0;
        return undefined;
      case 'tristate':
        new DataView(out.buffer, out.byteOffset, 4).setUint32(0, value === 'y' ? 1 : value === 'm' ? 2 : 0, littleEndian);
        return undefined;
      case 'char':
        out[0] = value.charCodeAt(0);
        return undefined;
      default:
        return `value '${value}' needs a bool, char or enum libbpf_tristate`;
    }
  }
  if (value.startsWith('"')) {
    if (kind !== 'char_array') return `string value ${value} needs a char array`;
    if (!value.endsWith('"') || value.length < 2) return `malformed string value ${value}`;
    const bytes = Buffer.from(value.slice(1, -1), 'utf8');
    // Truncated to fit with its NUL, as libbpf does.
    out.set(bytes.subarray(0, out.length - 1));
    return undefined;
  }
  if (kind !== 'int' && kind !== 'char') return `numeric value ${value} needs an integer type`;
  let n: bigint;
  try {
    n = BigInt(value);
  } catch {
    return `value ${value} is not y, m, n, a "string" or a number`;
  }
  const bits = BigInt(out.length * 8);
  if (n < -(1n << (bits - 1n)) || n >= 1n << bits) return `value ${value} does not fit ${out.length} byte(s)`;
  const unsigned = BigInt.asUintN(Number(bits), n);
  for (let i = 0; i < out.length; i++) {
    const byte = Number((unsigned >> BigInt(8 * i)) & 0xffn);
    out[littleEndian ? i : out.length - 1 - i] = byte;
  }
  return undefined;
}

/** The message for an extern the object's BTF does not declare in .ksyms or .kconfig. */
export function undeclaredExtern(name: string): string {
  return withContext([`symbol ${name} is not defined in this object`],
    'it is neither a kfunc, a ksym nor a .kconfig extern (no .ksyms/.kconfig entry in the object\'s BTF), and other externs are not supported yet');
}
