import { printable } from './printable.js';

/**
 * Root of every error bpf-load throws on purpose. The CLI prints `message` of these as one line and exits non-zero;
 * anything else reaching the top is a bug and gets a stack trace.
 *
 * Messages read "context: cause" (cilium/ebpf style): the outermost context first, e.g.
 * `sockex1_kern.o: section socket1 (#3): insn 4: relocation against non-map symbol foo`.
 */
export class BpfLoadError extends Error {
  override name = 'BpfLoadError';
  constructor(message: string, options?: { cause?: unknown }) {
    // Messages carry names from the file; whatever bytes those hold, the message stays one printable line.
    super(printable(message), options);
  }
}

/** Joins non-empty context parts into the "a: b: cause" form used by every error message. */
export function withContext(parts: ReadonlyArray<string | undefined>, cause: string): string {
  const context = parts.filter((p): p is string => p !== undefined && p !== '');
  return [...context, cause].join(': ');
}
