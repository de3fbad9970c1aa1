import { describe, expect, it } from 'vitest';
import { renderRound, readRound, field } from '../../src/cli/watch.js';
import { MapHandle } from '../../src/load/index.js';
import { parseTraceLine } from '../../src/attach/tracefs.js';
import type { MapSpec } from '../../src/object/index.js';
import { Fd } from '../../src/sys/index.js';

const spec = (type: number, typeName: string): MapSpec => ({
  name: 'm', index: 0, source: 'legacy', section: 'maps', offset: 0, type, typeName: typeName as MapSpec['typeName'],
  keySize: 4, valueSize: 4, maxEntries: 2, flags: 0, numaNode: 0, innerMapIndex: undefined, innerMap: undefined,
  pinning: 'none', definitionSize: 20, definition: new Uint8Array(20),
});

describe('the live view', () => {
  it('integers for 1/2/4/8-byte fields (strings beyond 2^53), hex otherwise', () => {
    expect(field(Uint8Array.of(7, 0, 0, 0))).toBe(7);
    expect(field(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toBe('18446744073709551615');
    expect(field(Uint8Array.of(1, 2, 3))).toBe('010203');
  });

  it('says why a map user space cannot list is not shown, without touching the kernel', () => {
    // A closed (borrowed) fd: reaching it for any syscall throws, so this proves none is made.
    const fd = Fd.borrow(0, 'fake sockmap');
    fd.close();
    const sockmap = new MapHandle({ spec: spec(15, 'sockmap'), fd, cpus: 1 });
    expect(readRound([sockmap], false)).toEqual([{ name: 'm', entries: [], unreadable: 'sockmap: holds sockets' }]);
    expect(renderRound(1, readRound([sockmap], false))).toContain('m: (not shown: sockmap: holds sockets)');
  });

  it('shows at most 32 entries per map in text, and how many more there are', () => {
    const entries = Array.from({ length: 40 }, (_, i) => ({ key: i, value: i * 2 }));
    const text = renderRound(3, [{ name: 'big', entries }]);
    expect(text.split('\n').filter((l) => l.includes('→'))).toHaveLength(32);
    expect(text).toContain('… 8 more (--json shows every entry)');
    expect(text).toMatch(/^--- round 3 \(\d\d:\d\d:\d\d\) ---\n/);
  });

  it('trace_pipe lines split into task, pid, cpu, flags, timestamp and message', () => {
    expect(parseTraceLine('            node-14025   [000] ...21  1512.328254: bpf_trace_printk: bpf-load hello pid 14025')).toEqual({
      task: 'node', pid: 14025, cpu: 0, flags: '...21', timestamp: 1512.328254, message: 'bpf-load hello pid 14025',
    });
    // Task names may hold spaces and dashes; some kernels print the tgid in parentheses.
    expect(parseTraceLine(' kworker/u4:2-my task-77 (     77) [001] d.h1. 9.000001: hi - there')).toMatchObject({ task: 'kworker/u4:2-my task', pid: 77, cpu: 1, message: 'hi - there' });
    expect(parseTraceLine('# tracer: nop')).toBeUndefined();
  });
});
