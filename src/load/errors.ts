import { BpfLoadError, withContext } from '../base/errors.js';
import { SysError } from '../sys/index.js';

/** A step of loading failed; the message says which object, map or program, and why. */
export class LoadError extends BpfLoadError {
  override name = 'LoadError';
}

/** Where the verifier stopped, when its log says: the BTF line info it prints as `; text @ file:line`. */
export interface VerifierSource {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

/**
 * The verifier refused a program. `message` is one line: program, section, the log line that says why, the
 * instruction and source line it stopped at (when the log has them), errno and how many log lines were left out;
 * `log` holds the whole verifier log.
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
  /** The line of the log that says why. */
  readonly reason: string | undefined;
  /** The instruction the verifier stopped at (its index in the program, as the log numbers them). */
  readonly insn: number | undefined;
  readonly source: VerifierSource | undefined;

  constructor(init: { file?: string | undefined; program: string; section: string; cause: SysError; log: string; truncated: boolean }) {
    const lines = logLines(init.log);
    const at = summaryLine(lines);
    const reason = at === undefined ? undefined : lines[at];
    const { insn, source } = at === undefined ? { insn: undefined, source: undefined } : whereItStopped(lines, at);
    const omitted = lines.length - (reason === undefined ? 0 : 1);
    const where = [insn === undefined ? '' : `insn ${insn}`, source === undefined ? '' : `${source.file}:${source.line}: ${source.text}`]
      .filter((w) => w !== '').join(', ');
    const summary = reason === undefined
      ? `${init.cause.code}: the kernel gave no verifier log`
      : `${reason}${where === '' ? '' : ` (at ${where})`} (${init.cause.code}${omitted > 0 ? `, ${omitted} more log line${omitted === 1 ? '' : 's'}` : ''})`;
    super(withContext([init.file, `program ${init.program} (section ${init.section})`, 'verifier rejected it'], summary), { cause: init.cause });
    this.program = init.program;
    this.section = init.section;
    this.errno = init.cause.errno;
    this.code = init.cause.code;
    this.log = init.log;
    this.truncated = init.truncated;
    this.reason = reason;
    this.insn = insn;
    this.source = source;
  }
}

function logLines(log: string): string[] {
  return log.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
}

/**
 * The line that explains the rejection. The verifier ends with statistics ("processed N insns …", "verification
 * time …") after the error; the reason is the last line before them.
 */
function summaryLine(lines: readonly string[]): number | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (/^(processed \d+ insns|verification time|stack depth|max_states_per_insn|mark_precise|\s*$)/.test(l)) continue;
    return i;
  }
  return undefined;
}

/** A BpfLoadError from a lower layer, as a LoadError with `where` in front; anything else unchanged. */
export function withLoadContext(e: unknown, where: ReadonlyArray<string | undefined>): unknown {
  if (e instanceof BpfLoadError) return new LoadError(withContext(where, e.message), { cause: e });
  return e;
}

/**
 * The last instruction line (`9: (79) r2 = …`) and source line (`; text @ file.c:24`, from BTF line info) before the
 * reason: the verifier prints each as it walks, so the last ones are where it stopped.
 */
function whereItStopped(lines: readonly string[], reasonAt: number): { insn: number | undefined; source: VerifierSource | undefined } {
  let insn: number | undefined;
  let source: VerifierSource | undefined;
  for (let i = reasonAt; i >= 0 && source === undefined; i--) {
    const l = lines[i]!;
    const step = /^(\d+): \([0-9a-f]{2}\)/.exec(l);
    if (step !== null && insn === undefined) insn = Number(step[1]);
    const src = /^; (.*) @ ([^ ]+):(\d+)$/.exec(l);
    if (src !== null) source = { text: src[1]!.trim(), file: src[2]!, line: Number(src[3]) };
  }
  return { insn, source };
}
