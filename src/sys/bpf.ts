/**
 * bpf(2): one entry point (bpfCall) and a typed wrapper per command. Each wrapper writes the command's member of
 * `union bpf_attr` (include/uapi/linux/bpf.h) into a zeroed buffer. The size handed to the kernel is the end of the
 * last field we know: the kernel accepts a shorter attr and treats the missing tail as zero, and rejects a longer one
 * only when bytes it does not know are non-zero, so the same encoding works from 4.x to today's kernels.
 *
 * Every fd a wrapper returns belongs to the caller: close it with closeFd().
 */
import { ByteReader, decodeName, toHex } from '../base/cursor.js';
import { progTypeName, mapTypeName, attachTypeName } from '../base/uapi.js';
import { Errno, SysArgumentError, SysError } from './errors.js';
import { AttrWriter, bufferAddress, cString, rawBpf, rawClose } from './ffi.js';

/** enum bpf_cmd. */
export const BpfCommand = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_ATTACH: 8,
  PROG_DETACH: 9,
  PROG_TEST_RUN: 10,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  RAW_TRACEPOINT_OPEN: 17,
  BTF_LOAD: 18,
  BTF_GET_FD_BY_ID: 19,
  TASK_FD_QUERY: 20,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_FREEZE: 22,
  BTF_GET_NEXT_ID: 23,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
  LINK_UPDATE: 29,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  ENABLE_STATS: 32,
  ITER_CREATE: 33,
  LINK_DETACH: 34,
  PROG_BIND_MAP: 35,
} as const;
export type BpfCommandName = keyof typeof BpfCommand;

/** Flags of BPF_MAP_UPDATE_ELEM. */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

/** file_flags of BPF_OBJ_GET and open_flags of *_GET_FD_BY_ID (BPF_F_RDONLY / BPF_F_WRONLY). */
export const FileFlags = { RDONLY: 1 << 3, WRONLY: 1 << 4 } as const;

/** BPF_F_* flags of BPF_PROG_ATTACH (cgroup programs) and BPF_PROG_QUERY. */
export const AttachFlags = { ALLOW_OVERRIDE: 1, ALLOW_MULTI: 2, REPLACE: 4 } as const;
export const QueryFlags = { EFFECTIVE: 1 } as const;

/** enum bpf_link_type, indexed by value. */
export const LINK_TYPE_NAMES = [
  'unspec', 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event', 'kprobe_multi',
  'struct_ops', 'netfilter', 'tcx', 'uprobe_multi', 'netkit', 'sockmap',
] as const;
export function linkTypeName(value: number): string {
  return LINK_TYPE_NAMES[value] ?? `unknown(${value})`;
}

export const BPF_OBJ_NAME_LEN = 16;
export const BPF_TAG_SIZE = 8;

/**
 * Byte offsets inside union bpf_attr, one group per command member, keys spelled as the kernel's C designators
 * (test/sys compares every entry against offsetof() from the installed uapi header). `size` is the end of the
 * group's last field: the attr size passed to bpf(2).
 */
