import { withContext } from '../base/errors.js';
import type { LoadedProgram } from '../load/index.js';
import { rawTracepointOpen } from '../sys/index.js';
import { AttachError, checkSafeName, bpfLink, type Link } from './link.js';

/**
 * `raw_tracepoint/<name>` and `raw_tp/<name>`: BPF_RAW_TRACEPOINT_OPEN by name. No tracefs and no perf event: the
 * returned fd is the link, and closing it detaches.
 */
export function attachRawTracepoint(program: LoadedProgram): Link {
  const name = checkSafeName(program.spec.attachTarget, `${program.section}: raw tracepoint`);
  if (name.includes('/')) {
    throw new AttachError(withContext([program.section], `raw tracepoint ${JSON.stringify(name)}: must not contain "/"`));
  }
  const linkFd = rawTracepointOpen(name, program.fd);
  return bpfLink({ kind: 'raw_tracepoint', program: program.name, target: name }, linkFd);
}
