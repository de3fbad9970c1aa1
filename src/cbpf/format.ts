/**
 * Classic programs as tcpdump prints them: `-d` (libpcap's bpf_image, one line per instruction), `-dd` (a C array)
 * and `-ddd` (decimal, the form iptables and tc take). The agreement test in test/cbpf compares every opcode with
 * libpcap's own bpf_image and whole programs with `tcpdump -d`.
 */
import type { ClassicProgram, SockFilter } from './program.js';
import { ancillaryAt, CLASSIC_OPS, ClassicClass, ClassicJmpOp, classicClass } from './opcodes.js';

const signed = (k: number) => String(k | 0);
const hex = (k: number) => `0x${(k >>> 0).toString(16)}`;

function operand(insn: SockFilter, index: number, kind: string): string {
  const { k } = insn;
  switch (kind) {
    case 'imm-hex': case 'cond-hex': return `#${hex(k)}`;
    case 'imm-dec': return `#${signed(k)}`;
    case 'abs': {
      const anc = ancillaryAt(k);
      return anc === undefined ? `[${signed(k)}]` : `[${anc.name}]`;
    }
    case 'ind': return `[x + ${signed(k)}]`;
    case 'mem': return `M[${signed(k)}]`;
    case 'len': return '#pktlen';
    case 'msh': return `4*([${signed(k)}]&0xf)`;
    case 'x': case 'cond-x': return 'x';
    case 'ja': return String((index + 1 + k) | 0);
    default: return '';
  }
}

/** One instruction in tcpdump -d syntax, e.g. `(001) jeq      #0x800           jt 2\tjf 10`. */
export function formatClassicInsn(insn: SockFilter, index: number): string {
  const op = CLASSIC_OPS.get(insn.code);
  const n = String(index).padStart(3, '0');
  const mnemonic = op?.mnemonic ?? 'unimp';
  const text = op === undefined ? hex(insn.code) : operand(insn, index, op.operand);
  // libpcap decides by class and operation alone, so even an unknown jump opcode shows its targets.
  if (classicClass(insn.code) === ClassicClass.JMP && (insn.code & 0xf0) !== ClassicJmpOp.JA) {
    return `(${n}) ${mnemonic.padEnd(8)} ${text.padEnd(16)} jt ${index + 1 + insn.jt}\tjf ${index + 1 + insn.jf}`;
  }
  return `(${n}) ${mnemonic.padEnd(8)} ${text}`;
}

/** The whole program as `tcpdump -d` prints it, one line per instruction, newline-terminated. */
export function formatClassicProgram(program: ClassicProgram): string {
  let out = '';
  for (let i = 0; i < program.length; i++) out += `${formatClassicInsn(program[i]!, i)}\n`;
  return out;
}

/** `tcpdump -dd`: a C initializer, one `{ code, jt, jf, k },` per line. */
export function formatClassicC(program: ClassicProgram): string {
  const h = (v: number) => `0x${v.toString(16).padStart(8, "0")}`;
  return program.map((i) => `{ 0x${i.code.toString(16)}, ${i.jt}, ${i.jf}, ${h(i.k >>> 0)} },\n`).join('');
}

/** `tcpdump -ddd`: the instruction count, then `code jt jf k` in decimal, one per line. */
export function formatClassicDecimal(program: ClassicProgram): string {
  return `${program.length}\n${program.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k >>> 0}\n`).join('')}`;
}

/** The comma-separated one-liner `iptables -m bpf --bytecode` and `tc … bpf bytecode` take: `4,48 0 0 9,…`. */
export function formatClassicBytecode(program: ClassicProgram): string {
  return [String(program.length), ...program.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k >>> 0}`)].join(',');
}