export const BPF_ATTR = {
  mapCreate: {
    size: 72, map_type: 0, key_size: 4, value_size: 8, max_entries: 12, map_flags: 16, inner_map_fd: 20,
    numa_node: 24, map_name: 28, map_ifindex: 44, btf_fd: 48, btf_key_type_id: 52, btf_value_type_id: 56,
    btf_vmlinux_value_type_id: 60, map_extra: 64,
  },
  mapElem: { size: 32, map_fd: 0, key: 8, value: 16, next_key: 16, flags: 24 },
  mapBatch: {
    size: 56, in_batch: 0, out_batch: 8, keys: 16, values: 24, count: 32, map_fd: 36, elem_flags: 40, flags: 48,
  },
  progLoad: {
    size: 128, prog_type: 0, insn_cnt: 4, insns: 8, license: 16, log_level: 24, log_size: 28, log_buf: 32,
    kern_version: 40, prog_flags: 44, prog_name: 48, prog_ifindex: 64, expected_attach_type: 68, prog_btf_fd: 72,
    func_info_rec_size: 76, func_info: 80, func_info_cnt: 88, line_info_rec_size: 92, line_info: 96,
    line_info_cnt: 104, attach_btf_id: 108, attach_prog_fd: 112, attach_btf_obj_fd: 112, fd_array: 120,
  },
  obj: { size: 16, pathname: 0, bpf_fd: 8, file_flags: 12 },
  progAttach: { size: 20, target_fd: 0, attach_bpf_fd: 4, attach_type: 8, attach_flags: 12, replace_bpf_fd: 16 },
  getId: { size: 12, start_id: 0, prog_id: 0, map_id: 0, link_id: 0, next_id: 4, open_flags: 8 },
  info: { size: 16, bpf_fd: 0, info_len: 4, info: 8 },
  query: {
    size: 40, target_fd: 0, attach_type: 4, query_flags: 8, attach_flags: 12, prog_ids: 16, prog_cnt: 24,
    prog_attach_flags: 32,
  },
  rawTracepoint: { size: 12, name: 0, prog_fd: 8 },
  btfLoad: { size: 28, btf: 0, btf_log_buf: 8, btf_size: 16, btf_log_size: 20, btf_log_level: 24 },
  linkCreate: {
    size: 24, prog_fd: 0, target_fd: 4, target_ifindex: 4, attach_type: 8, flags: 12, target_btf_id: 16,
    'perf_event.bpf_cookie': 16,
  },
  linkDetach: { size: 4, link_fd: 0 },
  testRun: {
    size: 76, prog_fd: 0, retval: 4, data_size_in: 8, data_size_out: 12, data_in: 16, data_out: 24, repeat: 32,
    duration: 36, ctx_size_in: 40, ctx_size_out: 44, ctx_in: 48, ctx_out: 56, flags: 64, cpu: 68, batch_size: 72,
  },
} as const;

/** Offsets in struct bpf_prog_info / bpf_map_info / bpf_link_info; `size` is sizeof() in the 6.1 uapi header. */
export const BPF_PROG_INFO = {
  size: 232, type: 0, id: 4, tag: 8, jited_prog_len: 16, xlated_prog_len: 20, jited_prog_insns: 24,
  xlated_prog_insns: 32, load_time: 40, created_by_uid: 48, nr_map_ids: 52, map_ids: 56, name: 64, ifindex: 80,
  // gpl_compatible is bit 0 of the u32 bitfield word right after ifindex (little-endian bit order).
  gpl_compatible_word: 84, netns_dev: 88, netns_ino: 96, btf_id: 128, nr_func_info: 144, nr_line_info: 148,
  run_time_ns: 192, run_cnt: 200, recursion_misses: 208, verified_insns: 216, attach_btf_obj_id: 220,
  attach_btf_id: 224,
} as const;
export const BPF_MAP_INFO = {
  size: 88, type: 0, id: 4, key_size: 8, value_size: 12, max_entries: 16, map_flags: 20, name: 24, ifindex: 40,
  btf_vmlinux_value_type_id: 44, netns_dev: 48, netns_ino: 56, btf_id: 64, btf_key_type_id: 68,
  btf_value_type_id: 72, map_extra: 80,
} as const;
export const BPF_LINK_INFO = {
  size: 48, type: 0, id: 4, prog_id: 8, 'raw_tracepoint.tp_name': 16, 'raw_tracepoint.tp_name_len': 24,
  'tracing.attach_type': 16, 'tracing.target_obj_id': 20, 'tracing.target_btf_id': 24, 'cgroup.cgroup_id': 16,
  'cgroup.attach_type': 24, 'netns.netns_ino': 16, 'netns.attach_type': 20, 'xdp.ifindex': 16,
} as const;

const PROG_LOAD_EAGAIN_RETRIES = 5;
const NONE_TOLERATED: readonly number[] = [];

/**
 * THE bpf(2) entry point. Returns the kernel's result (an fd or 0). A failure throws SysError naming the command,
 * unless its errno is in `tolerated`: then it returns -errno so hot paths (lookup misses, end of iteration) never
 * build an exception.
 */
export function bpfCall(cmd: BpfCommandName, attr: AttrWriter, tolerated: readonly number[] = NONE_TOLERATED, detail?: string): number {
  let ret: number;
  try {
    ret = rawBpf(BpfCommand[cmd], attr.bytes, attr.bytes.byteLength);
    // The verifier gives up with EAGAIN when a signal is pending; libbpf retries the same way.
    for (let i = 0; ret === -Errno.EAGAIN && cmd === 'PROG_LOAD' && i < PROG_LOAD_EAGAIN_RETRIES; i++) {
      ret = rawBpf(BpfCommand[cmd], attr.bytes, attr.bytes.byteLength);
    }
  } finally {
    attr.release();
  }
  if (ret >= 0 || tolerated.includes(-ret)) return ret;
  throw new SysError({ syscall: 'bpf', command: `BPF_${cmd}`, errno: -ret, ...(detail === undefined ? {} : { detail }) });
}

