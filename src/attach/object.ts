/**
 * BpfObject: a loaded object and the attachments made through it. It owns both: close() detaches its links (a pinned
 * link is released instead, so it stays attached), then closes every program and map fd.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BpfObjectSpec } from '../object/index.js';
import {
  pinObject, unpinAll, type LoadedObject, type LoadedProgram, type MapHandle, type VariableHandle,
} from '../load/index.js';
import { attachAll, attachProgram, type AttachAllOptions, type AttachResult } from './index.js';
import { AttachError, type AttachOptions, type Link } from './link.js';

/** What BpfObject.pin() pinned, by kind: the paths `bpf-load detach DIR` removes. */
export interface PinnedPaths {
  readonly programs: readonly string[];
  readonly maps: readonly string[];
  readonly links: readonly string[];
}

/** Where pinned links go under a pin directory: DIR/links/<program>. */
export const LINKS_DIR = 'links';

export class BpfObject implements Disposable {
  readonly loaded: LoadedObject;
  readonly #links: Link[] = [];

  constructor(loaded: LoadedObject) {
    this.loaded = loaded;
  }
  get spec(): BpfObjectSpec {
    return this.loaded.spec;
  }
  get programs(): readonly LoadedProgram[] {
    return this.loaded.programs;
  }
  get maps(): readonly MapHandle[] {
    return this.loaded.maps;
  }
  /** The attachments made through this object and not detached yet. */
  get links(): readonly Link[] {
    return this.#links;
  }
  map(name: string): MapHandle {
    return this.loaded.map(name);
  }
  program(name: string): LoadedProgram {
    return this.loaded.program(name);
  }
  /** A global variable (.data/.bss read and write, .rodata read; set .rodata with LoadOptions.globals). */
  variable(name: string): VariableHandle {
    return this.loaded.variable(name);
  }
  /** Attaches one program (by name, section or handle) where its section says. */
  attach(program: string | LoadedProgram, options: AttachOptions = {}): Link {
    const link = attachProgram(this.loaded, typeof program === 'string' ? this.loaded.program(program) : program, options);
    this.#links.push(link);
    return link;
  }
  /** Attaches every program it can; reports attached, skipped and failed ones. */
  attachAll(options: AttachAllOptions = {}): AttachResult[] {
    const results = attachAll(this.loaded, options);
    for (const r of results) if (r.link !== undefined) this.#links.push(r.link);
    return results;
  }

  /**
   * Pins programs at DIR/<program>, maps at DIR/maps/<map>, and (with `links`) every attachment at
   * DIR/links/<program>, so they outlive the process: after close() the programs stay attached. With `links`, an
   * attachment that is not a BPF link is an AttachError before anything is pinned.
   */
  pin(dir: string, options: { links?: boolean } = {}): PinnedPaths {
    if (options.links === true) {
      const unpinnable = this.#links.filter((l) => l.fd === undefined);
      if (unpinnable.length > 0) {
        throw new AttachError(`${unpinnable.map((l) => `${l.kind} attachment of ${l.program} (${l.target})`).join(', ')}: not a BPF link, so it cannot stay attached after this process exits`);
      }
    }
    const paths = pinObject(this.loaded, dir);
    const programs = paths.slice(0, this.loaded.programs.length);
    const maps = paths.slice(this.loaded.programs.length);
    const pinnedLinks: Link[] = [];
    if (options.links === true && this.#links.length > 0) {
      try {
        const linksDir = join(resolve(dir), LINKS_DIR);
        mkdirSync(linksDir, { recursive: true });
        for (const link of this.#links) {
          link.pin(join(linksDir, link.program));
          pinnedLinks.push(link);
        }
      } catch (e) {
        // All or nothing: a half-pinned object would stay half-attached after close().
        for (const link of pinnedLinks) link.unpin();
        unpinAll(paths);
        throw e;
      }
    }
    return { programs, maps, links: pinnedLinks.map((l) => l.pinnedPath!) };
  }

  /** Detaches unpinned links and releases pinned ones (newest first), then closes every fd; throws the first failure. */
  close(): void {
    const errors: unknown[] = [];
    for (const link of this.#links.splice(0).reverse()) {
      try {
        if (link.pinnedPath !== undefined) link.release();
        else link.detach();
      } catch (e) {
        errors.push(e);
      }
    }
    try {
      this.loaded.close();
    } catch (e) {
      errors.push(e);
    }
    if (errors.length > 0) throw errors[0];
  }
  [Symbol.dispose](): void {
    this.close();
  }
}
