/**
 * uprobe/uretprobe programs: a probe on a function (or an address) of an executable or shared library, in every
 * process that maps it or in one pid. Sections use libbpf's syntax — `uprobe/PATH:SYMBOL[+OFFSET]`,
 * `uretprobe/PATH:SYMBOL`, `uprobe.s/…` for sleepable programs — and `attachUprobe()` takes the same facts directly.
 *
 * The symbol is resolved here, in the file (`.symtab`, else `.dynsym`; st_value → file offset through the PT_LOAD
 * program headers), and the kernel gets path + offset: through the uprobe PMU (and a BPF link when the kernel has
 * perf links), or tracefs uprobe_events as a fallback, adding and removing only our own events.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import { BpfLoadError, withContext } from '../base/errors.js';
import { functionFileOffset, readExecutable, type ExecutableFile } from '../elf/executable.js';
import type { LoadedProgram } from '../load/index.js';
import { cString, KernelFeatureError, type PerfEventAttr } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, onceLink } from './link.js';
import { openPerfEventWithProgram, type PerfAttachment, type PerfLink } from './perf-event.js';
import { attachWithProbeEvents, readProbePmu } from './probe.js';
import { tracefsRoot, tracepointId } from './tracefs.js';

export const UPROBE_PMU_DIR = '/sys/bus/event_source/devices/uprobe';
export const UPROBE_EVENT_GROUP = 'bpf_load_u';

export interface UprobeTarget {
  /** Path of the executable or library, or a bare name: `libc.so.6` as the dynamic linker finds it, `bash` in PATH. */
  readonly binary: string;
  /** Function to probe (with `offset` bytes into it), or … */
  readonly symbol?: string;
  /** … a file offset when there is no symbol. */
  readonly offset?: number;
  /** Only this process (default: every process that runs the file). */
  readonly pid?: number;
  /** Probe the function's return (uretprobe) instead of its entry. */
  readonly retprobe?: boolean;
}

/** The kernel facts uprobe attachment depends on; tests swap them for fakes. */
export interface UprobeEnvironment {
  readonly pmuDir: string;
  readonly eventId: (root: string, group: string, event: string) => number;
  readonly openEvent: (attr: PerfEventAttr, progFd: number, pid: number) => PerfAttachment;
  /** Where bare library names are looked up: /etc/ld.so.cache and the standard directories. */
  readonly ldSoCache: string;
  readonly libraryDirs: readonly string[];
  readonly path: string;
}

const MULTIARCH = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';

