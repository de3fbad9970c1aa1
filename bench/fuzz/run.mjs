/**
 * `npm run fuzz [-- --cases N --seed S --from I]`: the parser fuzz target of test/fuzz/parse.test.ts, for as long as
 * asked (default 1,000,000 cases), on the built library (dist/). Each case is a mutated seed object (c-samples/*.o and
 * ../shared/corpus when present) that must give a spec or a one-line BpfLoadError, leave its input unchanged, and
 * finish within --bound ms.
 *
 * Findings go to fuzz-findings/ (gitignored): `<seed>-<index>.o` (the input) and `<seed>-<index>.txt` (mutations,
 * problem, stack). A case that hangs is caught by a watchdog: the cases run in a worker that publishes the index it
 * is on; when the index stops moving for --hang ms, the case is saved as a hang and the run goes on after it.
 * `--seed S --from I --cases 1` replays one case.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { judgeCase, mutator } from './mutator.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FINDINGS = join(ROOT, 'fuzz-findings');

function seedFiles() {
  const files = readdirSync(join(ROOT, 'c-samples')).filter((f) => f.endsWith('.o')).map((f) => join(ROOT, 'c-samples', f));
  const walk = (dir) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.o') || e.name.endsWith('.elf')) files.push(p);
    }
    return true;
  };
  const corpus = join(ROOT, '..', 'shared', 'corpus');
  if (!walk(corpus)) process.stderr.write(`fuzz: ${corpus} is absent: seeds are c-samples only\n`);
  return files.sort().map((path) => ({ name: basename(path), bytes: new Uint8Array(readFileSync(path)) }));
}

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
      from: { type: 'string', default: '0' },
      bound: { type: 'string', default: '1000' },
      hang: { type: 'string', default: '30000' },
    },
  });
  const seed = Number(values.seed);
  const end = Number(values.from) + Number(values.cases);
  const bound = Number(values.bound);
  const hangMs = Number(values.hang);
  const seeds = seedFiles();
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const started = Date.now();
  let findings = 0;
  let outcomes = { spec: 0, error: 0 };
  let slowest = { ms: 0, index: -1 };
  process.stderr.write(`fuzz: seed ${seed}, cases ${values.from}..${end - 1}, ${seeds.length} seed objects, findings in ${FINDINGS}\n`);

  const save = (index, text, bytes) => {
    mkdirSync(FINDINGS, { recursive: true });
    writeFileSync(join(FINDINGS, `${seed}-${index}.o`), bytes);
    writeFileSync(join(FINDINGS, `${seed}-${index}.txt`), text);
    findings++;
    process.stderr.write(`fuzz: finding at case ${index}: ${text.split('\n')[0]}\n`);
  };

  const runFrom = (from) => new Promise((resolveRun) => {
    Atomics.store(progress, 0, from);
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { seed, from, end, bound, progress } });
    let last = from;
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(progress, 0);
      if (now !== last) {
        last = now;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < hangMs) return;
      clearInterval(watchdog);
      const c = mutator(seeds, seed)(now);
      save(now, `hang: no result within ${hangMs} ms\nsource ${c.source}\nmutations: ${c.mutations.join('; ')}\n`, c.bytes);
      worker.removeAllListeners('exit');
      void worker.terminate().then(() => resolveRun(now + 1));
    }, 1000);
    worker.on('message', (m) => {
      if (m.finding !== undefined) save(m.finding.index, m.finding.text, m.finding.bytes);
      if (m.done !== undefined) {
        outcomes = { spec: outcomes.spec + m.done.spec, error: outcomes.error + m.done.error };
        if (m.done.slowest.ms > slowest.ms) slowest = m.done.slowest;
      }
      if (m.tick !== undefined) process.stderr.write(`fuzz: ${m.tick} cases, ${((Date.now() - started) / 1000).toFixed(0)} s, ${findings} findings\n`);
    });
    worker.on('exit', (code) => {
      clearInterval(watchdog);
      if (code === 0) return resolveRun(end);
      // The worker died (out of memory, a native crash): the case it was on is the finding; go on after it.
      const at = Atomics.load(progress, 0);
      const c = mutator(seeds, seed)(at);
      save(at, `crash: the worker exited with code ${code}\nsource ${c.source}\nmutations: ${c.mutations.join('; ')}\n`, c.bytes);
      resolveRun(at + 1);
    });
  });

  let next = Number(values.from);
  while (next < end) next = await runFrom(next);
  const seconds = (Date.now() - started) / 1000;
  const total = end - Number(values.from);
  process.stdout.write(`fuzz: ${total} cases in ${seconds.toFixed(0)} s (${(total / seconds).toFixed(0)}/s): ` +
    `${outcomes.spec} specs, ${outcomes.error} typed errors, slowest case ${slowest.index} at ${slowest.ms.toFixed(1)} ms; ${findings} findings\n`);
  process.exitCode = findings === 0 ? 0 : 1;
} else {
  const { seed, from, end, bound, progress } = workerData;
  const { parseObject, BpfLoadError } = await import('../../dist/index.js');
  const { describeObject } = await import('../../dist/object/describe.js');
  const { dumpChunks } = await import('../../dist/cli/dump.js');
  const make = mutator(seedFiles(), seed);
  const counts = { spec: 0, error: 0, slowest: { ms: 0, index: -1 } };
  const flush = () => {
    parentPort.postMessage({ done: counts });
    counts.spec = 0;
    counts.error = 0;
    counts.slowest = { ms: 0, index: -1 };
  };
  for (let index = from; index < end; index++) {
    Atomics.store(progress, 0, index);
    const c = make(index);
    const j = judgeCase(c.bytes, {
      parse: (bytes) => parseObject(bytes, { name: c.source }),
      use: (spec) => {
        describeObject(spec);
        for (const chunk of dumpChunks(spec)) void chunk;
      },
      isTypedError: (e) => e instanceof BpfLoadError,
    });
    counts[j.outcome]++;
    if (j.ms > counts.slowest.ms) counts.slowest = { ms: j.ms, index };
    const problem = j.problem ?? (j.ms > bound ? `slow: ${j.ms.toFixed(0)} ms (bound ${bound} ms)` : undefined);
    if (problem !== undefined) {
      parentPort.postMessage({ finding: { index, bytes: c.bytes, text: `${problem}\nsource ${c.source}\nmutations: ${c.mutations.join('; ')}\n${j.stack ?? ''}\n` } });
    }
    if ((index + 1) % 50_000 === 0) {
      flush();
      parentPort.postMessage({ tick: index + 1 - from });
    }
  }
  flush();
}