/** close(2) for any fd a wrapper returned. */
export function closeFd(fd: number): void {
  const ret = rawClose(fd);
  if (ret < 0) throw new SysError({ syscall: 'close', errno: -ret, detail: `fd ${fd}` });
}

// ---------------------------------------------------------------------------------------------------------------
// Maps

export interface MapCreateAttr {
  readonly mapType: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags?: number;
  readonly innerMapFd?: number;
  readonly numaNode?: number;
  /** Up to 15 bytes are kept; the kernel accepts [A-Za-z0-9_.] only. */
  readonly mapName?: string;
  readonly mapIfindex?: number;
  readonly btfFd?: number;
  readonly btfKeyTypeId?: number;
  readonly btfValueTypeId?: number;
  readonly btfVmlinuxValueTypeId?: number;
  readonly mapExtra?: bigint;
}

export function encodeMapCreate(a: MapCreateAttr): AttrWriter {
  const L = BPF_ATTR.mapCreate;
  const w = new AttrWriter(L.size)
    .u32(L.map_type, a.mapType)
    .u32(L.key_size, a.keySize)
    .u32(L.value_size, a.valueSize)
    .u32(L.max_entries, a.maxEntries)
    .u32(L.map_flags, a.mapFlags ?? 0)
    .u32(L.inner_map_fd, a.innerMapFd ?? 0)
    .u32(L.numa_node, a.numaNode ?? 0)
    .u32(L.map_ifindex, a.mapIfindex ?? 0)
    .u32(L.btf_fd, a.btfFd ?? 0)
    .u32(L.btf_key_type_id, a.btfKeyTypeId ?? 0)
    .u32(L.btf_value_type_id, a.btfValueTypeId ?? 0)
    .u32(L.btf_vmlinux_value_type_id, a.btfVmlinuxValueTypeId ?? 0)
    .u64(L.map_extra, a.mapExtra ?? 0n);
  if (a.mapName !== undefined) w.chars(L.map_name, BPF_OBJ_NAME_LEN, a.mapName);
  return w;
}

/** BPF_MAP_CREATE → map fd. */
export function mapCreate(a: MapCreateAttr): number {
  return bpfCall('MAP_CREATE', encodeMapCreate(a), NONE_TOLERATED, a.mapName);
}

/**
 * The element commands are the hot path: one bpf(2) call per map element, where the cost of building the attr is
 * of the order of the system call itself. So they share one preallocated attr whose every field is written on each
 * call (no zeroing), take their addresses from a small identity cache (map handles reuse their scratch buffers), and
 * skip the generic writer. The key and value buffers are live arguments for the whole synchronous call, so nothing
 * needs pinning.
 */
const ELEM = BPF_ATTR.mapElem;
const elemAttrBytes = Buffer.alloc(ELEM.size);
const elemView = new DataView(elemAttrBytes.buffer, elemAttrBytes.byteOffset, ELEM.size);
/** One element command; returns the raw result (≥ 0, or -errno). */
function elemCall(cmd: number, mapFd: number, key: Uint8Array | null, value: Uint8Array | null, flags: number): number {
  elemView.setUint32(ELEM.map_fd, mapFd, true);
  elemView.setUint32(ELEM.map_fd + 4, 0, true);
  elemView.setBigUint64(ELEM.key, bufferAddress(key), true);
  elemView.setBigUint64(ELEM.value, bufferAddress(value), true);
  elemView.setUint32(ELEM.flags, flags >>> 0, true);
  elemView.setUint32(ELEM.flags + 4, 0, true);
  return rawBpf(cmd, elemAttrBytes, ELEM.size);
}

function elemResult(ret: number, cmd: BpfCommandName, mapFd: number, absentIsFalse: boolean): boolean {
  if (ret >= 0) return true;
  if (absentIsFalse && ret === -Errno.ENOENT) return false;
  throw new SysError({ syscall: 'bpf', command: `BPF_${cmd}`, errno: -ret, detail: `map fd ${mapFd}` });
}

