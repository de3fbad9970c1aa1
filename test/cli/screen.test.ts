import { spawn, spawnSync } from 'node:child_process'; // spawns python3 (a pseudo-terminal) and our CLI with argument arrays: no shell
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { colourFor } from '../../src/cli/screen.js';
import { CLI, runCli } from '../helpers/cli.js';
import { kernelTest, PROJECT_ROOT } from '../helpers/kernel.js';

const stream = (isTTY: boolean, colours = true) => ({ isTTY, hasColors: () => colours }) as unknown as NodeJS.WriteStream;

/**
 * Runs the CLI on a 40x120 pseudo-terminal; returns what the terminal received. The environment is a person's: no
 * NO_COLOR/FORCE_COLOR, and no CI (under CI=true Node reports a terminal as two-colour, so nothing would be coloured).
 */
function onTerminal(args: readonly string[], env: NodeJS.ProcessEnv = {}): { status: number | null; screen: string } {
  const r = spawnSync('python3', [join(PROJECT_ROOT, 'test', 'helpers', 'on-terminal.py'), process.execPath, CLI, ...args], {
    cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 30_000,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NO_COLOR' && k !== 'FORCE_COLOR' && k !== 'CI')), ...env },
  });
  if (r.error !== undefined) throw new Error(`python3 is needed to run the CLI on a pseudo-terminal: ${r.error.message}`);
  return { status: r.status, screen: r.stdout };
}

const HOME = '\x1b[H';
const COLOUR = /\x1b\[3\dm/;

describe('colour', () => {
  it('on for a terminal with colours; NO_COLOR turns it off; FORCE_COLOR on anywhere (0 off)', () => {
    expect(colourFor(stream(true), {})('red', 'x')).toBe('\x1b[31mx\x1b[39m');
    expect(colourFor(stream(true, false), {})('red', 'x')).toBe('x');
    expect(colourFor(stream(false), {})('red', 'x')).toBe('x');
    expect(colourFor(stream(true), { NO_COLOR: '1' })('red', 'x')).toBe('x');
    expect(colourFor(stream(false), { FORCE_COLOR: '1' })('red', 'x')).toBe('\x1b[31mx\x1b[39m');
    expect(colourFor(stream(true), { FORCE_COLOR: '0' })('red', 'x')).toBe('x');
  });
});

describe('the live view on a terminal', () => {
  kernelTest('redraws one screen in place each round, in colour; the FAILED row in red; stderr after the screen', () => {
    const { status, screen } = onTerminal(['c-samples/sockex1_kern.o', '--count', '3', '--interval', '0.3']);
    expect(status, screen).toBe(0);
    // Cleared once, then every draw starts at the top left: the report, then one redraw per round.
    expect(screen.split('\x1b[2J')).toHaveLength(2);
    const draws = screen.split(HOME).slice(1);
    expect(draws).toHaveLength(4);
    for (const [i, draw] of draws.slice(1).entries()) {
      expect(draw).toMatch(/^\x1b\[1mloaded c-samples\/sockex1_kern\.o/);
      expect(draw).toContain(`--- round ${i + 1} (`);
      expect(draw).not.toContain(`--- round ${i + 2} (`);
      expect(draw).toMatch(/\x1b\[J(\r?\n)?$/);
    }
    expect(screen).toContain('\x1b[32mattached\x1b[39m');
    expect(screen).not.toContain('Ctrl-C');

    const failing = onTerminal(['c-samples/sockex1_kern.o', '--count', '1', '--interval', '0.1', '--iface', 'doesnotexist0']);
    expect(failing.status).toBe(1);
    expect(failing.screen).toContain('\x1b[31mFAILED  \x1b[39m');
    // The stderr line comes once the screen is done, so no redraw paints over it.
    const lastDraw = failing.screen.lastIndexOf(HOME);
    expect(failing.screen.indexOf('bpf-load: program bpf_prog1 (section socket1)')).toBeGreaterThan(lastDraw);
  }, 40_000);

  kernelTest('NO_COLOR: still redrawn in place, no colour; piped: plain lines, no escape sequences at all', () => {
    const plain = onTerminal(['c-samples/sockex1_kern.o', '--count', '1', '--interval', '0.1'], { NO_COLOR: '1' });
    expect(plain.status).toBe(0);
    expect(plain.screen).toContain(HOME);
    expect(plain.screen).not.toMatch(COLOUR);
    const piped = runCli(['c-samples/sockex1_kern.o', '--count', '2', '--interval', '0.1']);
    expect(piped.status).toBe(0);
    expect(piped.stdout).not.toContain('\x1b');
    expect(piped.stdout).toMatch(/--- round 1 \(\d\d:\d\d:\d\d\) ---\n[^]*--- round 2 /);
    const forced = spawnSync(process.execPath, [CLI, 'c-samples/sockex1_kern.o', '--count', '1', '--interval', '0.1'], {
      cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '1' },
    });
    expect(forced.stdout).toMatch(COLOUR);
    expect(forced.stdout).not.toContain(HOME);
  }, 40_000);

  kernelTest('--trace-pipe lines scroll below the maps, inside the redrawn screen', async () => {
    const child = spawn('python3', [join(PROJECT_ROOT, 'test', 'helpers', 'on-terminal.py'), process.execPath, CLI,
      'c-samples/trace_hello_kern.o', '--trace-pipe', '--count', '4', '--interval', '0.5'], { cwd: PROJECT_ROOT });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { screen += d; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // getpid from fresh processes, for the tracepoint to print.
    const poke = setInterval(() => spawnSync(process.execPath, ['-e', '']), 150);
    // A run that hangs must not outlive the test holding trace_pipe: killing the pty's owner hangs up the terminal,
    // and the CLI cleans up on SIGHUP.
    const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const status = await exited.finally(() => {
      clearInterval(poke);
      clearTimeout(deadline);
    });
    expect(status, screen).toBe(0);
    const draws = screen.split(HOME).slice(1);
    const withTrace = draws.filter((d) => /\ntrace: .*bpf-load hello pid \d+/.test(d.replace(/\r/g, '')));
    expect(withTrace.length).toBeGreaterThan(0);
    // The trace lines sit under the round's maps, in the same screen.
    const last = withTrace.at(-1)!.replace(/\r/g, '');
    expect(last.indexOf('--- round ')).toBeGreaterThan(0);
    expect(last.indexOf('trace: ')).toBeGreaterThan(last.indexOf('--- round '));
    // One screen: never more lines than the terminal's 40 rows.
    expect(last.replace(/\x1b\[J\n?$/, '').split('\n').length).toBeLessThanOrEqual(40);
  }, 40_000);
});
