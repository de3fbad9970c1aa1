/**
 * sk_skb and sk_msg programs: attached to a sockmap or sockhash (BPF_PROG_ATTACH with the map as target), they run on
 * the sockets in that map. The attachment lives as long as the map, so closing the object releases it too.
 */
import { withContext } from '../base/errors.js';
import { attachTypeValue, type AttachTypeName } from '../base/uapi.js';
import type { LoadedObject, LoadedProgram, MapHandle } from '../load/index.js';
import { progAttach, progDetach, progQuery, SysError } from '../sys/index.js';
import { AttachError, type Link, onceLink } from './link.js';

const SOCK_MAP_TYPES: ReadonlySet<string> = new Set(['sockmap', 'sockhash']);

/**
 * The attach type of an sk_skb / sk_msg program: the section table's, else guessed from a bpf_load.c-style name
 * (`sk_skb_parser`, `sk_skb/my_verdict`). A bare `sk_skb` section cannot say which hook it is.
 */
export function sockmapAttachType(program: LoadedProgram): AttachTypeName {
  const fromSection = program.spec.attachType;
  if (fromSection !== undefined) return fromSection;
  if (program.type === 'sk_skb') {
    const rest = program.section.slice('sk_skb'.length);
    if (rest.includes('parser')) return 'sk_skb_stream_parser';
    if (rest.includes('verdict')) return 'sk_skb_stream_verdict';
    throw new AttachError(`program ${program.name} (section ${program.section}): an sk_skb program is either a stream parser ` +
      'or a verdict program and the section name does not say which; name the section sk_skb/stream_parser, ' +
      'sk_skb/stream_verdict or sk_skb/verdict');
  }
  if (program.type === 'sk_msg') return 'sk_msg_verdict';
  throw new AttachError(`program ${program.name} (section ${program.section}): ${program.type} programs are not attached to a sockmap`);
}

/**
 * The sockmap / sockhash the program belongs to: the one it uses, or the object's only one. Anything else is
 * ambiguous and an AttachError listing the candidates.
 */
export function findSockMap(program: LoadedProgram, object: LoadedObject): MapHandle {
  const where = `program ${program.name} (section ${program.section})`;
  const sockMaps = object.maps.filter((m) => SOCK_MAP_TYPES.has(m.type));
  const used = sockMaps.filter((m) => program.info.mapIds.includes(m.id));
  const names = (maps: readonly MapHandle[]) => maps.map((m) => `${m.name} (${m.type}, id ${m.id})`).join(', ');
  if (used.length === 1) return used[0]!;
  if (used.length > 1) {
    throw new AttachError(`${where}: the program uses several sockmaps/sockhashes (${names(used)}); attach it to one of them yourself`);
  }
  if (sockMaps.length === 1) return sockMaps[0]!;
  if (sockMaps.length === 0) throw new AttachError(`${where}: the object has no sockmap or sockhash to attach the program to`);
  throw new AttachError(`${where}: the program uses no sockmap/sockhash and the object has several (${names(sockMaps)}); attach it to one of them yourself`);
}

/** Attaches an sk_skb / sk_msg program to its sockmap. A different program already on that hook is not displaced. */
export function attachSockmap(program: LoadedProgram, object: LoadedObject): Link {
  const where = `program ${program.name} (section ${program.section})`;
  const typeName = sockmapAttachType(program);
  const attachType = attachTypeValue(typeName);
  const map = findSockMap(program, object);
  const target = `map ${map.name} (${typeName})`;

  // PROG_ATTACH on a sockmap silently replaces the hook's program; a map shared through a fixup may carry someone
  // else's. PROG_QUERY on sockmaps is 6.0+: older kernels just skip the check.
  let present: readonly number[] = [];
  try {
    present = progQuery({ targetFd: map.fd, attachType }).progIds;
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
  }
  if (present.includes(program.id)) throw new AttachError(withContext([where, target], 'this program is already attached there'));
  if (present.length > 0) {
    throw new AttachError(withContext([where, target], `program id ${present.join(', ')} is already attached there; detach it first`));
  }
  try {
    progAttach({ targetFd: map.fd, attachBpfFd: program.fd, attachType });
  } catch (e) {
    if (e instanceof SysError) throw new AttachError(withContext([where, target], e.message), { cause: e });
    throw e;
  }
  return onceLink({
    kind: 'sockmap',
    program: program.name,
    target,
  }, () => {
    progDetach({ targetFd: map.fd, attachType, attachBpfFd: program.fd });
  });
}
