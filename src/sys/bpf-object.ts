/** bpf(2) object commands: pinning, ids, and the info of programs, maps and links. */
import { readFileSync } from 'node:fs';
import { ByteReader, decodeName, toHex } from '../base/cursor.js';
import { progTypeName, mapTypeName, attachTypeName } from '../base/uapi.js';
import { Errno, SysArgumentError } from './errors.js';
import { AttrWriter, cString } from './ffi.js';
import { BPF_ATTR, BPF_PROG_INFO, BPF_MAP_INFO, BPF_LINK_INFO, BPF_OBJ_NAME_LEN, BPF_TAG_SIZE, NONE_TOLERATED, bpfCall, linkTypeName } from './bpf.js';

/** BPF_OBJ_PIN: pin a map/program/link fd at `path` inside a bpffs mount. */
export function objPin(fd: number, path: string): void {
  const L = BPF_ATTR.obj;
  bpfCall('OBJ_PIN', new AttrWriter(L.size).pointer(L.pathname, cString(path, 'pin path')).u32(L.bpf_fd, fd), NONE_TOLERATED, path);
}

/** BPF_OBJ_GET: a new fd for the object pinned at `path`; fileFlags from FileFlags. */
export function objGet(path: string, fileFlags = 0): number {
  const L = BPF_ATTR.obj;
  const w = new AttrWriter(L.size).pointer(L.pathname, cString(path, 'pin path')).u32(L.file_flags, fileFlags);
  return bpfCall('OBJ_GET', w, NONE_TOLERATED, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Ids and info

type IdKind = 'PROG' | 'MAP' | 'LINK';

function getNextId(kind: IdKind, startId: number): number | undefined {
  const L = BPF_ATTR.getId;
  const w = new AttrWriter(L.size).u32(L.start_id, startId);
  const ret = bpfCall(`${kind}_GET_NEXT_ID`, w, [Errno.ENOENT]);
  return ret < 0 ? undefined : w.readU32(L.next_id);
}

function getFdById(kind: IdKind, id: number, openFlags: number): number {
  const L = BPF_ATTR.getId;
  return bpfCall(`${kind}_GET_FD_BY_ID`, new AttrWriter(L.size).u32(L.start_id, id).u32(L.open_flags, openFlags), NONE_TOLERATED, `id ${id}`);
}

/** Next id after `startId` (0 for the first), or undefined after the last. */
export function progGetNextId(startId: number): number | undefined {
  return getNextId('PROG', startId);
}
export function mapGetNextId(startId: number): number | undefined {
  return getNextId('MAP', startId);
}
export function linkGetNextId(startId: number): number | undefined {
  return getNextId('LINK', startId);
}
export function progGetFdById(id: number): number {
  return getFdById('PROG', id, 0);
}
export function mapGetFdById(id: number, openFlags = 0): number {
  return getFdById('MAP', id, openFlags);
}
export function linkGetFdById(id: number): number {
  return getFdById('LINK', id, 0);
}

/**
 * BPF_OBJ_GET_INFO_BY_FD into `info` (which may carry input pointers/lengths, e.g. map_ids). Returns info_len as
 * written back by the kernel: how much of `info` this kernel filled.
 */
export function objGetInfoByFd(fd: number, info: AttrWriter): number {
  const L = BPF_ATTR.info;
  const w = new AttrWriter(L.size).u32(L.bpf_fd, fd).u32(L.info_len, info.bytes.byteLength).pointer(L.info, info.bytes);
  try {
    bpfCall('OBJ_GET_INFO_BY_FD', w, NONE_TOLERATED, `fd ${fd}`);
  } finally {
    info.release();
  }
  return w.readU32(L.info_len);
}

export interface ProgInfo {
  readonly type: number;
  readonly typeName: string;
  readonly id: number;
  /** The kernel's program tag (SHA of the instructions), 16 lower-case hex digits. */
  readonly tag: string;
  readonly jitedProgLen: number;
  readonly xlatedProgLen: number;
  /** ns since boot. */
  readonly loadTime: bigint;
  readonly createdByUid: number;
  readonly mapIds: readonly number[];
  readonly name: string;
  readonly ifindex: number;
  readonly gplCompatible: boolean;
  readonly btfId: number;
  readonly nrFuncInfo: number;
  readonly nrLineInfo: number;
  readonly runTimeNs: bigint;
  readonly runCnt: bigint;
  readonly verifiedInsns: number;
  readonly attachBtfObjId: number;
  readonly attachBtfId: number;
}

export interface MapInfo {
  readonly type: number;
  readonly typeName: string;
  readonly id: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags: number;
  readonly name: string;
  readonly ifindex: number;
  readonly btfVmlinuxValueTypeId: number;
  readonly btfId: number;
  readonly btfKeyTypeId: number;
  readonly btfValueTypeId: number;
  readonly mapExtra: bigint;
}

export interface LinkInfo {
  readonly type: number;
  readonly typeName: string;
  readonly id: number;
  readonly progId: number;
  /** raw_tracepoint links: the tracepoint name. */
  readonly tpName?: string;
  /** cgroup, tracing and netns links. */
  readonly attachType?: number;
  readonly attachTypeName?: string;
  readonly cgroupId?: bigint;
  readonly ifindex?: number;
  readonly netnsIno?: number;
  readonly targetObjId?: number;
  readonly targetBtfId?: number;
}

function infoReader(bytes: Uint8Array, what: string): ByteReader {
  return new ByteReader(bytes, true, (field, offset, size, limit) =>
    new SysArgumentError(`${what}: ${field} at ${offset}+${size} lies outside the ${limit} B info`));
}

/** Reads a fixed char[16] name field. */
function fixedName(r: ByteReader, offset: number): string {
  const raw = r.sub(offset, BPF_OBJ_NAME_LEN, 'name');
  const end = raw.indexOf(0);
  return decodeName(end < 0 ? raw : raw.subarray(0, end));
}

/** Decodes struct bpf_prog_info; `mapIds` are read by progInfo() through a second call. */
export function parseProgInfo(bytes: Uint8Array, mapIds: readonly number[] = []): ProgInfo {
  const I = BPF_PROG_INFO;
  const r = infoReader(bytes, 'bpf_prog_info');
  const type = r.u32(I.type);
  return {
    type,
    typeName: progTypeName(type),
    id: r.u32(I.id),
    tag: toHex(r.sub(I.tag, BPF_TAG_SIZE, 'tag')),
    jitedProgLen: r.u32(I.jited_prog_len),
    xlatedProgLen: r.u32(I.xlated_prog_len),
    loadTime: r.u64(I.load_time),
    createdByUid: r.u32(I.created_by_uid),
    mapIds,
    name: fixedName(r, I.name),
    ifindex: r.u32(I.ifindex),
    gplCompatible: (r.u32(I.gpl_compatible_word) & 1) === 1,
    btfId: r.u32(I.btf_id),
    nrFuncInfo: r.u32(I.nr_func_info),
    nrLineInfo: r.u32(I.nr_line_info),
    runTimeNs: r.u64(I.run_time_ns),
    runCnt: r.u64(I.run_cnt),
    verifiedInsns: r.u32(I.verified_insns),
    attachBtfObjId: r.u32(I.attach_btf_obj_id),
    attachBtfId: r.u32(I.attach_btf_id),
  };
}

export function parseMapInfo(bytes: Uint8Array): MapInfo {
  const I = BPF_MAP_INFO;
  const r = infoReader(bytes, 'bpf_map_info');
  const type = r.u32(I.type);
  return {
    type,
    typeName: mapTypeName(type),
    id: r.u32(I.id),
    keySize: r.u32(I.key_size),
    valueSize: r.u32(I.value_size),
    maxEntries: r.u32(I.max_entries),
    mapFlags: r.u32(I.map_flags),
    name: fixedName(r, I.name),
    ifindex: r.u32(I.ifindex),
    btfVmlinuxValueTypeId: r.u32(I.btf_vmlinux_value_type_id),
    btfId: r.u32(I.btf_id),
    btfKeyTypeId: r.u32(I.btf_key_type_id),
    btfValueTypeId: r.u32(I.btf_value_type_id),
    mapExtra: r.u64(I.map_extra),
  };
}

/** Decodes struct bpf_link_info: the common head plus the union member of the simple link types. */
export function parseLinkInfo(bytes: Uint8Array, tpName?: string): LinkInfo {
  const I = BPF_LINK_INFO;
  const r = infoReader(bytes, 'bpf_link_info');
  const type = r.u32(I.type);
  const head = { type, typeName: linkTypeName(type), id: r.u32(I.id), progId: r.u32(I.prog_id) };
  const withAttach = (attachType: number) => ({ attachType, attachTypeName: attachTypeName(attachType) });
  switch (linkTypeName(type)) {
    case 'raw_tracepoint':
      return tpName === undefined ? head : { ...head, tpName };
    case 'tracing':
      return {
        ...head, ...withAttach(r.u32(I['tracing.attach_type'])),
        targetObjId: r.u32(I['tracing.target_obj_id']), targetBtfId: r.u32(I['tracing.target_btf_id']),
      };
    case 'cgroup':
      return { ...head, ...withAttach(r.u32(I['cgroup.attach_type'])), cgroupId: r.u64(I['cgroup.cgroup_id']) };
    case 'netns':
      return { ...head, ...withAttach(r.u32(I['netns.attach_type'])), netnsIno: r.u32(I['netns.netns_ino']) };
    case 'xdp':
      return { ...head, ifindex: r.u32(I['xdp.ifindex']) };
    default:
      return head;
  }
}

/** Program info, with the ids of the maps it uses. */
export function progInfo(fd: number): ProgInfo {
  const I = BPF_PROG_INFO;
  const info = new AttrWriter(I.size);
  objGetInfoByFd(fd, info);
  const nrMapIds = info.readU32(I.nr_map_ids);
  if (nrMapIds === 0) return parseProgInfo(info.bytes);
  // Second call with room for the ids; every other pointer field stays 0 so the kernel fills nothing else.
  const ids = new Uint32Array(nrMapIds);
  const again = new AttrWriter(I.size).u32(I.nr_map_ids, nrMapIds).pointer(I.map_ids, new Uint8Array(ids.buffer));
  objGetInfoByFd(fd, again);
  const filled = Math.min(nrMapIds, again.readU32(I.nr_map_ids));
  return parseProgInfo(again.bytes, Array.from(ids.subarray(0, filled)));
}

export function mapInfo(fd: number): MapInfo {
  const info = new AttrWriter(BPF_MAP_INFO.size);
  objGetInfoByFd(fd, info);
  return parseMapInfo(info.bytes);
}

const TP_NAME_MAX = 256;

export function linkInfo(fd: number): LinkInfo {
  const I = BPF_LINK_INFO;
  const info = new AttrWriter(I.size);
  objGetInfoByFd(fd, info);
  if (linkTypeName(info.readU32(I.type)) !== 'raw_tracepoint') return parseLinkInfo(info.bytes);
  // The name needs a buffer, and the union slots mean other things for other link types: ask again, knowing the type.
  const name = Buffer.alloc(TP_NAME_MAX);
  const again = new AttrWriter(I.size).pointer(I['raw_tracepoint.tp_name'], name).u32(I['raw_tracepoint.tp_name_len'], name.byteLength);
  objGetInfoByFd(fd, again);
  const end = name.indexOf(0);
  return parseLinkInfo(again.bytes, decodeName(name.subarray(0, end < 0 ? name.byteLength : end)));
}

/** What a bpf fd refers to, from /proc/self/fdinfo (the only place the kernel says): undefined for other fds. */
export function bpfObjectKind(fd: number): 'map' | 'prog' | 'link' | 'btf' | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return undefined;
  }
  if (/^link_type:/m.test(text)) return 'link';
  if (/^prog_type:/m.test(text)) return 'prog';
  if (/^map_type:/m.test(text)) return 'map';
  if (/^btf_id:/m.test(text)) return 'btf';
  return undefined;
}
