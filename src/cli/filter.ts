/**
 * `bpf-load --filter EXPR …`: classic (tcpdump) filters. `--dump` shows the program in tcpdump -d syntax (and its
 * eBPF translation with --ebpf), `--pcap FILE` runs it over a capture, otherwise it is attached to a packet socket
 * on --iface and every packet it passes is printed until Ctrl-C or --count packets.
 */
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { fileSystemError, openUserFile, readUserFile } from '../base/file.js';
import type { SocketPacket } from '../attach/index.js';
import {
  checkClassicProgram, type ClassicProgram, ClassicFilterError, classicTextForm, classicToEbpf, compileClassicToJs, decodeClassicProgram,
  formatClassicInsn, jsCompilable, KernelOnlyError, parseClassicCArray, parseClassicDecimal,
} from '../cbpf/index.js';
import type { KernelClassicMatcher } from '../load/classic.js';
import { CaptureCursor, formatPacketTime, PcapStreamWriter, summarizePacket, type PacketSummary } from '../pcap/index.js';
// Only what filtering a capture needs is imported up front: the attach kinds and the instruction formatter are
// imported where they are used (start-up is part of every run over a capture).
import { LinkType, pcapCompile, pcapLinkTypeByName } from '../sys/pcap.js';
import { type CliOptions, UsageError } from './args.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`bpf-load: ${line}\n`);

export interface ResolvedFilter {
  readonly program: ClassicProgram;
  /** How it was given: a pcap-filter expression, tcpdump -ddd/comma text, tcpdump -dd C text, or raw sock_filter bytes. */
  readonly form: 'expression' | 'decimal' | 'c-array' | 'raw';
  readonly source: string;
  /** Why the kernel would refuse it, when it would (only --dump shows such programs). */
  readonly kernelRefusal?: string;
}

/** The filter text or bytes → a classic program. Expressions are compiled by libpcap for `linkType`. */
export function resolveFilter(options: Pick<CliOptions, 'filter' | 'filterFile'>, linkType: number, kernelCheck: boolean): ResolvedFilter {
  let text: string;
  let source: string;
  if (options.filterFile !== undefined) {
    const bytes = readUserFile(options.filterFile);
    source = options.filterFile;
    // Text forms are ASCII; struct sock_filter records always hold NULs (jt/jf/k high bytes) or bytes above 0x7f.
    if (bytes.some((b) => b === 0 || b > 0x7e)) return finish(decodeClassicProgram(bytes, source, { kernelCheck: false }), 'raw', source, kernelCheck);
    text = Buffer.from(bytes).toString('latin1');
  } else {
    text = options.filter!;
    source = 'filter';
  }
  const form = classicTextForm(text);
  if (form === 'decimal') return finish(parseClassicDecimal(text, source, { kernelCheck: false }), form, source, kernelCheck);
  if (form === 'c-array') return finish(parseClassicCArray(text, source, { kernelCheck: false }), form, source, kernelCheck);
  const expression = text.trim();
  return finish(decodeClassicProgram(pcapCompile(expression, { linkType }), `filter ${JSON.stringify(expression)}`, { kernelCheck: false }), form, source, kernelCheck);
}

function finish(program: ClassicProgram, form: ResolvedFilter['form'], source: string, kernelCheck: boolean): ResolvedFilter {
  try {
    checkClassicProgram(program, source);
    return { program, form, source };
  } catch (e) {
    if (kernelCheck || !(e instanceof ClassicFilterError)) throw e;
    return { program, form, source, kernelRefusal: e.message };
  }
}

function linkTypeOption(name: string | undefined, fallback: number): number {
  if (name === undefined) return fallback;
  if (/^\d+$/.test(name)) return Number(name);
  const known = (LinkType as Record<string, number>)[name.toUpperCase()];
  const value = known ?? pcapLinkTypeByName(name);
  if (value === undefined) throw new UsageError(`--link-type ${name}: unknown link type (EN10MB, LINUX_SLL, RAW, … or a link type number)`);
  return value;
}

