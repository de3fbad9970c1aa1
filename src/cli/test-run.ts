import { withContext } from '../base/errors.js';
import { toHex } from '../base/cursor.js';
import { readUserFile } from '../base/file.js';
import { LoadError, loadObject, returnValueName, TestRunError } from '../load/index.js';
import { parseObject } from '../object/index.js';
import type { CliOptions } from './args.js';

/** Program types whose test run takes a packet: without --data-in they get a zeroed minimum-size Ethernet frame. */
const PACKET_TYPES: ReadonlySet<string> = new Set([
  'socket_filter', 'sched_cls', 'sched_act', 'xdp', 'cgroup_skb', 'lwt_in', 'lwt_out', 'lwt_xmit', 'lwt_seg6local', 'flow_dissector',
]);
const DEFAULT_FRAME_BYTES = 64;

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
  const object = loadObject(spec, { onProgramError: 'skip', onWarning: () => {}, pinRoot: options.pinRoot });
  try {
    const skipped = object.skipped.find((s) => s.spec.name === name || s.spec.section === name);
    if (skipped !== undefined) {
      throw new LoadError(withContext([file, `program ${skipped.spec.name}`], skipped.reason), skipped.error === undefined ? undefined : { cause: skipped.error });
    }
    const program = object.program(name);
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
  }
}
