import type { LoadedProgram } from '../load/index.js';
import { rawTracepointOpen } from '../sys/index.js';
import { bpfLink, type Link } from './link.js';

/**
 * fentry/fexit/fmod_ret, tp_btf and lsm programs: the kernel already knows the target from the attach_btf_id given at
 * load, so BPF_RAW_TRACEPOINT_OPEN without a name attaches them. The returned fd is the link; closing it detaches.
 */
export function attachTracing(program: LoadedProgram): Link {
  const linkFd = rawTracepointOpen(null, program.fd);
  return bpfLink({
    kind: program.spec.attach,
    program: program.name,
    target: `${program.spec.expectedAttachType ?? program.type} ${program.spec.attachTarget}`,
  }, linkFd);
}
