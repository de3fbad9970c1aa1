export { readElf, ElfError, type ElfLocation, type ReadElfOptions } from './reader.js';
export * from './types.js';
