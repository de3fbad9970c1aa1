/** Types of bench/crafted.mjs, for the TypeScript tests that share its generators. */
export interface CraftedSection {
  name: string;
  type: number;
  flags?: number;
  data?: Uint8Array;
  link?: number;
  info?: number;
  entsize?: number;
}
export interface CraftedSymbol {
  name: string;
  type: number;
  shndx: number;
  value?: number;
  size?: number;
}
export function writeElf(sections: CraftedSection[], symbols: CraftedSymbol[] | undefined): Uint8Array;
export function dataSections(n: number): Uint8Array;
export function programSections(n: number): Uint8Array;
export function legacyMapRelocs(n: number): Uint8Array;
export function btfMaps(n: number, options?: { pinByName?: boolean; prefix?: string }): Uint8Array;
export const CRAFTED_SHAPES: ReadonlyArray<{ name: string; build: () => Uint8Array; maps: number; programs: number }>;
