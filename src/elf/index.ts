export { readElf, checkElfHeader, ELF_HEADER_CHECK, ElfError, type ElfLocation, type ReadElfOptions } from './reader.js';
export * from './types.js';