/*
 * Buffer sizes: the kernel reads key_size bytes from `key` and writes value_size bytes (per-CPU maps:
 * roundup(value_size, 8) × possible CPUs) into `value`. It cannot know our buffers' lengths, so callers must pass
 * buffers at least that large; the map layer owns those sizes.
 */

/** BPF_MAP_LOOKUP_ELEM into `value`; false when the key is absent. */
export function mapLookupElem(mapFd: number, key: Uint8Array, value: Uint8Array, flags = 0): boolean {
  return elemResult(elemCall(BpfCommand.MAP_LOOKUP_ELEM, mapFd, key, value, flags), 'MAP_LOOKUP_ELEM', mapFd, true);
}

/** BPF_MAP_UPDATE_ELEM; `flags` is one of UpdateFlags (BPF_ANY by default). */
export function mapUpdateElem(mapFd: number, key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.ANY): void {
  elemResult(elemCall(BpfCommand.MAP_UPDATE_ELEM, mapFd, key, value, flags), 'MAP_UPDATE_ELEM', mapFd, false);
}

/** BPF_MAP_DELETE_ELEM; false when the key was absent. */
export function mapDeleteElem(mapFd: number, key: Uint8Array): boolean {
  return elemResult(elemCall(BpfCommand.MAP_DELETE_ELEM, mapFd, key, null, 0), 'MAP_DELETE_ELEM', mapFd, true);
}

/** BPF_MAP_GET_NEXT_KEY: `key` null asks for the first key. Writes `nextKey`; false when there is none. */
export function mapGetNextKey(mapFd: number, key: Uint8Array | null, nextKey: Uint8Array): boolean {
  return elemResult(elemCall(BpfCommand.MAP_GET_NEXT_KEY, mapFd, key, nextKey, 0), 'MAP_GET_NEXT_KEY', mapFd, true);
}

/** BPF_MAP_FREEZE: no more writes from user space. */
export function mapFreeze(mapFd: number): void {
  const L = BPF_ATTR.mapElem;
  bpfCall('MAP_FREEZE', new AttrWriter(L.size).u32(L.map_fd, mapFd));
}

export interface MapLookupBatchRequest {
  readonly mapFd: number;
  /** Opaque position from the previous call's outBatch; null starts at the beginning. */
  readonly inBatch: Uint8Array | null;
  /** Receives the position to continue from: max(key_size, 4) bytes (hash maps store a u32 bucket index). */
  readonly outBatch: Uint8Array;
  readonly keys: Uint8Array;
  readonly values: Uint8Array;
  readonly keySize: number;
  /** Bytes per element in `values` (per-CPU maps: roundup(value_size, 8) × possible CPUs). */
  readonly valueStride: number;
  readonly elemFlags?: number;
  readonly flags?: number;
}

export interface MapLookupBatchResult {
  /** Elements written to keys/values. */
  readonly count: number;
  /** The kernel reported ENOENT: the map has no elements after these. */
  readonly done: boolean;
}

/**
 * BPF_MAP_LOOKUP_BATCH: as many elements as fit in keys/values. Throws SysError for anything but the end of the map;
 * see batchUnsupported() for the errors that mean "iterate with get_next_key instead".
 */
export function mapLookupBatch(req: MapLookupBatchRequest): MapLookupBatchResult {
  const count = Math.min(Math.floor(req.keys.byteLength / req.keySize), Math.floor(req.values.byteLength / req.valueStride));
  if (!(count > 0)) {
    throw new SysArgumentError(
      `BPF_MAP_LOOKUP_BATCH: keys (${req.keys.byteLength} B) and values (${req.values.byteLength} B) must hold at least one ` +
        `element of ${req.keySize} + ${req.valueStride} B`,
    );
  }
  if (req.outBatch.byteLength < Math.max(req.keySize, 4)) {
    throw new SysArgumentError(`BPF_MAP_LOOKUP_BATCH: out_batch needs ${Math.max(req.keySize, 4)} B, got ${req.outBatch.byteLength}`);
  }
  const L = BPF_ATTR.mapBatch;
  const w = new AttrWriter(L.size)
    .pointer(L.in_batch, req.inBatch)
    .pointer(L.out_batch, req.outBatch)
    .pointer(L.keys, req.keys)
    .pointer(L.values, req.values)
    .u32(L.count, count)
    .u32(L.map_fd, req.mapFd)
    .u64(L.elem_flags, req.elemFlags ?? 0)
    .u64(L.flags, req.flags ?? 0);
  const ret = bpfCall('MAP_LOOKUP_BATCH', w, [Errno.ENOENT]);
  // The kernel writes back how many elements it copied, also together with ENOENT on the last batch.
  return { count: w.readU32(L.count), done: ret === -Errno.ENOENT };
}

