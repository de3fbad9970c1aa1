/**
 * The CLI as users run it (`npm run build`, after tsc): tsc's dist/cli/main.js and everything it imports bundled into
 * dist/bin/bpf-load.cjs, the package's `bin`. Start-up is most of a small command's time, and one file per mode
 * replaces the ESM loader's per-module resolve, open and compile (35 modules for --dump).
 *  - CommonJS: Node loads it synchronously, without the ESM loader's asynchronous job graph (measured below the ESM
 *    bundle in CPU time for --dump, a load and --filter).
 *  - Code splitting kept: each mode's dynamic import becomes a chunk required when that mode runs, so --dump never
 *    reads the loader (a single file measured slower for --dump and --filter: V8 still pre-parses all of it).
 *  - koffi stays outside (a native addon, required on the first system call); node: built-ins are Node's.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';

export default {
  input: { 'bpf-load': 'dist/cli/main.js' },
  platform: 'node',
  external: ['koffi', /^node:/],
  output: {
    dir: 'dist/bin',
    format: 'cjs',
    entryFileNames: '[name].cjs',
    chunkFileNames: '[name]-[hash].cjs',
    cleanDir: true,
  },
  // Executable, as a bin is run (`npx bpf-load` in this directory runs the file itself; npm's install links chmod it).
  plugins: [{ name: 'executable-bin', writeBundle: (options) => chmodSync(join(options.dir, 'bpf-load.cjs'), 0o755) }],
};
