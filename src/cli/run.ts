import { setTimeout as sleep } from 'node:timers/promises';
import { readUserFile } from '../base/file.js';
import { ELF_HEADER_CHECK } from '../elf/index.js';
import { AttachConflictError, type AttachResult } from '../attach/index.js';
import { BpfObject } from '../attach/object.js';
import { parseTraceLine, readTracePipe } from '../attach/tracefs.js';
import { loadObjectAsync, VerifierError, type LoadedObject, type LoadOptions } from '../load/index.js';
import { parseObject, type BpfObjectSpec } from '../object/index.js';
import { EXIT, UsageError, type CliOptions } from './args.js';
import { startEventStream } from './events.js';
import { colourFor, LiveScreen, type Paint } from './screen.js';
import { readRound, renderRound, type MapRound } from './watch.js';

/** Set once stdout's reader has gone (`| head`): nothing more is written there. */
let stdoutClosed = false;
const out = (line: string) => {
  if (!stdoutClosed) process.stdout.write(line.endsWith('\n') ? line : `${line}\n`);
};
const err = (line: string) => process.stderr.write(`bpf-load: ${line}\n`);

/**
 * `bpf-load FILE`: load, attach, watch the maps until a signal or --count rounds, then detach and close everything.
 * The first SIGINT/SIGTERM/SIGHUP ends the watch and cleans up; a second one exits at once after a best-effort cleanup.
 */
export async function runObject(options: CliOptions): Promise<number> {
  const file = options.file!;
  // Handlers first: a signal that arrives while loading or attaching (synchronous work) is handled right after it,
  // never by the default action, which would kill the process with programs attached through netlink.
  const stop = new AbortController();
  let object: BpfObject | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      stop.abort(signal);
      return;
    }
    // Second signal: the user insists. Detach what we can, then leave.
    try {
      object?.close();
    } finally {
      process.exit(130);
    }
  };
  const signalNames: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signalNames) process.on(s, onSignal);
  // A closed stdout (`| head`) ends the run like a signal does. Installed for good: the error can arrive after the
  // run, and an unhandled one would be a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    stdoutClosed = true;
    stop.abort('EPIPE');
  });
  try {
    const spec = parseObject(readUserFile(file, { head: ELF_HEADER_CHECK }), { name: file, programTypes: options.programTypes });
    const fixupMap = maxEntriesFixup(spec, options.maxEntries);
    try {
      object = new BpfObject(await loadObjectAsync(spec, {
        logLevel: options.verbose >= 2 ? 2 : 1, onWarning: err, pinRoot: options.pinRoot,
        ...(fixupMap === undefined ? {} : { fixupMap }),
        ...(options.programs === undefined ? {} : { programs: options.programs }),
        ...(options.keepGoing ? { onProgramError: 'skip' as const } : {}),
      }));
    } catch (e) {
      if (!(e instanceof VerifierError)) throw e;
      if (options.verbose > 0) process.stderr.write(`${e.log}\n`);
      err(options.verbose > 0 ? e.message : `${e.message}; -v prints the verifier log`);
      return EXIT.failure;
    }
    // The handlers are never removed: a signal after the cleanup (the process is about to exit) must not kill it
    // with the default action either; a second one exits with 130 as it would have.
    return await watchObject(object, options, stop, () => signals);
  } catch (e) {
    object?.close();
    throw e;
  }
}