/** True for the errors with which kernels without batch support for a map type reject BPF_MAP_LOOKUP_BATCH. */
export function batchUnsupported(err: unknown): boolean {
  return err instanceof SysError &&
    (err.errno === Errno.EINVAL || err.errno === Errno.ENOTSUPP || err.errno === Errno.EOPNOTSUPP);
}

// ---------------------------------------------------------------------------------------------------------------
// Programs

export interface ProgLoadAttr {
  readonly progType: number;
  /** Raw struct bpf_insn bytes, 8 per instruction. */
  readonly insns: Uint8Array;
  readonly license: string;
  readonly logLevel?: number;
  /** Verifier log destination; its length is log_size. Required by the kernel when logLevel > 0. */
  readonly logBuf?: Uint8Array;
  readonly kernVersion?: number;
  readonly progFlags?: number;
  readonly progName?: string;
  readonly progIfindex?: number;
  readonly expectedAttachType?: number;
  readonly progBtfFd?: number;
  readonly funcInfoRecSize?: number;
  /** bpf_func_info records; func_info_cnt = length / funcInfoRecSize. */
  readonly funcInfo?: Uint8Array;
  readonly lineInfoRecSize?: number;
  readonly lineInfo?: Uint8Array;
  readonly attachBtfId?: number;
  readonly attachProgFd?: number;
  /** Shares attach_prog_fd's slot: a module BTF object fd for attachBtfId. */
  readonly attachBtfObjFd?: number;
  /** s32 fds referenced by BPF_PSEUDO_MAP_IDX / kfunc module BTF slots. */
  readonly fdArray?: Int32Array;
}

function recordCount(bytes: Uint8Array | undefined, recSize: number | undefined, what: string): number {
  if (bytes === undefined || bytes.byteLength === 0) return 0;
  if (recSize === undefined || recSize <= 0 || bytes.byteLength % recSize !== 0) {
    throw new SysArgumentError(`BPF_PROG_LOAD: ${what} of ${bytes.byteLength} B is not a whole number of ${recSize ?? '?'} B records`);
  }
  return bytes.byteLength / recSize;
}

export function encodeProgLoad(a: ProgLoadAttr): AttrWriter {
  if (a.insns.byteLength % 8 !== 0) {
    throw new SysArgumentError(`BPF_PROG_LOAD: instructions are ${a.insns.byteLength} B, not a multiple of 8`);
  }
  const L = BPF_ATTR.progLoad;
  const w = new AttrWriter(L.size)
    .u32(L.prog_type, a.progType)
    .u32(L.insn_cnt, a.insns.byteLength / 8)
    .pointer(L.insns, a.insns)
    .pointer(L.license, cString(a.license, 'license'))
    .u32(L.log_level, a.logLevel ?? 0)
    .u32(L.log_size, a.logBuf?.byteLength ?? 0)
    .pointer(L.log_buf, a.logBuf)
    .u32(L.kern_version, a.kernVersion ?? 0)
    .u32(L.prog_flags, a.progFlags ?? 0)
    .u32(L.prog_ifindex, a.progIfindex ?? 0)
    .u32(L.expected_attach_type, a.expectedAttachType ?? 0)
    .u32(L.prog_btf_fd, a.progBtfFd ?? 0)
    .u32(L.func_info_cnt, recordCount(a.funcInfo, a.funcInfoRecSize, 'func_info'))
    .u32(L.line_info_cnt, recordCount(a.lineInfo, a.lineInfoRecSize, 'line_info'))
    .u32(L.attach_btf_id, a.attachBtfId ?? 0)
    .u32(L.attach_prog_fd, a.attachProgFd ?? a.attachBtfObjFd ?? 0)
    .pointer(L.fd_array, a.fdArray === undefined ? null : new Uint8Array(a.fdArray.buffer, a.fdArray.byteOffset, a.fdArray.byteLength));
  if (a.funcInfo !== undefined && a.funcInfo.byteLength > 0) {
    w.u32(L.func_info_rec_size, a.funcInfoRecSize ?? 0).pointer(L.func_info, a.funcInfo);
  }
  if (a.lineInfo !== undefined && a.lineInfo.byteLength > 0) {
    w.u32(L.line_info_rec_size, a.lineInfoRecSize ?? 0).pointer(L.line_info, a.lineInfo);
  }
  if (a.progName !== undefined) w.chars(L.prog_name, BPF_OBJ_NAME_LEN, a.progName);
  return w;
}

