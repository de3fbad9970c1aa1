import { BpfLoadError, withContext } from '../base/errors.js';

/** A well-formed ELF file that is not a valid BPF object: bad map definition, bad relocation, bad version section… */
export class ObjectError extends BpfLoadError {
  override name = 'ObjectError';
  readonly file: string | undefined;
  readonly section: string | undefined;
  readonly symbol: string | undefined;

  constructor(where: { file?: string | undefined; section?: string | undefined; symbol?: string | undefined; insn?: number }, cause: string) {
    super(withContext([
      where.file,
      where.section === undefined ? undefined : `section ${where.section}`,
      where.insn === undefined ? undefined : `insn ${where.insn}`,
      where.symbol === undefined ? undefined : `symbol ${where.symbol}`,
    ], cause));
    this.file = where.file;
    this.section = where.section;
    this.symbol = where.symbol;
  }
}
