import { BpfLoadError, withContext } from '../base/errors.js';
import { SysError } from '../sys/index.js';

/** A step of loading failed; the message says which object, map or program, and why. */
export class LoadError extends BpfLoadError {
  override name = 'LoadError';
}

/**
 * The verifier refused a program. `message` is one line: program, section, errno, the log line that says why, and how
 * many lines were left out; `log` holds the whole verifier log (printed by --verbose).
 */
export class VerifierError extends BpfLoadError {
  override name = 'VerifierError';
  readonly program: string;
  readonly section: string;
  readonly errno: number;
  readonly code: string;
  readonly log: string;
  /** The log did not fit the largest buffer we tried: its start is missing. */
  readonly truncated: boolean;

  constructor(init: { file?: string | undefined; program: string; section: string; cause: SysError; log: string; truncated: boolean }) {
    const lines = logLines(init.log);
    const reason = summaryLine(lines);
    const omitted = lines.length - (reason === undefined ? 0 : 1);
    const summary = reason === undefined
      ? `${init.cause.code}: the kernel gave no verifier log`
      : `${reason} (${init.cause.code}${omitted > 0 ? `, ${omitted} more log line${omitted === 1 ? '' : 's'} with --verbose` : ''})`;
    super(withContext([init.file, `program ${init.program} (section ${init.section})`, 'verifier rejected it'], summary), { cause: init.cause });
    this.program = init.program;
    this.section = init.section;
    this.errno = init.cause.errno;
    this.code = init.cause.code;
    this.log = init.log;
    this.truncated = init.truncated;
  }
}

function logLines(log: string): string[] {
  return log.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
}

/**
 * The line that explains the rejection. The verifier ends with statistics ("processed N insns …", "verification
 * time …") after the error; the reason is the last line before them.
 */
function summaryLine(lines: readonly string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (/^(processed \d+ insns|verification time|stack depth|max_states_per_insn|mark_precise|\s*$)/.test(l)) continue;
    return l;
  }
  return undefined;
}

/** A BpfLoadError from a lower layer, as a LoadError with `where` in front; anything else unchanged. */
export function withLoadContext(e: unknown, where: ReadonlyArray<string | undefined>): unknown {
  if (e instanceof BpfLoadError) return new LoadError(withContext(where, e.message), { cause: e });
  return e;
}
