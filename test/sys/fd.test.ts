import { openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ClassicProgram, Fd, KernelClassicMatcher, loadClassicFilter, openObject, SysArgumentError } from '../../src/index.js';
import { catchError } from '../helpers/errors.js';
import { kernelTest, noLeaks, openFdCount } from '../helpers/kernel.js';
import { rawClose } from '../../src/sys/ffi.js';

/** `ret #0xffff`: accepts every packet. */
const ACCEPT_ALL: ClassicProgram = [{ code: 0x06, jt: 0, jf: 0, k: 0xffff }];

describe('Fd', () => {
  it('a borrowed view closes for its holder only: the owner still has the descriptor', () => {
    const raw = openSync('/dev/null', 'r');
    try {
      const view = Fd.borrow(raw, 'null device');
      expect(view.owned).toBe(false);
      view.close();
      expect(view.closed).toBe(true);
      expect(() => view.value).toThrow('null device (borrowed): used after its fd was closed');
      expect(rawClose(raw)).toBe(0); // still open: closing it ourselves succeeds
    } catch (e) {
      rawClose(raw);
      throw e;
    }
  });

  it('Fd.with closes however the body ends, and returns what the body returned', () => {
    const before = openFdCount();
    let seen: Fd | undefined;
    expect(Fd.with(openSync('/dev/null', 'r'), 'null device', (fd) => ((seen = fd), 7))).toBe(7);
    expect(seen?.closed).toBe(true);
    expect(catchError(() => Fd.with(openSync('/dev/null', 'r'), 'null device', () => {
      throw new Error('body failed');
    })).message).toBe('body failed');
    expect(openFdCount()).toBe(before);
  });

  it('noLeaks names a leaked Fd: what it is and where it was made', () => {
    let leaked: Fd | undefined;
    try {
      const error = catchError(() => noLeaks(() => {
        leaked = new Fd(openSync('/dev/null', 'r'), 'null device left open on purpose');
      }));
      expect(error.message).toMatch(/^1 fd\(s\) left open: null device left open on purpose \(fd \d+\) made at .*fd\.test\.ts/);
    } finally {
      leaked?.close();
    }
  });

  kernelTest('noLeaks names a kernel object the library made and nobody closed', () => {
    let leaked: Fd | undefined;
    try {
      const error = catchError(() => noLeaks(() => {
        leaked = loadClassicFilter(ACCEPT_ALL, { name: 'leak_probe' });
      }));
      expect(error.message).toContain('classic filter leak_probe (fd ');
      expect(error.message).toMatch(/made at .*src\/load\/classic\.ts.*fd\.test\.ts/);
    } finally {
      leaked?.close();
    }
    // Closed, the same body passes the check.
    noLeaks(() => {
      using matcher = new KernelClassicMatcher(ACCEPT_ALL, { name: 'no_leak' });
      expect(matcher.match(new Uint8Array(60))).toBe(0xffff);
    });
  });

  kernelTest('programs, maps and links of an attached object are all Fds, and close() releases every one', () => {
    Fd.track(true);
    try {
      const before = new Set(Fd.openFds());
      const obj = openObject('c-samples/raw_tp_kern.o');
      obj.attach(obj.programs[0]!);
      const made = Fd.openFds().filter((r) => !before.has(r)).map((r) => r.what.split(' ')[0]);
      expect(made).toContain('program');
      expect(made).toContain('map');
      expect(made).toContain('link');
      obj.close();
      expect(Fd.openFds().filter((r) => !before.has(r))).toEqual([]);
      expect(() => obj.programs[0]!.fd).toThrow(SysArgumentError);
    } finally {
      Fd.track(false);
    }
  });
});
