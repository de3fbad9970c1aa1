/** Types of bench/fuzz/mutator.mjs, for the TypeScript fuzz test. */
export type Field = [offset: number, width: number, littleEndian: boolean, group: string];
export interface Rng { next(): number; int(n: number): number; pick<T>(list: readonly T[]): T }
export interface FuzzCase { bytes: Uint8Array; source: string; mutations: string[] }
export interface Judgement { outcome: 'spec' | 'error'; ms: number; problem: string | undefined; stack: string | undefined }
export function rng(seed: number): Rng;
export function fieldsOf(bytes: Uint8Array): Field[];
export function mutator(seeds: ReadonlyArray<{ name: string; bytes: Uint8Array }>, seed: number, options?: { groups?: readonly string[] }): (index: number) => FuzzCase;
export function judgeCase<S>(bytes: Uint8Array, how: {
  parse: (bytes: Uint8Array) => S; use: (spec: S) => unknown; isTypedError: (e: unknown) => boolean;
}): Judgement;
