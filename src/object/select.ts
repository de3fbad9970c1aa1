import { ObjectError } from './errors.js';
import type { BpfObjectSpec, ProgramSpec } from './spec.js';

/** What loading only some programs needs: those programs, and every map they reach. */
export interface ProgramSelection {
  readonly programs: ReadonlySet<ProgramSpec>;
  /** Map names: used by the programs or the subprograms they call, inner maps and map-of-maps contents of those. */
  readonly maps: ReadonlySet<string>;
}

/**
 * Picks programs by name (or section name) and the maps they need. Pure: it follows relocations through called
 * subprograms, map-in-map templates and static map-of-maps slots, and the prog arrays tail-call sections go into.
 */
export function selectPrograms(spec: BpfObjectSpec, names: readonly string[]): ProgramSelection {
  const programs = new Set<ProgramSpec>();
  for (const name of names) {
    const found = spec.programs.filter((p) => p.name === name || p.section === name);
    if (found.length === 0) {
      throw new ObjectError({ file: spec.file }, `no program named ${name} (programs: ${spec.programs.map((p) => p.name).join(', ') || 'none'})`);
    }
    for (const p of found) programs.add(p);
  }
  const maps = new Set<string>();
  const functions = new Set<string>();
  const visit = (fn: { name: string; relocations: ProgramSpec['relocations'] }) => {
    if (functions.has(fn.name)) return;
    functions.add(fn.name);
    for (const r of fn.relocations) {
      if (r.kind === 'map') addMap(spec, r.target, maps);
      else if (r.kind === 'data') addMap(spec, spec.maps.find((m) => m.source === 'data' && m.section === r.target)?.name, maps);
      else if (r.kind === 'call' || r.kind === 'func_addr') {
        const callee = spec.subprograms.find((s) => s.name === r.target) ?? spec.programs.find((p) => p.name === r.target);
        if (callee !== undefined) visit(callee);
      }
    }
  };
  for (const p of programs) {
    visit(p);
    if (p.tailCallMapId !== undefined) addMap(spec, spec.maps.find((m) => m.iproute2?.id === p.tailCallMapId)?.name, maps);
    else if (p.tailCallSlot !== undefined) addMap(spec, spec.maps.filter((m) => m.typeName === 'prog_array').at(-1)?.name, maps);
  }
  return { programs, maps };
}

function addMap(spec: BpfObjectSpec, name: string | undefined, out: Set<string>): void {
  if (name === undefined || out.has(name)) return;
  out.add(name);
  const map = spec.maps.find((m) => m.name === name);
  if (map === undefined) return;
  if (map.innerMap !== undefined) addMap(spec, map.innerMap, out);
  if (map.typeName === 'array_of_maps' || map.typeName === 'hash_of_maps') {
    for (const slot of map.initialSlots ?? []) addMap(spec, slot.target, out);
    // iproute2: maps that fill this map-in-map's slots (their id is its inner_id).
    const innerId = map.iproute2?.innerId;
    if (innerId !== undefined && innerId !== 0) {
      for (const m of spec.maps) if (m.iproute2?.id === innerId && m.iproute2.innerId === 0) addMap(spec, m.name, out);
    }
  }
}
