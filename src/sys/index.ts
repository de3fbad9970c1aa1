/** The sys layer: every system call bpf-load makes, and nothing else touches koffi. */
export {
  Errno, type ErrnoName, errnoName, errnoText, SysError, type SysErrorInit, KernelFeatureError, SysArgumentError,
  UnsupportedPlatformError,
} from './errors.js';
export { AttrWriter, cString, OutputSlab, SYSCALL_NUMBERS, type SyscallTable, syscallNumbers } from './ffi.js';
export { Prot, pageSize, mmapShared, mmapSharedWithSpare, type Mapping } from './mmap.js';
export {
  BpfCommand, type BpfCommandName, UpdateFlags, FileFlags, AttachFlags, QueryFlags, LINK_TYPE_NAMES, type LinkTypeName, linkTypeName,
  BPF_OBJ_NAME_LEN, BPF_TAG_SIZE, BPF_ATTR, BPF_PROG_INFO, BPF_MAP_INFO, BPF_LINK_INFO,
  bpfCall, bpfCallAsync, closeFd,
} from './bpf.js';
export {
  type MapCreateAttr, encodeMapCreate, mapCreate, mapLookupElem, MapLookup, mapUpdateElem, mapDeleteElem, mapGetNextKey, mapFreeze,
  type MapLookupBatchRequest, type MapLookupBatchResult, mapLookupBatch, batchUnsupported,
} from './bpf-map.js';
export { type ProgLoadAttr, encodeProgLoad, progLoad, progLoadAsync, type BtfLoadAttr, btfLoad } from './bpf-prog.js';
export {
  objPin, objGet,
  progGetNextId, mapGetNextId, linkGetNextId, progGetFdById, mapGetFdById, linkGetFdById,
  objGetInfoByFd, type ProgInfo, type MapInfo, type LinkInfo, parseProgInfo, parseMapInfo, parseLinkInfo,
  progInfo, mapInfo, linkInfo, bpfObjectKind,
} from './bpf-object.js';
export {
  type ProgAttachAttr, progAttach, progDetach, type ProgQueryResult, progQuery, rawTracepointOpen,
  type LinkCreateAttr, linkCreate, linkDetach, linkUpdate,
} from './bpf-attach.js';
export { type ProgInstructions, progInstructions, btfGetFdById, btfRawData } from './inspect.js';
export { EpollSet, epollEventLayout, PERF_EVENT_MMAP_PAGE } from './events.js';
export {
  PerfType, PerfSwConfig, PerfHwConfig, PerfSample, PerfAttrFlag, PerfOpenFlags, PerfIoctl, PERF_EVENT_ATTR,
  type PerfEventAttr, encodePerfEventAttr, perfEventOpen, perfEventEnable, perfEventDisable, perfEventReset,
  perfEventSetBpf,
} from './perf.js';
export {
  Sock, SOCKADDR_LL, SOCKADDR_NL, ifNameToIndex, openRawSocket, setSocketOption, getSocketOption,
  attachSocketFilter, detachSocketFilter, openNetlinkSocket, netlinkSend, netlinkReceive,
  attachClassicSocketFilter, lockSocketFilter, type ReceivedPacket, receivePacket,
} from './socket.js';
export { Fd, type OpenFdRecord } from './fd.js';
export {
  MountFlags, UnmountFlags, mount, unmount, type MountEntry, parseMounts, mountedFsType, parseCpuList,
  possibleCpuCount, onlineCpus,
} from './fs.js';
export {
  Nl, NetlinkError, type NetlinkMessage, netlinkRequest, netlinkReader, netlinkMessages, netlinkAttributes, netlinkAttribute,
  netlinkString, align4,
} from './netlink.js';
export { PcapError, LinkType, type PcapCompileOptions, pcapCompile, pcapLinkTypeByName } from './pcap.js';
export { BPF_TEST_RUN_ATTR, type ProgTestRunAttr, type ProgTestRunResult, progTestRun, PacketTestRun, packetTestRun } from './test-run.js';