export async function runClassicFilter(options: CliOptions): Promise<number> {
  if (options.file !== undefined) throw new UsageError(`--filter runs on its own: ${options.file} is not needed (object files hold eBPF programs)`);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  if (options.pcap !== undefined && !options.dump) {
    const capture = openCapture(options.pcap);
    try {
      const filter = resolveFilter(options, linkTypeOption(options.linkType, capture.cursor.linkType), true);
      await filterCapture(filter.program, capture.cursor, options);
    } finally {
      capture.close();
    }
    return 0;
  }
  const filter = resolveFilter(options, linkTypeOption(options.linkType, LinkType.EN10MB), !options.dump);
  if (options.dump) {
    await dumpFilter(filter, options);
    return 0;
  }
  return liveFilter(filter.program, options);
}

async function dumpFilter(filter: ResolvedFilter, options: CliOptions): Promise<void> {
  const ebpf = options.ebpf ? classicToEbpf(filter.program, filter.source) : undefined;
  const { formatInsn } = await import('../insn/index.js');
  if (options.json) {
    out(JSON.stringify({
      form: filter.form,
      instructions: filter.program.map((i, index) => ({ index, code: i.code, jt: i.jt, jf: i.jf, k: i.k, text: formatClassicInsn(i, index).slice(6) })),
      kernel: filter.kernelRefusal === undefined ? 'accepted' : filter.kernelRefusal,
      ...(ebpf === undefined ? {} : { ebpf: ebpf.map((i, index) => ({ index, text: formatInsn(i) })) }),
    }, null, 2));
    return;
  }
  for (let i = 0; i < filter.program.length; i++) out(formatClassicInsn(filter.program[i]!, i));
  if (filter.kernelRefusal !== undefined) note(`the kernel would refuse this program: ${filter.kernelRefusal}`);
  if (ebpf !== undefined) {
    out('');
    out(`eBPF translation (${ebpf.length} instructions, as the kernel's bpf_convert_filter would run it):`);
    const width = String(ebpf.length - 1).length;
    ebpf.forEach((insn, index) => out(`  ${String(index).padStart(width)}: ${formatInsn(insn)}`));
  }
}

/**
 * A capture file opened for one pass, streamed in windows (captures run to gigabytes, more than one Buffer can
 * hold); its header is checked at once. Close it when done.
 */
