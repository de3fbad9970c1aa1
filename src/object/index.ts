export { parseObject, type ParseOptions } from './parse.js';
export { ObjectError } from './errors.js';
export { SECTION_DEFS, matchSection, type AttachKind, type SectionDef, type SectionMatch } from './section-table.js';
export type * from './spec.js';
