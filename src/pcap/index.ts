/** Captures: strict pcap/pcapng reading, a pcap writer, tcpdump -n-style packet summaries. Pure: no files, no kernel. */
export {
  CaptureError, type CapturedPacket, CaptureCursor, type CaptureSource, type CaptureFormat, type CaptureHeader, captureFormat, readCapture, readCaptureHeader,
} from './read.js';
export { type PacketToWrite, PcapStreamWriter, type PcapWriteOptions, writePcap } from './write.js';
export { type PacketSummary, summarizePacket, formatPacketTime } from './summary.js';
