/**
 * The error a call throws, for tests that inspect it. Fails the test when nothing is thrown, and when something of
 * another class is (rethrown as it was, so its own message and stack show).
 */
export function catchError(fn: () => unknown): Error;
export function catchError<T extends Error>(fn: () => unknown, type: abstract new (...args: never[]) => T): T;
export function catchError(fn: () => unknown, type: abstract new (...args: never[]) => Error = Error): Error {
  try {
    fn();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected ${type.name === 'Error' ? 'an error' : `a ${type.name}`}, none was thrown`);
}
