import { attachTypeValue } from '../base/uapi.js';
import type { LoadedProgram } from '../load/index.js';
import { ifNameToIndex, linkCreate } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, bpfLink, type Link } from './link.js';

/**
 * tc programs (`tc`, `classifier`, `tc/ingress|egress`, `tcx/ingress|egress`): a tcx BPF link on the interface
 * (kernel 6.6+), appended after whatever runs there already, so other users' programs stay. Sections that do not
 * say a direction go on ingress. Closing the link detaches.
 */
export function attachTc(program: LoadedProgram, options: AttachOptions): Link {
  if (program.type !== 'sched_cls') {
    throw new AttachError(`${program.section}: ${program.type} programs run from tc filters' actions; attaching them is not supported yet`);
  }
  const attachType = program.spec.attachType ?? (program.spec.attachTarget === 'egress' ? 'tcx_egress' : 'tcx_ingress');
  if (attachType !== 'tcx_ingress' && attachType !== 'tcx_egress') {
    throw new AttachError(`${program.section}: ${attachType} programs attach to a netkit device; not supported yet`);
  }
  const iface = checkSafeName(options.iface ?? 'lo', `${program.section}: interface`);
  const linkFd = linkCreate({ progFd: program.fd, targetIfindex: ifNameToIndex(iface), attachType: attachTypeValue(attachType) });
  return bpfLink({ kind: 'tc', program: program.name, target: `${iface} (${attachType === 'tcx_egress' ? 'egress' : 'ingress'})` }, linkFd);
}
