import { withContext } from '../base/errors.js';
import { toHex } from '../base/cursor.js';
import { readUserFile } from '../base/file.js';
import { LoadError, type LoadedProgram, loadObject, returnValueName, TestRunError } from '../load/index.js';
import { parseObject } from '../object/index.js';
import { type CaptureCursor, formatPacketTime, summarizePacket } from '../pcap/index.js';
import type { CliOptions } from './args.js';
import { capturedPacketJson, openCapture } from './filter.js';

/** Program types whose test run takes a packet: without --data-in they get a zeroed minimum-size Ethernet frame. */
const PACKET_TYPES: ReadonlySet<string> = new Set([
  'socket_filter', 'sched_cls', 'sched_act', 'xdp', 'cgroup_skb', 'lwt_in', 'lwt_out', 'lwt_xmit', 'lwt_seg6local', 'flow_dissector',
]);
const DEFAULT_FRAME_BYTES = 64;
/** enum bpf_ret_code, what lwt and flow dissector programs return. */
const BPF_RET_CODES: Readonly<Record<number, string>> = { 0: 'BPF_OK', 2: 'BPF_DROP', 7: 'BPF_REDIRECT', 128: 'BPF_LWT_REROUTE' };

/** What a packet program's return value means for its type: the action's name (`keep`/`drop` for socket filters). */
export function verdictName(type: string, retval: number): string {
  const named = returnValueName(type, retval); // XDP and tc actions
  if (named !== undefined) return named;
  switch (type) {
    case 'xdp': return `invalid XDP action ${retval}`;
    case 'sched_cls':
    case 'sched_act': return `TC action ${retval}`;
    case 'socket_filter': return retval === 0 ? 'drop' : 'keep';
    // Bit 0 allows; egress programs may set bit 1 for congestion notification.
    case 'cgroup_skb': return (retval & 1) === 1 ? 'allow' : 'drop';
    default: return BPF_RET_CODES[retval] ?? `return code ${retval}`;
  }
}

/**
 * `bpf-load FILE --test-run PROGRAM [--data-in FILE] [--repeat N] [--json]`: loads every program (attaching none),
 * runs PROGRAM with BPF_PROG_TEST_RUN, prints the return value, the kernel's mean duration and the packet after the
 * run, then closes everything. Programs of the object that fail to load are skipped unless PROGRAM is one of them.
 */
export function runTestRun(options: CliOptions): number {
  const file = options.file!;
  const name = options.testRun!;
  const data = options.dataIn === undefined ? undefined : readUserFile(options.dataIn);
  const spec = parseObject(readUserFile(file), { name: file });
  // The capture's header is checked before anything is loaded.
  const capture = options.pcap === undefined ? undefined : openCapture(options.pcap);
  let object: ReturnType<typeof loadObject>;
  try {
    object = loadObject(spec, { onProgramError: 'skip', onWarning: () => {}, pinRoot: options.pinRoot });
  } catch (e) {
    capture?.close();
    throw e;
  }
  try {
    const skipped = object.skipped.find((s) => s.spec.name === name || s.spec.section === name);
    if (skipped !== undefined) {
      throw new LoadError(withContext([file, `program ${skipped.spec.name}`], skipped.reason), skipped.error === undefined ? undefined : { cause: skipped.error });
    }
    const program = object.program(name);
    if (capture !== undefined) return testRunCapture(program, capture.cursor, options);
    const input = data ?? (PACKET_TYPES.has(program.type) ? Buffer.alloc(DEFAULT_FRAME_BYTES) : undefined);
    const result = program.testRun({ repeat: options.repeat, ...(input === undefined ? {} : { data: input }) });
    const action = returnValueName(program.type, result.retval);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({
        program: program.name, type: program.type, retval: result.retval, ...(action === undefined ? {} : { action }),
        repeat: options.repeat, durationNs: result.durationNs, dataOut: toHex(result.data),
      })}\n`);
    } else {
      const source = data !== undefined ? `${options.dataIn} (${data.byteLength} B)` : input !== undefined ? `${input.byteLength} zero bytes (no --data-in)` : 'none';
      process.stdout.write([
        `test run of ${program.name} (${program.type}, section ${program.section})`,
        `  data in   ${source}`,
        `  retval    ${result.retval}${action === undefined ? '' : ` (${action})`}`,
        `  duration  ${result.durationNs} ns per run, mean of ${options.repeat} run(s)`,
        `  data out  ${result.data.byteLength} B${result.data.byteLength === 0 ? '' : `: ${toHex(result.data)}`}`,
      ].join('\n') + '\n');
    }
    return 0;
  } catch (e) {
    if (e instanceof TestRunError) throw new TestRunError(withContext([file], e.message), { cause: e });
    throw e;
  } finally {
    object.close();
    capture?.close();
  }
}

/** The kernel's test run takes Ethernet frames: it sets the skb's protocol from bytes 12-13 (eth_type_trans). */
const ETHERNET = 1;

/**
 * `--test-run PROG --pcap CAPTURE`: every packet of the capture through PROG with BPF_PROG_TEST_RUN; one line per
 * packet (its 1-based index, time, summary, return value and what it means), then the count per verdict.
 */
function testRunCapture(program: LoadedProgram, cursor: CaptureCursor, options: CliOptions): number {
  if (!PACKET_TYPES.has(program.type)) {
    throw new TestRunError(withContext([`program ${program.name}`], `${program.type} programs do not take packets: --pcap runs ${[...PACKET_TYPES].join(', ')} programs`));
  }
  const counts = new Map<string, number>();
  let packets = 0;
  let pending = '';
  const flush = () => {
    process.stdout.write(pending);
    pending = '';
  };
  // The lines of the packets before a failing one are printed before its error.
  try {
    while (cursor.next()) {
      const detail = [options.pcap, `packet ${cursor.index}`];
      if (cursor.linkType !== ETHERNET) {
        throw new TestRunError(withContext(detail, `link type ${cursor.linkType}, but BPF_PROG_TEST_RUN takes Ethernet frames (link type 1)`));
      }
      let retval: number;
      try {
        retval = program.testRun({ data: cursor.data() }).retval;
      } catch (e) {
        if (e instanceof TestRunError) throw new TestRunError(withContext(detail, e.message), { cause: e });
        throw e;
      }
      packets++;
      const verdict = verdictName(program.type, retval);
      counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
      const summary = summarizePacket(cursor.data(), cursor.linkType, cursor.length);
      const time = formatPacketTime(cursor.seconds, cursor.nanos);
      const meaning = program.type === 'socket_filter' && retval !== 0 ? `keep ${retval} bytes` : `${verdict} (${retval})`;
      pending += options.json
        ? `${JSON.stringify({ ...capturedPacketJson(cursor, summary, time), retval, verdict })}\n`
        : `${cursor.index} ${time} ${summary.text} → ${meaning}\n`;
      if (pending.length >= 1 << 16) flush();
    }
  } finally {
    flush();
  }
  const tally = [...counts].sort((a, b) => b[1] - a[1]);
  pending += options.json
    ? `${JSON.stringify({ program: program.name, type: program.type, packets, verdicts: Object.fromEntries(tally) })}\n`
    : `${packets} packets through ${program.name} (${program.type}): ${tally.map(([v, n]) => `${n} ${v}`).join(', ') || 'none'}\n`;
  process.stdout.write(pending);
  return 0;
}
