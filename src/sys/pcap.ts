/**
 * libpcap's filter compiler, reached through koffi: pcap_compile() on a "dead" handle (no interface, no capture)
 * turns a pcap-filter expression into the classic program tcpdump would use. libpcap is optional at run time: it is
 * loaded on first use, and its absence is a clear error saying how to install it or what to pass instead.
 */
import type * as Koffi from 'koffi';
import { BpfLoadError, withContext } from '../base/errors.js';
import { ffi } from './ffi.js';

/** libpcap is missing, or refused an expression (its own message, e.g. `syntax error`). */
export class PcapError extends BpfLoadError {
  override name = 'PcapError';
}

/** LINKTYPE_* link types (the pcap spec's numbers, which capture files carry) that name how a capture's frames begin. */
export const LinkType = { NULL: 0, EN10MB: 1, RAW: 101, LOOP: 108, LINUX_SLL: 113, LINUX_SLL2: 276 } as const;

const PCAP_NETMASK_UNKNOWN = 0xffffffff;
/** Sonames Debian, Fedora and Alpine ship; the unversioned name only exists with the -dev package. */
const SONAMES = ['libpcap.so.1', 'libpcap.so.0.8', 'libpcap.so'];

interface Libpcap {
  readonly openDead: (linkType: number, snaplen: number) => unknown;
  readonly compile: (handle: unknown, program: Record<string, unknown>, expression: string, optimize: number, netmask: number) => number;
  readonly geterr: (handle: unknown) => string;
  readonly freecode: (program: Record<string, unknown>) => void;
  readonly close: (handle: unknown) => void;
  readonly linkTypeByName: (name: string) => number;
}

/** Names the libpcap to use (a path or soname) instead of searching SONAMES: for a libpcap outside the loader's path. */
export const LIBPCAP_ENV = 'BPF_LOAD_LIBPCAP';

let bound: Libpcap | undefined;

function libpcap(): Libpcap {
  if (bound !== undefined) return bound;
  const koffi = ffi();
  let lib: Koffi.LibraryHandle | undefined;
  const chosen = process.env[LIBPCAP_ENV];
  let failure = '';
  for (const soname of chosen === undefined || chosen === '' ? SONAMES : [chosen]) {
    try {
      lib = koffi.load(soname);
      break;
    } catch (e) {
      failure = `${soname}: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  if (lib === undefined) {
    const which = chosen === undefined || chosen === '' ? 'libpcap, which is not installed' : `libpcap, and ${LIBPCAP_ENV} names one that does not load (${failure})`;
    throw new PcapError(`compiling a pcap-filter expression needs ${which}: install it ` +
      '(apt-get install libpcap0.8, dnf install libpcap, apk add libpcap), or pass the program itself: ' +
      `--filter "$(tcpdump -ddd 'EXPR')"`);
  }
  // Declared once per process: koffi type names are global.
  koffi.struct('bpf_load_bpf_program', { bf_len: 'uint32_t', bf_insns: 'void *' });
  bound = {
    openDead: lib.func('void *pcap_open_dead(int linktype, int snaplen)'),
    compile: lib.func('int pcap_compile(void *p, _Inout_ bpf_load_bpf_program *fp, const char *str, int optimize, uint32_t netmask)'),
    geterr: lib.func('const char *pcap_geterr(void *p)'),
    freecode: lib.func('void pcap_freecode(_Inout_ bpf_load_bpf_program *fp)'),
    close: lib.func('void pcap_close(void *p)'),
    linkTypeByName: lib.func('int pcap_datalink_name_to_val(const char *name)'),
  };
  return bound;
}

/**
 * Capture files number link types LINKTYPE_* (the pcap spec); pcap_open_dead takes the platform's DLT_*. They are the
 * same number except 100-103, which files use because the DLT_ values of those differ between systems (libpcap's
 * linktype_to_dlt; the DLT_ values are Linux's). A DLT_ value from pcap_datalink_name_to_val passes unchanged.
 */
const LINKTYPE_TO_DLT: Readonly<Record<number, number>> = { 100: 11, 101: 12, 102: 15, 103: 16 };

export interface PcapCompileOptions {
  /** LINKTYPE_* (as capture files number them) or DLT_* of the frames the program will see (default Ethernet, as tcpdump -d assumes). */
  readonly linkType?: number;
  /** Bytes a match keeps, the value of `ret #k` (default 262144, tcpdump's). */
  readonly snaplen?: number;
  /** libpcap's optimizer (default on, as tcpdump without -O). */
  readonly optimize?: boolean;
}

/**
 * Compiles a pcap-filter expression with the system's libpcap; returns the raw struct sock_filter bytes (host byte
 * order), which the cbpf layer decodes and checks.
 */
export function pcapCompile(expression: string, options: PcapCompileOptions = {}): Buffer {
  if (expression.includes('\0')) throw new PcapError(`filter ${JSON.stringify(expression)}: contains a NUL byte`);
  const pcap = libpcap();
  const linkType = options.linkType ?? LinkType.EN10MB;
  const handle = pcap.openDead(LINKTYPE_TO_DLT[linkType] ?? linkType, options.snaplen ?? 262144);
  if (handle === null) throw new PcapError(withContext(['pcap_open_dead'], `link type ${options.linkType} refused`));
  try {
    const program: Record<string, unknown> = { bf_len: 0, bf_insns: null };
    if (pcap.compile(handle, program, expression, options.optimize === false ? 0 : 1, PCAP_NETMASK_UNKNOWN) !== 0) {
      throw new PcapError(withContext([`filter ${JSON.stringify(expression)}`], pcap.geterr(handle)));
    }
    try {
      const length = program['bf_len'] as number;
      // Copied out before pcap_freecode releases libpcap's array.
      return Buffer.from(new Uint8Array(ffi().view(program['bf_insns'], length * 8)));
    } finally {
      pcap.freecode(program);
    }
  } finally {
    pcap.close(handle);
  }
}

/** A DLT_ name (EN10MB, LINUX_SLL, RAW … as tcpdump -y takes) → its number, through libpcap's own table. */
export function pcapLinkTypeByName(name: string): number | undefined {
  const value = libpcap().linkTypeByName(name);
  return value < 0 ? undefined : value;
}
