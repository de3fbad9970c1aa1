import { styleText } from 'node:util';

type Style = Parameters<typeof styleText>[0];

/** Text styling for one output stream: util.styleText when colour is on, the text unchanged when off. */
export type Paint = (style: Style, text: string) => string;

/**
 * Colour is on for a terminal that has colours, unless NO_COLOR is set (no-color.org); FORCE_COLOR turns it on
 * anywhere (FORCE_COLOR=0 off), as Node and most tools read them.
 */
export function colourFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Paint {
  const force = env['FORCE_COLOR'];
  const on = force !== undefined ? force !== '0' && force !== 'false'
    : (env['NO_COLOR'] ?? '') !== '' ? false
      : stream.isTTY === true && (stream.hasColors?.() ?? false);
  // validateStream: false: the decision above is ours (newer Nodes would otherwise strip colour in pipes).
  return on ? (style, text) => styleText(style, text, { validateStream: false }) : (_style, text) => text;
}

const ESC = '\x1b[';
/** Cursor home, then each line followed by erase-to-end-of-line, then erase below: redraws without flicker. */
const HOME = `${ESC}H`;
const ERASE_LINE = `${ESC}K`;
const ERASE_BELOW = `${ESC}J`;
const CLEAR = `${ESC}2J`;

/**
 * The live view on a terminal: one screen redrawn in place — the fixed part (programs, maps) at the top, the newest
 * trace or event lines scrolling in what is left below. Lines are cut to the terminal's width so nothing wraps.
 */
export class LiveScreen {
  readonly #stream: NodeJS.WriteStream;
  #top: string[] = [];
  #body: string[] = [];
  readonly #scroll: string[] = [];
  #started = false;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
  }

  /** The load report: stays at the top. */
  setHeader(lines: readonly string[]): void {
    this.#top = [...lines];
    this.draw();
  }

  /** The latest round of map values, under the header. */
  setBody(lines: readonly string[]): void {
    this.#body = [...lines];
    this.draw();
  }

  /** A trace or event line: kept (as many as fit) below the maps. */
  addScrolling(line: string): void {
    this.#scroll.push(line);
    const keep = Math.max(this.#rows(), 1);
    if (this.#scroll.length > keep) this.#scroll.splice(0, this.#scroll.length - keep);
    this.draw();
  }

  draw(): void {
    const rows = this.#rows();
    const width = this.#stream.columns > 0 ? this.#stream.columns : 80;
    const fixed = [...this.#top, ...this.#body];
    const room = rows - fixed.length - 1;
    const scroll = room > 0 ? this.#scroll.slice(-room) : [];
    const lines = [...fixed, ...(scroll.length > 0 ? ['', ...scroll] : [])].slice(0, rows);
    const text = lines.map((l) => `${cut(l, width)}${ERASE_LINE}`).join('\n');
    this.#stream.write(`${this.#started ? '' : CLEAR}${HOME}${text}${ERASE_BELOW}`);
    this.#started = true;
  }

  /** Leaves the last screen as it is and moves below it, so what follows (the shell prompt) does not overwrite it. */
  end(): void {
    if (this.#started) this.#stream.write('\n');
  }

  #rows(): number {
    return this.#stream.rows > 0 ? this.#stream.rows - 1 : 23;
  }
}

/** Cuts a line to `width` visible characters, keeping escape sequences whole and closing any style left open. */
function cut(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      if (end > 0) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width - 1 && i < line.length - 1) return `${out}…${ESC}0m`;
    out += line[i];
    visible++;
  }
  return out;
}
