import { AttrWriter } from './ffi.js';
import { BPF_ATTR, BPF_PROG_INFO, bpfCall } from './bpf.js';
import { objGetInfoByFd } from './bpf-object.js';

/** struct bpf_prog_info fields beyond those progInfo() reads: the instruction and line-info buffers. */
const PROG_INFO_BUFFERS = {
  func_info_rec_size: 132, func_info: 136, nr_func_info: 144, nr_line_info: 148, line_info: 152, line_info_rec_size: 172,
} as const;

/** struct bpf_btf_info. */
const BPF_BTF_INFO = { size: 32, btf: 0, btf_size: 8, id: 12, name: 16, name_len: 24, kernel_btf: 28 } as const;

export interface ProgInstructions {
  /** The instructions as the kernel runs them (after the verifier's rewrites), map references as ids. */
  readonly xlated: Uint8Array;
  /** struct bpf_line_info records (insn_off counts slots of `xlated`), `lineInfoRecSize` bytes each. */
  readonly lineInfo: Uint8Array;
  readonly lineInfoRecSize: number;
  /** struct bpf_func_info records (insn_off, type_id), `funcInfoRecSize` bytes each. */
  readonly funcInfo: Uint8Array;
  readonly funcInfoRecSize: number;
}

/**
 * A loaded program's translated instructions with their line and function info (BPF_OBJ_GET_INFO_BY_FD, asked twice:
 * once for the sizes, once with buffers of those sizes). Root sees map ids and helper addresses; others see zeros.
 */
export function progInstructions(fd: number): ProgInstructions {
  const I = BPF_PROG_INFO;
  const B = PROG_INFO_BUFFERS;
  const sizes = new AttrWriter(I.size);
  objGetInfoByFd(fd, sizes);
  const xlated = new Uint8Array(sizes.readU32(I.xlated_prog_len));
  const lineInfoRecSize = sizes.readU32(B.line_info_rec_size);
  const lineInfo = new Uint8Array(sizes.readU32(B.nr_line_info) * lineInfoRecSize);
  const funcInfoRecSize = sizes.readU32(B.func_info_rec_size);
  const funcInfo = new Uint8Array(sizes.readU32(B.nr_func_info) * funcInfoRecSize);
  const again = new AttrWriter(I.size)
    .u32(I.xlated_prog_len, xlated.byteLength).pointer(I.xlated_prog_insns, xlated)
    .u32(B.nr_line_info, lineInfo.byteLength / Math.max(lineInfoRecSize, 1)).u32(B.line_info_rec_size, lineInfoRecSize).pointer(B.line_info, lineInfo)
    .u32(B.nr_func_info, funcInfo.byteLength / Math.max(funcInfoRecSize, 1)).u32(B.func_info_rec_size, funcInfoRecSize).pointer(B.func_info, funcInfo);
  objGetInfoByFd(fd, again);
  // The program cannot change, but a kernel may fill less than it announced: keep what it wrote.
  const filled = (len: number, buf: Uint8Array) => buf.subarray(0, Math.min(len, buf.byteLength));
  return {
    xlated: filled(again.readU32(I.xlated_prog_len), xlated),
    lineInfo: filled(again.readU32(B.nr_line_info) * lineInfoRecSize, lineInfo), lineInfoRecSize,
    funcInfo: filled(again.readU32(B.nr_func_info) * funcInfoRecSize, funcInfo), funcInfoRecSize,
  };
}

/** BTF_GET_FD_BY_ID: an fd for a BTF object the kernel holds (a program's or map's `btf_id`). */
export function btfGetFdById(id: number): number {
  const L = BPF_ATTR.getId;
  return bpfCall('BTF_GET_FD_BY_ID', new AttrWriter(L.size).u32(L.start_id, id), [], `BTF id ${id}`);
}

/** The raw .BTF bytes of a BTF object fd, as it was loaded (header, types, strings). */
export function btfRawData(fd: number): Uint8Array {
  const I = BPF_BTF_INFO;
  const sizes = new AttrWriter(I.size);
  objGetInfoByFd(fd, sizes);
  const data = new Uint8Array(sizes.readU32(I.btf_size));
  objGetInfoByFd(fd, new AttrWriter(I.size).u32(I.btf_size, data.byteLength).pointer(I.btf, data));
  return data;
}
