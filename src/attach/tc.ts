import { attachTypeValue } from '../base/uapi.js';
import type { LoadedProgram } from '../load/index.js';
import { Errno, ifNameToIndex, linkCreate, SysError } from '../sys/index.js';
import { AttachError, checkSafeName, type AttachOptions, bpfLink, type Link } from './link.js';
import { attachTcClassic } from './tc-classic.js';

/**
 * tc programs (`tc`, `classifier`, `tc/ingress|egress`, `tcx/ingress|egress`): a tcx BPF link on the interface
 * (kernel 6.6+), appended after whatever runs there already, so other users' programs stay. Sections that do not
 * say a direction go on ingress. Closing the link detaches. `tcMode` 'classic' uses a clsact qdisc and a cls_bpf
 * filter instead; 'auto' (the default) does so only when the kernel has no tcx.
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
  const mode = options.tcMode ?? 'auto';
  const direction = attachType === 'tcx_egress' ? 'egress' : 'ingress';
  if (mode === 'classic') return attachTcClassic(program, iface, direction);
  let linkFd: number;
  try {
    linkFd = linkCreate({ progFd: program.fd, targetIfindex: ifNameToIndex(iface), attachType: attachTypeValue(attachType) });
  } catch (e) {
    // Kernels before 6.6 do not know the tcx attach types.
    if (mode === 'auto' && e instanceof SysError && e.errno === Errno.EINVAL) return attachTcClassic(program, iface, direction);
    throw e;
  }
  return bpfLink({ kind: 'tc', program: program.name, target: `${iface} (${direction})` }, linkFd);
}