/** BPF_PROG_LOAD → program fd. On failure the verifier's explanation is in logBuf (NUL-terminated). */
export function progLoad(a: ProgLoadAttr): number {
  return bpfCall('PROG_LOAD', encodeProgLoad(a), NONE_TOLERATED, a.progName);
}

// ---------------------------------------------------------------------------------------------------------------
// Pinning

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

// ---------------------------------------------------------------------------------------------------------------
// Attaching

export interface ProgAttachAttr {
  readonly targetFd: number;
  readonly attachBpfFd: number;
  readonly attachType: number;
  readonly attachFlags?: number;
  readonly replaceBpfFd?: number;
}

/** BPF_PROG_ATTACH (cgroups, sockmaps, flow dissector, lirc). */
export function progAttach(a: ProgAttachAttr): void {
  const L = BPF_ATTR.progAttach;
  const w = new AttrWriter(L.size)
    .u32(L.target_fd, a.targetFd)
    .u32(L.attach_bpf_fd, a.attachBpfFd)
    .u32(L.attach_type, a.attachType)
    .u32(L.attach_flags, a.attachFlags ?? 0)
    .u32(L.replace_bpf_fd, a.replaceBpfFd ?? 0);
  bpfCall('PROG_ATTACH', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

/** BPF_PROG_DETACH; attachBpfFd selects the program when several are attached (BPF_F_ALLOW_MULTI). */
export function progDetach(a: { readonly targetFd: number; readonly attachType: number; readonly attachBpfFd?: number }): void {
  const L = BPF_ATTR.progAttach;
  const w = new AttrWriter(L.size).u32(L.target_fd, a.targetFd).u32(L.attach_bpf_fd, a.attachBpfFd ?? 0).u32(L.attach_type, a.attachType);
  bpfCall('PROG_DETACH', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

export interface ProgQueryResult {
  readonly attachFlags: number;
  readonly progIds: readonly number[];
}

/** BPF_PROG_QUERY: ids of the programs attached to targetFd for attachType (growing the id buffer as needed). */
export function progQuery(a: { readonly targetFd: number; readonly attachType: number; readonly queryFlags?: number }): ProgQueryResult {
  const L = BPF_ATTR.query;
  let capacity = 64;
  for (;;) {
    const ids = new Uint32Array(capacity);
    const w = new AttrWriter(L.size)
      .u32(L.target_fd, a.targetFd)
      .u32(L.attach_type, a.attachType)
      .u32(L.query_flags, a.queryFlags ?? 0)
      .pointer(L.prog_ids, new Uint8Array(ids.buffer))
      .u32(L.prog_cnt, capacity);
    // ENOSPC: more programs than room; prog_cnt now holds the real count.
    const ret = bpfCall('PROG_QUERY', w, [Errno.ENOSPC], attachTypeName(a.attachType));
    const count = w.readU32(L.prog_cnt);
    if (ret >= 0) return { attachFlags: w.readU32(L.attach_flags), progIds: Array.from(ids.subarray(0, Math.min(count, capacity))) };
    capacity = Math.max(count, capacity * 2);
  }
}

/** BPF_RAW_TRACEPOINT_OPEN → link fd. `name` null for BTF-typed programs (tp_btf, fentry …) attached by their BTF id. */
export function rawTracepointOpen(name: string | null, progFd: number): number {
  const L = BPF_ATTR.rawTracepoint;
  const w = new AttrWriter(L.size).pointer(L.name, name === null ? null : cString(name, 'tracepoint name')).u32(L.prog_fd, progFd);
  return bpfCall('RAW_TRACEPOINT_OPEN', w, NONE_TOLERATED, name ?? undefined);
}

export interface LinkCreateAttr {
  readonly progFd: number;
  /** target_fd (cgroup, netns, perf event fd …) or target_ifindex (xdp, tcx): the same slot. */
  readonly targetFd?: number;
  readonly targetIfindex?: number;
  readonly attachType: number;
  readonly flags?: number;
  /** tracing / ext links: BTF id of the target. */
  readonly targetBtfId?: number;
  /** perf_event links: value for bpf_get_attach_cookie(). */
  readonly bpfCookie?: bigint;
}

/** BPF_LINK_CREATE → link fd. */
export function linkCreate(a: LinkCreateAttr): number {
  const L = BPF_ATTR.linkCreate;
  const w = new AttrWriter(L.size)
    .u32(L.prog_fd, a.progFd)
    .u32(L.target_fd, a.targetFd ?? a.targetIfindex ?? 0)
    .u32(L.attach_type, a.attachType)
    .u32(L.flags, a.flags ?? 0);
  if (a.bpfCookie !== undefined) w.u64(L['perf_event.bpf_cookie'], a.bpfCookie);
  else if (a.targetBtfId !== undefined) w.u32(L.target_btf_id, a.targetBtfId);
  return bpfCall('LINK_CREATE', w, NONE_TOLERATED, attachTypeName(a.attachType));
}

/** BPF_LINK_DETACH: the link stays open but is detached from its target. */
export function linkDetach(linkFd: number): void {
  const L = BPF_ATTR.linkDetach;
  bpfCall('LINK_DETACH', new AttrWriter(L.size).u32(L.link_fd, linkFd));
}

// ---------------------------------------------------------------------------------------------------------------
// BTF

export interface BtfLoadAttr {
  readonly btf: Uint8Array;
  readonly logBuf?: Uint8Array;
  readonly logLevel?: number;
}

/** BPF_BTF_LOAD → BTF object fd. */
export function btfLoad(a: BtfLoadAttr): number {
  const L = BPF_ATTR.btfLoad;
  const w = new AttrWriter(L.size)
    .pointer(L.btf, a.btf)
    .pointer(L.btf_log_buf, a.logBuf)
    .u32(L.btf_size, a.btf.byteLength)
    .u32(L.btf_log_size, a.logBuf?.byteLength ?? 0)
    .u32(L.btf_log_level, a.logBuf === undefined ? 0 : a.logLevel ?? 1);
  return bpfCall('BTF_LOAD', w);
}

// ---------------------------------------------------------------------------------------------------------------
// Test runs

export interface ProgTestRunAttr {
  readonly progFd: number;
  readonly dataIn?: Uint8Array;
  /** Receives the packet after the run; the kernel reports ENOSPC when it is too small. */
  readonly dataOut?: Uint8Array;
  readonly ctxIn?: Uint8Array;
  readonly ctxOut?: Uint8Array;
  readonly repeat?: number;
  readonly flags?: number;
  readonly cpu?: number;
}

export interface ProgTestRunResult {
  readonly retval: number;
  /** Bytes the kernel wrote (or wanted to write) to dataOut / ctxOut. */
  readonly dataSizeOut: number;
  readonly ctxSizeOut: number;
  /** Mean nanoseconds per run, as the kernel measured it. */
  readonly durationNs: number;
}

/** BPF_PROG_TEST_RUN: runs a program on `dataIn` (and a context) without any traffic or event. */
export function progTestRun(a: ProgTestRunAttr): ProgTestRunResult {
  const L = BPF_ATTR.testRun;
  const w = new AttrWriter(L.size)
    .u32(L.prog_fd, a.progFd)
    .u32(L.data_size_in, a.dataIn?.byteLength ?? 0)
    .u32(L.data_size_out, a.dataOut?.byteLength ?? 0)
    .pointer(L.data_in, a.dataIn)
    .pointer(L.data_out, a.dataOut)
    .u32(L.repeat, a.repeat ?? 0)
    .u32(L.ctx_size_in, a.ctxIn?.byteLength ?? 0)
    .u32(L.ctx_size_out, a.ctxOut?.byteLength ?? 0)
    .pointer(L.ctx_in, a.ctxIn)
    .pointer(L.ctx_out, a.ctxOut)
    .u32(L.flags, a.flags ?? 0)
    .u32(L.cpu, a.cpu ?? 0);
  bpfCall('PROG_TEST_RUN', w, NONE_TOLERATED, `prog fd ${a.progFd}`);
  return {
    retval: w.readU32(L.retval), dataSizeOut: w.readU32(L.data_size_out), ctxSizeOut: w.readU32(L.ctx_size_out),
    durationNs: w.readU32(L.duration),
  };
}
