export { BtfError, type BtfLocation } from './errors.js';
export { Btf, type BtfLayout } from './btf.js';
export { parseBtf, type ParseBtfOptions } from './parse.js';
export { parseBtfExt, type ParseBtfExtOptions } from './ext.js';
export { withDatasecFixups } from './fixups.js';
export * from './types.js';
