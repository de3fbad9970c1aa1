/** bpf(2) load commands: programs and BTF objects. */
import { INSN_SLOT_SIZE } from '../base/uapi.js';
import { SysArgumentError } from './errors.js';
import { AttrWriter, cString } from './ffi.js';
import { BPF_ATTR, BPF_OBJ_NAME_LEN, NONE_TOLERATED, bpfCall, bpfCallAsync } from './bpf.js';

export interface ProgLoadAttr {
  readonly progType: number;
  /** Raw struct bpf_insn bytes, INSN_SLOT_SIZE (8) per instruction. */
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
  if (a.insns.byteLength % INSN_SLOT_SIZE !== 0) {
    throw new SysArgumentError(`BPF_PROG_LOAD: instructions are ${a.insns.byteLength} B, not a multiple of ${INSN_SLOT_SIZE}`);
  }
  const L = BPF_ATTR.progLoad;
  const w = new AttrWriter(L.size)
    .u32(L.prog_type, a.progType)
    .u32(L.insn_cnt, a.insns.byteLength / INSN_SLOT_SIZE)
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

/**
 * BPF_PROG_LOAD on the libuv pool: resolves with the program fd, or -1 when the kernel refused (load again with
 * progLoad, and a log, to learn why). The verifier of one program runs while JavaScript prepares the next.
 */
export function progLoadAsync(a: ProgLoadAttr): Promise<number> {
  return bpfCallAsync('PROG_LOAD', encodeProgLoad(a));
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
