import { withContext } from '../base/errors.js';
import type { LoadedProgram } from '../load/index.js';
import { PerfSample, PerfType, type PerfEventAttr } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, onceLink } from './link.js';
import { openPerfEventWithProgram, type PerfLink } from './perf-event.js';
import { tracefsRoot, tracepointId } from './tracefs.js';

/** perf_event_attr of a tracepoint (or tracefs kprobe) event, as bpf_load.c opened it: every hit is a sample. */
export function tracepointEventAttr(id: number): PerfEventAttr {
  return { type: PerfType.TRACEPOINT, config: id, samplePeriod: 1, wakeupEvents: 1, sampleType: PerfSample.RAW };
}

/**
 * `tracepoint/<category>/<name>` and `tp/<category>/<name>`: the tracepoint's id from tracefs, a perf event on it
 * (pid -1, cpu 0: tracepoint programs run on every CPU regardless), and the program on that event.
 */
export function attachTracepoint(program: LoadedProgram, options: AttachOptions): PerfLink {
  const target = checkSafeName(program.spec.attachTarget, `${program.section}: tracepoint`);
  const parts = target.split('/');
  const [category, name] = parts;
  if (parts.length !== 2 || category === undefined || name === undefined) {
    throw new AttachError(withContext([program.section], `tracepoint ${JSON.stringify(target)} is not <category>/<name>`));
  }
  const id = tracepointId(tracefsRoot(options), category, name);
  const event = openPerfEventWithProgram({ attr: tracepointEventAttr(id), pid: -1, cpu: 0, progFd: program.fd });
  return onceLink({
    kind: 'tracepoint',
    program: program.name,
    target: `${category}/${name}`,
    fds: [event.fd],
  }, () => {
    event.close();
  });
}