export function openCapture(path: string): { readonly cursor: CaptureCursor; close(): void } {
  const fd = openUserFile(path);
  try {
    const cursor = CaptureCursor.stream((into, position) => readSync(fd, into, 0, into.byteLength, position), path);
    return { cursor, close: () => closeSync(fd) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The current packet of a capture as --json shows it: index, time, lengths and the summary's fields. */
export function capturedPacketJson(cursor: CaptureCursor, summary: PacketSummary, time: string): Record<string, unknown> {
  return { index: cursor.index, time, seconds: cursor.seconds, nanos: cursor.nanos, length: cursor.length, captured: cursor.captured, ...summaryJson(summary) };
}

function summaryJson(summary: PacketSummary): Record<string, unknown> {
  const { text: _text, ...fields } = summary;
  return fields;
}

/** `--write OUT`: created (or truncated) for the matches; never the capture being read. */
function openOutput(path: string, capture: string): number {
  try {
    const input = statSync(capture);
    const output = statSync(path, { throwIfNoEntry: false });
    if (output !== undefined && output.isFile() && output.dev === input.dev && output.ino === input.ino) {
      throw new UsageError(`--write ${path}: that is the capture being read (--pcap ${capture})`);
    }
    return openSync(path, 'w');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw fileSystemError(path, e, 'write');
  }
}

/** `--pcap`: every packet through the filter; prints the matches (or writes them, --write) and a count. */
async function filterCapture(program: ClassicProgram, cursor: CaptureCursor, options: CliOptions): Promise<void> {
  const outputFd = options.write === undefined ? undefined : openOutput(options.write, options.pcap!);
  try {
    await filterCaptureInto(program, cursor, options, outputFd);
  } finally {
    if (outputFd !== undefined) closeSync(outputFd);
  }
}

async function filterCaptureInto(program: ClassicProgram, cursor: CaptureCursor, options: CliOptions, outputFd: number | undefined): Promise<void> {
  const writer = outputFd === undefined ? undefined : new PcapStreamWriter((bytes) => writeAll(outputFd, bytes, options.write!), {
    linkType: cursor.linkType, snaplen: cursor.snaplen === 0 ? 262144 : cursor.snaplen,
  });
  const useKernel = options.engine === 'kernel' || !jsCompilable(program);
  let kernel: KernelClassicMatcher | undefined;
  // The loader is imported when the kernel is first needed: most captures never need it.
  const startKernel = async () => (kernel = new (await import('../load/classic.js')).KernelClassicMatcher(program, { name: 'pcap_filter' }));
  const detail = () => `${options.pcap}: packet ${cursor.index} (${cursor.captured} bytes)`;
  const js = useKernel ? undefined : compileClassicToJs(program, 'filter');
  const limit = options.count ?? Infinity;
  let packets = 0;
  let matched = 0;
  let pending = '';
  try {
    while (cursor.next()) {
      packets++;
      let value: number;
      if (js === undefined) {
        value = (kernel ?? await startKernel()).match(cursor.data(), detail());
      } else {
        try {
          value = js.at(cursor.bytes, cursor.view, cursor.dataOffset, cursor.captured);
        } catch (e) {
          if (!(e instanceof KernelOnlyError)) throw e;
          value = (kernel ?? await startKernel()).match(cursor.data(), detail()); // a load only the kernel can answer
        }
      }
      if (value === 0) continue;
      matched++;
      if (writer !== undefined) {
        writer.write(cursor.seconds, cursor.nanos, cursor.bytes, cursor.dataOffset, cursor.captured, cursor.length);
      } else {
        const summary = summarizePacket(cursor.data(), cursor.linkType, cursor.length);
        const time = formatPacketTime(cursor.seconds, cursor.nanos);
        pending += options.json
          ? `${JSON.stringify({ ...capturedPacketJson(cursor, summary, time), verdict: value })}\n`
          : `${cursor.index} ${time} ${summary.text}\n`;
        if (pending.length >= 1 << 16) {
          process.stdout.write(pending);
          pending = '';
        }
      }
      if (matched >= limit) break;
    }
    writer?.flush();
  } finally {
    (kernel as KernelClassicMatcher | undefined)?.close();
  }
  const engine = useKernel ? 'kernel BPF_PROG_TEST_RUN' : 'compiled JavaScript';
  const written = options.write === undefined ? {} : { written: options.write };
  pending += options.json
    ? `${JSON.stringify({ matched, packets, engine: useKernel ? 'kernel' : 'js', ...written })}\n`
    : `${matched} of ${packets} packets matched (${engine})${options.write === undefined ? '' : `, written to ${options.write}`}\n`;
  process.stdout.write(pending);
}

function writeAll(fd: number, bytes: Uint8Array, path: string): void {
  try {
    for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done, bytes.byteLength - done);
  } catch (e) {
    throw fileSystemError(path, e, 'write');
  }
}

/** Attached to a packet socket: prints what passes until a signal or --count packets. */
async function liveFilter(program: ClassicProgram, options: CliOptions): Promise<number> {
  const { PacketSocket } = await import('../attach/index.js');
  const socket = new PacketSocket(options.iface, program, { lock: options.lock });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  let matched = 0;
  try {
    note(`listening on ${options.iface}: classic filter of ${program.length} instructions attached (SO_ATTACH_FILTER${options.lock ? ', locked' : ''}); Ctrl-C to stop`);
    if (options.count === 0) return 0;
    for await (const p of socket.packets(stop.signal)) {
      matched++;
      printLive(p, options.json);
      if (options.count !== undefined && matched >= options.count) break;
    }
    return 0;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    socket.close();
    out(options.json ? JSON.stringify({ matched }) : `${matched} packets matched`);
  }
}

function printLive(p: SocketPacket, json: boolean): void {
  const seconds = Math.floor(p.time / 1000);
  const nanos = Math.round((p.time - seconds * 1000) * 1e6);
  const summary = summarizePacket(p.data, LinkType.EN10MB, p.length);
  const time = formatPacketTime(seconds, nanos);
  const direction = p.direction === 'in' ? 'In ' : 'Out';
  out(json
    ? JSON.stringify({ time, seconds, nanos, direction: p.direction, length: p.length, captured: p.captured, ...summaryJson(summary) })
    : `${time} ${direction} ${summary.text}`);
}
