export { BtfError, type BtfLocation } from './errors.js';
export { Btf, parseBtf, type BtfLayout, type ParseBtfOptions } from './parse.js';
export { parseBtfExt, type ParseBtfExtOptions } from './ext.js';
export { withDatasecFixups } from './fixups.js';
export * from './types.js';
