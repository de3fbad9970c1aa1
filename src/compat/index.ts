/**
 * samples/bpf/bpf_load.c's shape, so a port of a `*_user.c` reads the same:
 *
 *   if (loadBpfFile('sockex1_kern.o')) { console.log(bpfLogBuf.value); process.exit(1); }
 *   const sock = openRawSock('lo');
 *   attachSocketFilter(sock, progFd[0]);
 *   lookupElem(mapFd[0], IPPROTO_TCP) …
 *
 * Like bpf_load.c, loadBpfFile() loads every program and map and attaches the tracing kinds it attached itself
 * (kprobe/kretprobe, tracepoint, raw_tracepoint, perf_event); sockets, XDP and cgroups are the caller's to attach.
 * The arrays are module state, refilled by each loadBpfFile(); closeBpfFile() detaches and closes everything.
 */
import { BpfLoadError } from '../base/errors.js';
import { readUserFile } from '../base/file.js';
import { ELF_HEADER_CHECK } from '../elf/index.js';
import { attachProgram, type Link } from '../attach/index.js';
import { readTracePipe as streamTracePipe } from '../attach/tracefs.js';
import { loadObject, VerifierError, type LoadedObject, type MapFixup } from '../load/index.js';
import { parseObject, type MapSpec } from '../object/index.js';

/** bpf_load.c's struct bpf_map_data. */
export interface MapData {
  readonly fd: number;
  readonly name: string;
  /** Offset of the definition in its section (elf_offset). */
  readonly elfOffset: number;
  readonly def: Readonly<Pick<MapSpec, 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags' | 'innerMapIndex' | 'numaNode'>>;
}

/** Program fds in load order (prog_fd[]). */
export const progFd: number[] = [];
/** Map fds in map index order (map_fd[]). */
export const mapFd: number[] = [];
/** Map descriptions in map index order (map_data[]). */
export const mapData: MapData[] = [];
/** perf event fds opened by attaching tracing programs (event_fd[]). */
export const eventFd: number[] = [];
/** bpf_log_buf: the verifier log (or error) of the last failed loadBpfFile(). `.value` because strings are immutable. */
export const bpfLogBuf = { value: '' };
/** prog_cnt and map_data_count as getters over the arrays. */
export function progCnt(): number {
  return progFd.length;
}
export function mapDataCount(): number {
  return mapData.length;
}
/** The error behind a non-zero loadBpfFile(), for callers that want more than the log. */
export let lastError: BpfLoadError | undefined;

let current: LoadedObject | undefined;
/** The attachments loadBpfFile made: ours to detach before the object closes. */
let currentLinks: Link[] = [];

const BPF_LOAD_ATTACHES = new Set(['kprobe', 'kretprobe', 'tracepoint', 'raw_tracepoint', 'perf_event']);

/**
 * load_bpf_file(path) / load_bpf_file_fixup_map(path, fixup): 0 on success, 1 on failure with bpfLogBuf.value holding
 * the verifier log (or the error). A previous object is closed first.
 */
export function loadBpfFile(path: string, fixupMap?: (map: MapFixup, index: number) => void): number {
  closeBpfFile();
  bpfLogBuf.value = '';
  lastError = undefined;
  let object: LoadedObject | undefined;
  try {
    const spec = parseObject(readUserFile(path, { head: ELF_HEADER_CHECK }), { name: path });
    object = loadObject(spec, fixupMap === undefined ? {} : { fixupMap });
    const links: Link[] = (currentLinks = []);
    for (const p of object.programs) {
      if (BPF_LOAD_ATTACHES.has(p.spec.attach) && p.spec.tailCallSlot === undefined) links.push(attachProgram(object, p));
    }
    current = object;
    // One by one: an object's map count is the file's to choose, and spreading it into push() can overflow the stack.
    for (const p of object.programs) progFd.push(p.fd);
    for (const m of object.maps) {
      mapFd.push(m.fd);
      mapData.push({
        fd: m.fd, name: m.name, elfOffset: m.spec.offset,
        def: { type: m.spec.type, keySize: m.spec.keySize, valueSize: m.spec.valueSize, maxEntries: m.spec.maxEntries, flags: m.spec.flags, innerMapIndex: m.spec.innerMapIndex, numaNode: m.spec.numaNode },
      });
    }
    for (const l of links) if ('fds' in l) eventFd.push(...(l as Link & { fds: readonly number[] }).fds);
    return 0;
  } catch (e) {
    detachAll();
    object?.close();
    if (!(e instanceof BpfLoadError)) throw e;
    lastError = e;
    bpfLogBuf.value = e instanceof VerifierError ? e.log : `${e.message}\n`;
    return 1;
  }
}

/** Detaches and closes everything the last loadBpfFile() created, and empties the arrays. */
export function closeBpfFile(): void {
  const object = current;
  current = undefined;
  detachAll();
  for (const a of [progFd, mapFd, mapData, eventFd]) a.length = 0;
  object?.close();
}

function detachAll(): void {
  for (const link of currentLinks.splice(0).reverse()) link.detach();
}

/** The LoadedObject behind the arrays, for code that outgrows the C shape. */
export function loadedObject(): LoadedObject | undefined {
  return current;
}

/**
 * read_trace_pipe(): streams trace_pipe lines to `onLine` (stdout by default) until `signal` aborts (bpf_load.c's
 * version never returned). Mounts tracefs when it is absent.
 */
export async function readTracePipe(onLine: (line: string) => void = (l) => process.stdout.write(`${l}\n`), signal?: AbortSignal): Promise<void> {
  for await (const line of streamTracePipe(signal === undefined ? {} : { signal })) onLine(line);
}

export { openRawSocket as openRawSock, attachSocketFilter, detachSocketFilter } from '../sys/index.js';
export {
  mapLookupElem as bpfMapLookupElem, mapUpdateElem as bpfMapUpdateElem, mapDeleteElem as bpfMapDeleteElem,
  mapGetNextKey as bpfMapGetNextKey,
} from '../sys/index.js';