// Long: a run's whole lifetime (handlers, attach, report, wait) in one try, so every exit shares the one cleanup.
async function watchObject(object: BpfObject, options: CliOptions, stop: AbortController, signals: () => number): Promise<number> {
  // An error nobody caught (a callback, a stream) must not leave programs attached: detach, report, exit 1.
  const onUncaught = (e: unknown) => {
    try {
      object.close();
    } finally {
      process.stderr.write(`bpf-load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nbpf-load: detached and closed everything\n`);
      process.exit(1);
    }
  };
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);

  try {
    // A signal during the load: clean up instead of attaching.
    if (stop.signal.aborted) return EXIT.ok;
    for (const name of options.hist) {
      if (!object.maps.some((m) => m.name === name)) {
        throw new UsageError(`--hist ${name}: ${options.file} has no map of that name (its maps: ${object.maps.map((m) => m.name).join(', ') || 'none'})`);
      }
    }
    // Opened before attaching, so a bad --event-type fails while nothing is attached; records wait for the report.
    const early: string[] = [];
    let showEvent = (line: string): void => {
      early.push(line);
    };
    const events = options.events
      ? startEventStream(object.loaded, { json: options.json, type: options.eventType }, stop.signal, (line) => showEvent(line))
      : undefined;
    const attached: AttachResult[] = options.attach
      ? object.attachAll({
        iface: options.iface, xdpMode: options.xdpMode, force: options.force, sampleFreq: options.sampleFreq, tcMode: options.tcMode,
        skip: options.skip, ...(options.cgroup === undefined ? {} : { cgroup: options.cgroup }),
      })
      : [];
    if (options.keepAttached) {
      // Everything stays or nothing does: a failed attachment undoes the whole run (close() below detaches).
      const failure = attached.find((a) => a.error !== undefined);
      if (failure?.error !== undefined) throw failure.error;
    }
    const pins = options.pin === undefined ? undefined : object.pin(options.pin, { links: options.keepAttached });
    const pinned = pins === undefined ? [] : [...pins.programs, ...pins.maps, ...pins.links];
    // A terminal gets one screen redrawn in place; a pipe gets plain lines, one round after another.
    const paint = colourFor(process.stdout);
    const screen = !options.json && process.stdout.isTTY === true ? new LiveScreen(process.stdout) : undefined;
    if (options.json) out(jsonReport(object.loaded, attached, options, pinned));
    else if (screen !== undefined && !options.keepAttached) screen.setHeader(reportLines(object.loaded, attached, options, pinned, paint));
    else out(reportLines(object.loaded, attached, options, pinned, paint).join('\n'));
    if (options.keepAttached) {
      // close() in finally releases the pinned links (they stay attached) and closes our fds.
      if (!options.json) out(`left attached; to undo: bpf-load detach ${options.pin}`);
      return EXIT.ok;
    }
    // The exit status tells scripts what the FAILED rows tell people; the programs that did attach keep running.
    // On a terminal screen the stderr lines would be drawn over: they come after it.
    const failed = attached.filter((a) => a.error !== undefined);
    const failureLines = () => { for (const a of failed) err(failureText(a.error!, options)); };
    const deferFailures = screen !== undefined && process.stderr.isTTY === true;
    if (!deferFailures) failureLines();

    // String literals and constant pools never change: watching them is noise.
    const watched = options.allMaps ? object.maps : object.maps.filter((m) => !/^\.rodata\.(str|cst)/.test(m.spec.section) || m.spec.source !== 'data');
    const show = screen === undefined ? out : (line: string) => screen.addScrolling(line);
    if (events !== undefined && !options.json && options.count !== 0) show(`streaming records from ${events.maps.join(', ')} as they arrive (--no-events: off)`);
    showEvent = show;
    for (const line of early.splice(0)) show(line);
    const tracing = options.tracePipe ? streamTracePipe(options.json, stop.signal, show) : undefined;
    let previous: { maps: MapRound[]; at: number } | undefined;
    for (let round = 1; options.count === undefined || round <= options.count; round++) {
      try {
        await sleep(options.interval * 1000, undefined, { signal: stop.signal });
      } catch {
        break; // aborted by a signal
      }
      const maps = readRound(watched, options.perCpu, options.hist);
      const now = performance.now();
      const rates = options.rate && previous !== undefined ? { previous: previous.maps, seconds: (now - previous.at) / 1000 } : undefined;
      previous = { maps, at: now };
      if (options.json) {
        const unreadable = maps.filter((m) => m.unreadable !== undefined);
        out(JSON.stringify({
          round, maps: Object.fromEntries(maps.map((m) => [m.name, m.entries])),
          ...(unreadable.length > 0 ? { unreadable: Object.fromEntries(unreadable.map((m) => [m.name, m.unreadable])) } : {}),
        }));
      } else if (screen !== undefined) {
        screen.setBody(['', ...renderRound(round, maps, paint, rates).trimEnd().split('\n')]);
      } else {
        out(renderRound(round, maps, paint, rates));
      }
    }
    stop.abort('done');
    // --trace-pipe was asked for: a trace_pipe that could not be read (another reader holds it) fails the run.
    const traceFailed = (await tracing) === false;
    await events?.done;
    screen?.end();
    if (deferFailures) failureLines();
    // A requested program the kernel refused (--keep-going went on without it) fails the run too.
    const refused = object.loaded.skipped.some((s) => s.error !== undefined || options.programs !== undefined);
    return failed.length > 0 || refused || traceFailed ? EXIT.failure : EXIT.ok;
  } finally {
    object.close();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    if (!options.json && signals() > 0) err('detached and closed everything');
  }
}

function jsonReport(object: LoadedObject, attached: readonly AttachResult[], options: CliOptions, pinned: readonly string[]): string {
  const byProgram = new Map(attached.map((a) => [a.program, a]));
  return JSON.stringify({
      file: object.spec.file,
      programs: object.programs.map((p) => {
        const a = byProgram.get(p);
        return {
          name: p.name, section: p.section, type: p.type, id: p.id, tag: p.tag, attached: a?.link !== undefined,
          ...(a?.link === undefined ? {} : { kind: a.link.kind, target: a.link.target }),
          ...(a?.skipped === undefined ? {} : { skipped: a.skipped }),
          ...(a?.error === undefined ? {} : { error: failureText(a.error, options) }),
          ...(options.attach ? {} : { skipped: '--no-attach' }),
        };
      }),
      skipped: object.skipped.map((s) => ({ name: s.spec.name, section: s.spec.section, reason: s.reason })),
      maps: object.maps.map((m) => ({
        name: m.name, type: m.type, id: m.id, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.spec.maxEntries,
        ...(sizeNote(object, m) === undefined ? {} : { sizeNote: sizeNote(object, m) }),
      })),
      ...(pinned.length > 0 ? { pinned } : {}),
  });
}

