import { BpfLoadError, withContext } from '../base/errors.js';

/** An instruction that cannot be encoded: a field out of its range. Decoding never throws. */
export class InsnError extends BpfLoadError {
  override name = 'InsnError';
  /** Index of the offending entry in the array given to the encoder. */
  readonly index: number;

  constructor(index: number, cause: string) {
    super(withContext([`insn ${index}`], cause));
    this.index = index;
  }
}
