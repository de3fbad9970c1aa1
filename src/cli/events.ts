import { toHex } from '../base/cursor.js';
import { isEventMap, openEvents, type BufferEvent, type EventReader, type LoadedObject } from '../load/index.js';

/**
 * The live view's event stream: every ring buffer and perf event array of the object read through one reader, one
 * line per record as it arrives (text), or one JSON object per line:
 *   {"event":"<map>","cpu":<n|null>,"data":"<hex>"[,"value":{…}]}   a record ("value" when decoded through BTF)
 *   {"event":"<map>","cpu":<n>,"lost":<n>}                          records a full perf ring dropped
 */
export interface EventStream {
  /** The maps being read. */
  readonly maps: readonly string[];
  /** Resolves when the stream has stopped (signal aborted) and released everything. */
  readonly done: Promise<void>;
}

/**
 * Starts streaming when the object has event maps; undefined when it has none. `type` names the BTF type records
 * are decoded as (default: a struct named `event` when there is one). Throws before anything is read when the type
 * does not exist, so the caller fails while nothing is attached yet.
 */
export function startEventStream(
  object: LoadedObject, options: { readonly json: boolean; readonly type: string | Readonly<Record<string, string>> | undefined }, signal: AbortSignal,
  write: (line: string) => void,
): EventStream | undefined {
  const maps = object.maps.filter(isEventMap);
  if (maps.length === 0) return undefined;
  const type = options.type;
  const reader: EventReader = openEvents(maps, {
    signal, ...(type === undefined ? {} : typeof type === 'string' ? { type } : { types: type }),
  });
  const done = reader.listen((e) => write(options.json ? eventJson(e) : eventText(e))).finally(() => reader.close());
  return { maps: maps.map((m) => m.name), done };
}

export function eventJson(e: BufferEvent): string {
  if (e.kind === 'lost') return JSON.stringify({ event: e.map, cpu: e.cpu, lost: e.lost });
  return JSON.stringify({ event: e.map, cpu: e.cpu, data: toHex(e.data), ...(e.value === undefined ? {} : { value: e.value }) });
}

export function eventText(e: BufferEvent): string {
  const where = e.cpu === null ? e.map : `${e.map} cpu ${e.cpu}`;
  if (e.kind === 'lost') return `event ${where}: lost ${e.lost} record(s): the perf ring was full`;
  const shown = e.value === undefined ? toHex(e.data) : typeof e.value === 'object' && e.value !== null ? JSON.stringify(e.value) : String(e.value);
  return `event ${where}: ${shown}`;
}