/** The text report: what was loaded, where each program is attached (or why not), the maps and pins. */
function reportLines(object: LoadedObject, attached: readonly AttachResult[], options: CliOptions, pinned: readonly string[], paint: Paint): string[] {
  const byProgram = new Map(attached.map((a) => [a.program, a]));
  const lines = [paint('bold', `loaded ${object.spec.file}: ${object.programs.length} program(s), ${object.maps.length} map(s)`)];
  for (const p of object.programs) {
    const a = byProgram.get(p);
    const what = `${p.name} (${p.section}, ${p.type}, id ${p.id}, tag ${p.tag})`;
    if (!options.attach) lines.push(`  ${paint('yellow', 'loaded  ')}  ${what}: not attached (--no-attach)`);
    else if (a?.link !== undefined) lines.push(`  ${paint('green', 'attached')}  ${what} → ${a.link.kind} ${a.link.target}`);
    else if (a?.error !== undefined) lines.push(`  ${paint('red', 'FAILED  ')}  ${what}: ${failureText(a.error, options)}`);
    else lines.push(`  ${paint('yellow', 'loaded  ')}  ${what}: not attached: ${a?.skipped ?? 'unknown'}`);
  }
  if (options.verbose > 0) for (const s of object.skipped) if (s.error instanceof VerifierError) process.stderr.write(`${s.error.log}\n`);
  for (const s of object.skipped) lines.push(`  ${s.error === undefined ? paint('yellow', 'skipped ') : paint('red', 'FAILED  ')}  ${s.spec.name} (${s.spec.section}): ${s.reason}`);
  for (const m of object.maps) {
    const note = sizeNote(object, m);
    lines.push(`  map       ${m.name} (${m.type}, id ${m.id}, key ${m.keySize} B, value ${m.valueSize} B, max ${m.spec.maxEntries}${note === undefined ? '' : `: ${note}`})`);
  }
  for (const path of pinned) lines.push(`  pinned    ${path}`);
  if (options.count === undefined && !options.keepAttached) lines.push(paint('dim', 'showing non-zero map entries; Ctrl-C to detach and exit'));
  return lines;
}

/** `--max-entries NAME=N` as a fixupMap hook; a name no map has is a usage error that lists the maps. */
function maxEntriesFixup(spec: BpfObjectSpec, maxEntries: Readonly<Record<string, number>>): LoadOptions['fixupMap'] {
  const names = Object.keys(maxEntries);
  if (names.length === 0) return undefined;
  for (const name of names) {
    if (!spec.maps.some((m) => m.name === name)) {
      throw new UsageError(`--max-entries ${name}: ${spec.file} has no map named ${name} (maps: ${spec.maps.map((m) => m.name).join(', ') || 'none'})`);
    }
  }
  return (map) => {
    const n = maxEntries[map.name];
    if (n !== undefined) map.def.maxEntries = n;
  };
}

/** Says when the loader sized a map differently from its definition (libbpf's rules for perf arrays and ring buffers). */
function sizeNote(object: LoadedObject, m: LoadedObject['maps'][number]): string | undefined {
  const declared = object.spec.maps.find((d) => d.name === m.name)?.maxEntries;
  if (declared === undefined || declared === m.spec.maxEntries) return undefined;
  if (m.type === 'perf_event_array') return `declared ${declared}, one slot per possible CPU`;
  if (m.type === 'ringbuf' || m.type === 'user_ringbuf') return `declared ${declared}, rounded up to a power-of-two multiple of the page size`;
  return `declared ${declared}`;
}

/** An attach failure as the CLI says it: the library's message, plus the flag that would change the outcome. */
function failureText(error: Error, options: CliOptions): string {
  return error instanceof AttachConflictError && !options.force ? `${error.message}; --force replaces it` : error.message;
}

/** Streams trace_pipe until `signal`; false when it could not be read (the error is said on stderr at once). */
async function streamTracePipe(json: boolean, signal: AbortSignal, show: (line: string) => void): Promise<boolean> {
  try {
    for await (const line of readTracePipe({ signal })) {
      // bpf_trace_printk formats usually end in \n, which trace_pipe follows with its own: an empty line per event.
      if (line.trim() === '') continue;
      show(json ? JSON.stringify({ trace: parseTraceLine(line) ?? { message: line } }) : `trace: ${line}`);
    }
    return true;
  } catch (e) {
    if (signal.aborted) return true;
    err(`trace_pipe: ${(e as Error).message}`);
    return false;
  }
}
