import { BpfLoadError, withContext } from '../base/errors.js';

/** Where a BTF problem was found. Every field is optional: the message uses whichever are known. */
export interface BtfLocation {
  file?: string | undefined;
  /** '.BTF' or '.BTF.ext'. */
  section?: string | undefined;
  /** Byte offset inside that section. */
  offset?: number | undefined;
  typeId?: number | undefined;
}

export class BtfError extends BpfLoadError {
  override name = 'BtfError';
  readonly file: string | undefined;
  readonly section: string | undefined;
  readonly offset: number | undefined;
  readonly typeId: number | undefined;

  constructor(where: BtfLocation, cause: string) {
    super(withContext([
      where.file,
      where.section,
      where.offset === undefined ? undefined : `offset 0x${where.offset.toString(16)}`,
      where.typeId === undefined ? undefined : `type [${where.typeId}]`,
    ], cause));
    this.file = where.file;
    this.section = where.section;
    this.offset = where.offset;
    this.typeId = where.typeId;
  }
}
