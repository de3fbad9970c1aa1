import { spawn, spawnSync } from 'node:child_process'; // the port under test and ping (traffic on lo) as real processes: argument arrays, no shell
import { copyFileSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTypes } from '../../src/gen/generate.js';
import { parseObject } from '../../src/object/index.js';
import { runCli } from '../helpers/cli.js';
import { kernelTest, PROJECT_ROOT, SAMPLES_DIR } from '../helpers/kernel.js';
import { ConsumerDir } from '../gen/support.js';

describe('bpf-load gen', () => {
  let consumer: ConsumerDir;
  beforeAll(() => {
    consumer = new ConsumerDir({ emitBesideSources: true });
  });
  afterAll(() => consumer.remove());

  it('writes the library generator\'s module, byte-identical run after run, to stdout or --out', () => {
    const first = runCli(['gen', 'c-samples/skel_kern.o']);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(runCli(['gen', 'c-samples/skel_kern.o']).stdout).toBe(first.stdout);
    const spec = parseObject(readFileSync(join(SAMPLES_DIR, 'skel_kern.o')), { name: 'c-samples/skel_kern.o' });
    // Run from the project root, so the object is ./c-samples/skel_kern.o relative to stdout's reader.
    expect(first.stdout).toBe(generateTypes(spec, { objectName: 'skel_kern.o', objectPath: './c-samples/skel_kern.o' }));
    const out = join(consumer.dir, 'skel.ts');
    expect(runCli(['gen', 'c-samples/skel_kern.o', '--out', out, '--name', 'Flows']).status).toBe(0);
    const written = readFileSync(out, 'utf8');
    expect(written).toContain('export class Flows extends Skeleton<ProgramName> {');
    expect(written).toMatch(/const OBJECT: SkeletonSource = \{ file: "(\.\.\/)+.*c-samples\/skel_kern\.o", from: import\.meta\.url \};/);
    const embedded = runCli(['gen', 'c-samples/skel_kern.o', '--embed']).stdout;
    expect(embedded).toContain('base64: [');
    expect(embedded).not.toContain('import.meta.url');
  });

  it('usage errors exit 2, unreadable objects 1, each with one line', () => {
    const noFile = runCli(['gen']);
    expect(noFile.status).toBe(2);
    expect(noFile.stderr).toBe("bpf-load: gen: missing the object FILE\nTry 'bpf-load --help'.\n");
    expect(runCli(['gen', 'a.o', 'b.o']).stderr).toMatch(/^bpf-load: gen: expected one object file, got 2: a\.o b\.o\n/);
    expect(runCli(['gen', 'c-samples/skel_kern.o', '--name', 'not-an-identifier']).status).toBe(2);
    const outOnLoad = runCli(['c-samples/skel_kern.o', '--out', 'x.ts']);
    expect(outOnLoad.status).toBe(2);
    expect(outOnLoad.stderr).toMatch(/^bpf-load: --out does not apply to loading a FILE \(only to bpf-load gen\)/);
    const badEventType = runCli(['gen', 'c-samples/skel_kern.o', '--event-type', 'events']);
    expect(badEventType.status).toBe(2);
    expect(badEventType.stderr).toMatch(/^bpf-load: --event-type expects MAP=TYPE \(a map name, a BTF type name\), not "events"\n/);
    const unknownType = runCli(['gen', 'c-samples/skel_kern.o', '--event-type', 'events=missing']);
    expect(unknownType.status).toBe(1);
    expect(unknownType.stderr).toBe('bpf-load: skel_kern.o: map events: event type missing: no struct, union or typedef of that name in the BTF\n');
    expect(runCli(['gen', 'c-samples/skel_kern.o', '--event-type', 'events=point']).stdout).toContain('records are `struct point`, decoded by pointCodec: `.read()` yields them.');
    const missing = runCli(['gen', 'c-samples/nope.o']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('bpf-load: c-samples/nope.o: no such file\n');
    const notBpf = runCli(['gen', 'package.json']);
    expect(notBpf.status).toBe(1);
    expect(notBpf.stderr.split('\n')).toHaveLength(2);
    expect(runCli(['gen', 'c-samples/skel_kern.o', '--out', '/nonexistent-dir/x.ts']).stderr).toBe('bpf-load: /nonexistent-dir/x.ts: cannot write (ENOENT)\n');
  });

  kernelTest('the sockex1 port on its generated skeleton type-checks strictly and counts ICMP bytes on lo', async () => {
    // The README's workflow: gen next to the program, tsc emits beside the sources, node runs the port.
    const port = startExample('sockex1_kern', 'sockex1/sockex1');
    await Promise.race([port.firstLine, port.exited]); // the first report comes after attach
    const ping = spawnSync('ping', ['-c', '5', '-i', '0.2', '-q', '127.0.0.1'], { timeout: 15_000 });
    expect(ping.status).toBe(0);
    expect(await port.exited).toBe(0);
    const { stdout, stderr } = port.output();
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line).toMatch(/^TCP \d+ UDP \d+ ICMP \d+ bytes$/);
    // Five 84-byte echo requests and five replies, counted as they leave lo: at least 840 bytes.
    expect(Number(/ICMP (\d+)/.exec(lines.at(-1)!)![1])).toBeGreaterThanOrEqual(840);
  }, 60_000);

  /** Runs examples/<example>.ts on its object's generated skeleton: gen (the CLI), tsc beside the sources, node. */
  function startExample(object: string, example: string): { exited: Promise<number | null>; firstLine: Promise<void>; output(): { stdout: string; stderr: string } } {
    const gen = runCli(['gen', join(SAMPLES_DIR, `${object}.o`), '--out', join(consumer.dir, `${object}.ts`)]);
    expect(gen.status).toBe(0);
    const file = `${basename(example)}.ts`;
    copyFileSync(join(PROJECT_ROOT, 'examples', `${example}.ts`), join(consumer.dir, file));
    const compiled = consumer.compile();
    expect(compiled.output).toBe('');
    const child = spawn(process.execPath, [consumer.compiled(file)], { cwd: consumer.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let seen: () => void = () => {};
    const firstLine = new Promise<void>((resolve) => { seen = resolve; });
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      seen();
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { exited, firstLine, output: () => ({ stdout, stderr }) };
  }

  kernelTest('the skeleton examples: xdp_swap test-run by name, and a typed ring buffer reader that sees our getpid() calls', async () => {
    const swap = startExample('test_run_kern', 'skeleton/xdp-swap');
    expect(await swap.exited).toBe(0);
    const swapped = swap.output();
    expect(swapped.stderr).toBe('');
    expect(swapped.stdout).toMatch(/^in: {2}dst 020000000001 src 020000000002\nout: dst 020000000002 src 020000000001 → XDP_TX \(\d+ ns\)\n$/);

    const watch = startExample('ringbuf_kern', 'skeleton/getpid');
    await Promise.race([watch.firstLine, watch.exited]);
    // A process that calls getpid() far more often than anything else here, inside the example's two seconds.
    const caller = spawnSync('python3', ['-c', 'import os\nfor _ in range(50000): os.getpid()'], { timeout: 10_000 });
    expect(caller.status).toBe(0);
    expect(await watch.exited).toBe(0);
    const { stdout, stderr } = watch.output();
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('watching getpid() for 2 s');
    const mine = lines.find((l) => l.startsWith(`pid ${caller.pid} (python3): `));
    expect(mine, stdout).toBeDefined();
    // The ring may fill (64 KiB) while 50,000 calls race the reader: the count is the last record seen.
    expect(Number(/: (\d+) getpid\(\) calls$/.exec(mine!)![1])).toBeGreaterThan(1000);
    expect(lines.at(-2)).toMatch(/^\d+ processes in all$/);
    expect(lines.at(-1)).toMatch(/^records dropped: \d+$/);
  }, 90_000);
});