export const DEFAULT_UPROBE_ENVIRONMENT: UprobeEnvironment = {
  pmuDir: UPROBE_PMU_DIR,
  eventId: tracepointId,
  // A uprobe on every process: pid -1 needs a cpu; the program runs on whichever CPU hits the probe.
  openEvent: (attr, progFd, pid) => openPerfEventWithProgram({ attr, pid, cpu: pid === -1 ? 0 : -1, progFd }),
  ldSoCache: '/etc/ld.so.cache',
  libraryDirs: [`/lib/${MULTIARCH}`, `/usr/lib/${MULTIARCH}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
  path: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
};

/** Refuses what must never reach the kernel or tracefs: control characters (a newline would start a new command). */
function checkPrintable(value: string, what: string): string {
  if (value === '' || /[\x00-\x1f\x7f]/.test(value)) throw new AttachError(`${what} ${JSON.stringify(value)}: empty or contains control characters`);
  return value;
}

/** libbpf's section target: `PATH:SYMBOL`, `PATH:SYMBOL+OFFSET` or `PATH:OFFSET` (hex or decimal). */
export function parseUprobeSection(section: string, target: string): Omit<UprobeTarget, 'pid'> {
  const retprobe = section.startsWith('uretprobe');
  const colon = target.lastIndexOf(':');
  if (target === '' || colon <= 0) {
    throw new AttachError(withContext([section], 'expected uprobe/PATH:SYMBOL[+OFFSET] (no binary and function in the section name: attach it with attachUprobe())'));
  }
  const binary = target.slice(0, colon);
  const where = target.slice(colon + 1);
  const m = /^([A-Za-z_.@][A-Za-z0-9_.@]*)?(?:\+?(0x[0-9a-fA-F]+|[0-9]+))?$/.exec(where);
  if (m === null || (m[1] === undefined && m[2] === undefined)) {
    throw new AttachError(withContext([section], `${JSON.stringify(where)} is neither SYMBOL, SYMBOL+OFFSET nor OFFSET`));
  }
  const offset = m[2] === undefined ? undefined : Number(m[2]);
  return { binary, retprobe, ...(m[1] === undefined ? {} : { symbol: m[1] }), ...(offset === undefined ? {} : { offset }) };
}

/** ld.so.cache entry flags (glibc's ldconfig.h): the architecture bits of 64-bit libraries. */
const CACHE_ARCH_MASK = 0xff00;
const CACHE_ARCH_OF: Readonly<Record<string, number>> = { x64: 0x0300, arm64: 0x0a00 };

/**
 * Parses /etc/ld.so.cache (glibc's "glibc-ld.so.cache1.1" format): library name → path for this architecture (a
 * multilib cache also lists /lib32 copies), first entry wins as for the dynamic linker.
 */
export function parseLdSoCache(bytes: Uint8Array, arch: string = process.arch): Map<string, string> {
  const MAGIC = 'glibc-ld.so.cache1.1';
  const out = new Map<string, string>();
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // An old-format cache ("ld.so-1.7.0") may precede the new one; the new header's offsets count from its own start.
  const start = text.indexOf(MAGIC, 0, 'latin1');
  if (start < 0 || start + 48 > text.byteLength) return out;
  const count = text.readUInt32LE(start + 20);
  const entries = start + 48;
  if (count > (text.byteLength - entries) / 24) return out;
  const str = (offset: number) => {
    const at = start + offset;
    const end = text.indexOf(0, at);
    return at < text.byteLength && end > at ? text.toString('utf8', at, end) : undefined;
  };
  for (let i = 0; i < count; i++) {
    const e = entries + i * 24;
    if ((text.readInt32LE(e) & CACHE_ARCH_MASK) !== (CACHE_ARCH_OF[arch] ?? 0)) continue;
    const key = str(text.readUInt32LE(e + 4));
    const value = str(text.readUInt32LE(e + 8));
    if (key !== undefined && value !== undefined && !out.has(key)) out.set(key, value);
  }
  return out;
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The file a uprobe target names: a path (absolute, or relative to the working directory), a bare library name
 * (`libc.so.6`) through ld.so.cache then the standard directories, or a bare program name through PATH.
 */
export function resolveBinary(binary: string, env: Pick<UprobeEnvironment, 'ldSoCache' | 'libraryDirs' | 'path'> = DEFAULT_UPROBE_ENVIRONMENT): string {
  checkPrintable(binary, 'uprobe binary');
  if (binary.includes('/')) {
    const path = isAbsolute(binary) ? binary : resolve(binary);
    if (!isRegularFile(path)) throw new AttachError(`uprobe binary ${path}: ${existsSync(path) ? 'not a regular file' : 'no such file'}`);
    return path;
  }
  if (/\.so(\.|$)/.test(binary)) {
    let cached: string | undefined;
    try {
      cached = parseLdSoCache(readFileSync(env.ldSoCache)).get(binary);
    } catch {
      // No cache (musl, containers): the standard directories decide.
    }
    if (cached !== undefined && isRegularFile(cached)) return cached;
    const found = env.libraryDirs.map((d) => join(d, binary)).find(isRegularFile);
    if (found !== undefined) return found;
    throw new AttachError(`uprobe library ${binary}: not in ${env.ldSoCache} nor in ${env.libraryDirs.join(', ')}`);
  }
  for (const dir of env.path.split(delimiter).filter((d) => d !== '')) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      if (isRegularFile(candidate)) return candidate;
    } catch {
      // Not here.
    }
  }
  throw new AttachError(`uprobe binary ${binary}: not found in PATH (${env.path})`);
}

/** Reads and parses the binary; the file offset of the probe point. */
export function uprobeFileOffset(path: string, target: Pick<UprobeTarget, 'symbol' | 'offset'>): number {
  if (target.symbol === undefined) {
    if (target.offset === undefined || !Number.isSafeInteger(target.offset) || target.offset < 0) {
      throw new AttachError(`uprobe ${path}: give a symbol or a file offset ≥ 0`);
    }
    return target.offset;
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new AttachError(`uprobe binary ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  const elf: ExecutableFile = readExecutable(bytes, { file: path });
  return functionFileOffset(elf, checkPrintable(target.symbol, 'uprobe symbol'), target.offset ?? 0);
}

/** Attaches `program` (a kprobe-type program) as a uprobe or uretprobe on `target`. */
export function attachUprobe(
  program: LoadedProgram, target: UprobeTarget, options: AttachOptions = {}, environment: Partial<UprobeEnvironment> = {},
): PerfLink {
  const env: UprobeEnvironment = { ...DEFAULT_UPROBE_ENVIRONMENT, ...environment };
  const retprobe = target.retprobe === true;
  const kind = retprobe ? 'uretprobe' : 'uprobe';
  const pid = target.pid ?? -1;
  if (!Number.isInteger(pid) || pid < -1 || pid === 0) throw new AttachError(`${kind}: pid ${pid} (a process id, or -1 for every process)`);
  const path = resolveBinary(target.binary, env);
  const offset = uprobeFileOffset(path, target);
  const point = target.symbol === undefined ? `0x${offset.toString(16)}` : `${target.symbol}${target.offset ? `+${target.offset}` : ''}`;
  const where = `${kind} ${path}:${point}${pid === -1 ? '' : ` pid ${pid}`}`;

  let probe: { fd: number; detach(): void };
  const pmu = readProbePmu(env.pmuDir, 'uprobe');
  try {
    if (pmu !== undefined) {
      const event = env.openEvent({
        type: pmu.type,
        config: retprobe ? 1n << BigInt(pmu.retprobeBit) : 0n,
        config1: cString(path, 'uprobe path'),
        config2: offset,
      }, program.fd, pid);
      probe = { fd: event.fd, detach: () => event.close() };
    } else {
      // tracefs takes the path inside a command line: only plain path characters get that far.
      checkSafeName(path, 'uprobe path');
      let root: string;
      try {
        root = tracefsRoot(options);
      } catch (e) {
        if (e instanceof KernelFeatureError) throw new KernelFeatureError('uprobe support', kind, { message: 'this kernel has no uprobe support (no uprobe PMU, no uprobe_events)' });
        throw e;
      }
      if (!existsSync(join(root, 'uprobe_events'))) throw new KernelFeatureError('uprobe support', kind, { message: 'this kernel has no uprobe support (no uprobe PMU, no uprobe_events)' });
      if (pid !== -1) throw new AttachError(`${where}: uprobe_events probes every process; a pid filter needs the uprobe PMU`);
      probe = attachWithProbeEvents({
        root, eventsFile: 'uprobe_events', group: UPROBE_EVENT_GROUP, target: `${path}:0x${offset.toString(16)}`,
        name: `${basename(path)}_${target.symbol ?? offset.toString(16)}`, retprobe, progFd: program.fd,
        env: { eventId: env.eventId, openEvent: (attr, progFd) => env.openEvent(attr, progFd, -1) },
      });
    }
  } catch (e) {
    if (e instanceof BpfLoadError && !(e instanceof KernelFeatureError)) throw new AttachError(withContext([where], e.message), { cause: e });
    throw e;
  }
  return onceLink({ kind: 'uprobe' as const, program: program.name, target: where, fds: [probe.fd] }, () => probe.detach());
}

/** `uprobe/PATH:SYMBOL[+OFFSET]`, `uretprobe/…`, `uprobe.s/…`, `uretprobe.s/…`: the section says where. */
export function attachUprobeSection(program: LoadedProgram, options: AttachOptions): PerfLink {
  const target = parseUprobeSection(program.section, program.spec.attachTarget);
  return attachUprobe(program, target, options);
}
