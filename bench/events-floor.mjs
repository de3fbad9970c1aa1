/**
 * The floor of row (j): the plainest JavaScript consumers of the same rings the library reads, with no library in
 * between — mappings of their own made through the sys layer, and loops that walk the records and read what the C
 * callbacks read (a record's first byte and its length). Whatever any JavaScript consumer costs on this machine is
 * at least this. The loops follow HOT_LOOP_RULE (src/load/record-view.ts): arguments in, nothing after the loop but
 * return; `out` gets the record count and the sum as they go.
 */

/** Ring buffer records from `position` to `producer` (data area mapped twice: a record that wraps reads on). */
function bareRingLoop(words, bytes, out, offset, position, producer, mask) {
  let count = 0;
  let sum = 0;
  while (position < producer) {
    const header = words[offset >>> 2];
    if (header < 0) break; // BUSY
    const length = header & 0x3fff_ffff;
    const step = (length + 15) & ~7;
    if ((header & 0x4000_0000) === 0) {
      sum += bytes[offset + 8] + length;
      out[0] = ++count;
      out[1] = sum;
    }
    position += step;
    offset = (offset + step) & mask;
  }
  return position;
}

/**
 * Perf ring records from `position` to `head`. A header never straddles the end of the ring (records are 8-byte
 * multiples); a sample's raw size and first byte may lie past it, so they are read through the mask.
 */
function barePerfLoop(words, bytes, out, offset, position, head, mask) {
  let count = 0;
  let sum = 0;
  while (position < head) {
    const type = words[offset >>> 2];
    const size = words[(offset >>> 2) + 1] >>> 16;
    if (size === 0) break; // not a record: stop rather than loop
    if (type === 9) { // PERF_RECORD_SAMPLE: u32 raw size, then the raw bytes
      sum += bytes[(offset + 12) & mask] + words[((offset + 8) & mask) >>> 2];
      out[0] = ++count;
      out[1] = sum;
    }
    position += size;
    offset = (offset + size) & mask;
  }
  return position;
}

/** Maps ring buffer `map` a second time and consumes it with bareRingLoop; `sys` is the built sys layer. */
export function bareRingConsumer(sys, map) {
  const page = sys.pageSize();
  const size = map.spec.maxEntries;
  const consumerPage = sys.mmapShared(map.fd, page, sys.Prot.READ | sys.Prot.WRITE, 0, 'bench floor ring');
  let producer;
  try {
    producer = sys.mmapShared(map.fd, page + 2 * size, sys.Prot.READ, page, 'bench floor ring');
  } catch (e) {
    consumerPage.unmap();
    throw e;
  }
  const consumerPos = new BigUint64Array(consumerPage.buffer, 0, 1);
  const producerPos = new BigUint64Array(producer.buffer, 0, 1);
  const words = new Int32Array(producer.buffer, page, (2 * size) / 4);
  const bytes = new Uint8Array(producer.buffer, page, 2 * size);
  const out = new Float64Array(2);
  let sum = 0;
  return {
    /** Consumes what is ready; returns the records. */
    consume() {
      const consumer = Number(Atomics.load(consumerPos, 0));
      out[0] = 0;
      out[1] = 0;
      const end = bareRingLoop(words, bytes, out, consumer % size, consumer, Number(Atomics.load(producerPos, 0)), size - 1);
      Atomics.store(consumerPos, 0, BigInt(end));
      sum += out[1];
      return out[0];
    },
    sum: () => sum,
    close() {
      producer.unmap();
      consumerPage.unmap();
    },
  };
}

/**
 * Opens a BPF output event and a perf ring of `pagesPerCpu` pages per online CPU, writes their fds into perf event
 * array `map` (replacing whatever reader held the slots: close that one first) and consumes them with barePerfLoop.
 */
export function barePerfConsumer(sys, map, pagesPerCpu) {
  const page = sys.pageSize();
  const L = sys.PERF_EVENT_MMAP_PAGE;
  const key = Buffer.alloc(4);
  const value = Buffer.alloc(4);
  const rings = [];
  const close = () => {
    for (const r of rings.splice(0)) {
      key.writeUInt32LE(r.cpu, 0);
      sys.mapDeleteElem(map.fd, key);
      sys.perfEventDisable(r.fd.value);
      r.mapping?.unmap();
      r.fd.close();
    }
  };
  try {
    for (const cpu of sys.onlineCpus().filter((c) => c < map.spec.maxEntries)) {
      const what = `bench floor perf cpu ${cpu}`;
      const fd = new sys.Fd(sys.perfEventOpen({
        type: sys.PerfType.SOFTWARE, config: sys.PerfSwConfig.BPF_OUTPUT, sampleType: sys.PerfSample.RAW, samplePeriod: 1, wakeupEvents: 1,
      }, -1, cpu), what);
      const r = { cpu, fd };
      rings.push(r);
      r.mapping = sys.mmapShared(fd.value, (pagesPerCpu + 1) * page, sys.Prot.READ | sys.Prot.WRITE, 0, what);
      r.control = new BigUint64Array(r.mapping.buffer, 0, L.size / 8);
      const dataOffset = Number(r.control[L.data_offset / 8]);
      const dataSize = Number(r.control[L.data_size / 8]);
      r.words = new Uint32Array(r.mapping.buffer, dataOffset, dataSize / 4);
      r.bytes = new Uint8Array(r.mapping.buffer, dataOffset, dataSize);
      r.mask = dataSize - 1;
      key.writeUInt32LE(cpu, 0);
      value.writeUInt32LE(fd.value, 0);
      sys.mapUpdateElem(map.fd, key, value);
      sys.perfEventEnable(fd.value);
    }
  } catch (e) {
    close();
    throw e;
  }
  const out = new Float64Array(2);
  let sum = 0;
  return {
    /** Consumes what every CPU's ring holds; returns the samples. */
    consume() {
      let total = 0;
      for (const r of rings) {
        const head = Number(Atomics.load(r.control, L.data_head / 8));
        const tail = Number(r.control[L.data_tail / 8]);
        if (tail >= head) continue;
        out[0] = 0;
        out[1] = 0;
        const end = barePerfLoop(r.words, r.bytes, out, tail & r.mask, tail, head, r.mask);
        Atomics.store(r.control, L.data_tail / 8, BigInt(end));
        total += out[0];
        sum += out[1];
      }
      return total;
    },
    sum: () => sum,
    close,
  };
}
