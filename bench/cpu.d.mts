/** Types of bench/cpu.mjs, for the TypeScript tests that pin a thread with it. */
export const threadId: () => string;
export function onOneCpu<T>(body: (cpu: number) => T, options?: { last?: boolean }): T;
