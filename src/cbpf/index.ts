/** Classic BPF: the sock_filter model, kernel checks, tcpdump-syntax output, text inputs, eBPF translation. */
export { ClassicFilterError } from './errors.js';
export {
  ANCILLARY, type Ancillary, ancillaryAt, CLASSIC_MAX_INSNS, CLASSIC_MEMWORDS, CLASSIC_OPS, type ClassicOp,
  ClassicAluOp, ClassicClass, ClassicJmpOp, ClassicMiscOp, ClassicMode, ClassicRval, ClassicSize, ClassicSource,
  SKF_AD_OFF, SOCK_FILTER_SIZE,
} from './opcodes.js';
export { type SockFilter, type ClassicProgram, type ClassicParseOptions, checkClassicProgram, decodeClassicProgram, encodeClassicProgram } from './program.js';
export { formatClassicInsn, formatClassicProgram, formatClassicC, formatClassicDecimal, formatClassicBytecode } from './format.js';
export { type ClassicTextForm, classicTextForm, parseClassicDecimal, parseClassicCArray } from './text.js';
export { classicToEbpf, type ClassicTranslationFacts } from './convert.js';
export { type ClassicMatcher, KernelOnlyError, jsCompilable, compileClassicToJs } from './compile-js.js';
