export { parseObject, type ParseOptions, type ProgramTypes } from './parse.js';
export { ObjectError } from './errors.js';
export { SECTION_DEFS, matchSection, matchUserType, USER_PROGRAM_TYPES, iproute2TailCall, type AttachKind, type SectionDef, type SectionMatch } from './section-table.js';
export type * from './spec.js';
export { selectPrograms, type ProgramSelection } from './select.js';
