/**
 * `bpf-load --filter EXPR …`: classic (tcpdump) filters. `--dump` shows the program in tcpdump -d syntax (and its
 * eBPF translation with --ebpf), `--pcap FILE` runs it over a capture, otherwise it is attached to a packet socket
 * on --iface and every packet it passes is printed until Ctrl-C or --count packets.
 */
import { readUserFile } from '../base/file.js';
import { PacketSocket, type SocketPacket } from '../attach/index.js';
import {
  checkClassicProgram, type ClassicProgram, ClassicFilterError, classicTextForm, classicToEbpf, compileClassicToJs, decodeClassicProgram,
  formatClassicInsn, jsCompilable, KernelOnlyError, parseClassicCArray, parseClassicDecimal,
} from '../cbpf/index.js';
import { formatInsn } from '../insn/index.js';
import { KernelClassicMatcher } from '../load/index.js';
import { type CapturedPacket, formatPacketTime, readCapture, readCaptureHeader, summarizePacket, type PacketSummary } from '../pcap/index.js';
import { LinkType, pcapCompile, pcapLinkTypeByName } from '../sys/index.js';
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
  if (value === undefined) throw new UsageError(`--link-type ${name}: unknown link type (EN10MB, LINUX_SLL, RAW, … or a DLT number)`);
  return value;
}

export async function runClassicFilter(options: CliOptions): Promise<number> {
  if (options.file !== undefined) throw new UsageError(`--filter runs on its own: ${options.file} is not needed (object files hold eBPF programs)`);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  if (options.pcap !== undefined && !options.dump) {
    const capture = readUserFile(options.pcap);
    const header = readCaptureHeader(capture, options.pcap);
    const filter = resolveFilter(options, linkTypeOption(options.linkType, header.linkType), true);
    filterCapture(filter.program, capture, options);
    return 0;
  }
  const filter = resolveFilter(options, linkTypeOption(options.linkType, LinkType.EN10MB), !options.dump);
  if (options.dump) {
    dumpFilter(filter, options);
    return 0;
  }
  return liveFilter(filter.program, options);
}

function dumpFilter(filter: ResolvedFilter, options: CliOptions): void {
  const ebpf = options.ebpf ? classicToEbpf(filter.program, filter.source) : undefined;
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

function summaryJson(summary: PacketSummary): Record<string, unknown> {
  const { text: _text, ...fields } = summary;
  return fields;
}

/** `--pcap`: every packet through the filter; prints the matches and a count. */
function filterCapture(program: ClassicProgram, capture: Uint8Array, options: CliOptions): void {
  const useKernel = options.engine === 'kernel' || !jsCompilable(program);
  let kernel: KernelClassicMatcher | undefined;
  const viaKernel = (p: CapturedPacket) => {
    kernel ??= new KernelClassicMatcher(program, { name: 'pcap_filter' });
    return kernel.match(p.data, `${options.pcap}: packet ${p.index} (${p.data.byteLength} bytes)`);
  };
  const js = useKernel ? undefined : compileClassicToJs(program, 'filter');
  const verdict = js === undefined ? viaKernel : (p: CapturedPacket) => {
    try {
      return js(p.data);
    } catch (e) {
      if (e instanceof KernelOnlyError) return viaKernel(p); // a load only the kernel can answer
      throw e;
    }
  };
  let packets = 0;
  let matched = 0;
  const lines: string[] = [];
  const flush = () => {
    if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
    lines.length = 0;
  };
  try {
    for (const p of readCapture(capture, options.pcap)) {
      packets++;
      const value = verdict(p);
      if (value === 0) continue;
      matched++;
      const summary = summarizePacket(p.data, p.linkType, p.length);
      const time = formatPacketTime(p.seconds, p.nanos);
      lines.push(options.json
        ? JSON.stringify({ index: p.index, time, seconds: p.seconds, nanos: p.nanos, length: p.length, captured: p.data.byteLength, ...summaryJson(summary), verdict: value })
        : `${p.index} ${time} ${summary.text}`);
      if (lines.length >= 512) flush();
      if (options.count !== undefined && matched >= options.count) break;
    }
  } finally {
    kernel?.close();
  }
  flush();
  const engine = useKernel ? 'kernel BPF_PROG_TEST_RUN' : 'compiled JavaScript';
  out(options.json ? JSON.stringify({ matched, packets, engine: useKernel ? 'kernel' : 'js' }) : `${matched} of ${packets} packets matched (${engine})`);
}

/** Attached to a packet socket: prints what passes until a signal or --count packets. */
async function liveFilter(program: ClassicProgram, options: CliOptions): Promise<number> {
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
