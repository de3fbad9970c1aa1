import { BpfLoadError, withContext } from '../base/errors.js';

/** A classic filter that cannot be read or that the kernel would refuse: names the source and the instruction. */
export class ClassicFilterError extends BpfLoadError {
  override name = 'ClassicFilterError';
  /** Index of the offending instruction, when one is to blame. */
  readonly index: number | undefined;

  constructor(source: string | undefined, index: number | undefined, cause: string) {
    super(withContext([source, index === undefined ? undefined : `insn ${index}`], cause));
    this.index = index;
  }
}
