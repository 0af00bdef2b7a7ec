// Preloaded into the generator's process by the memory test (`node
// --expose-gc --import` this file). Every 200 ms it runs a full collection and
// records what is still reachable: the V8 heap in use plus the memory behind
// Buffers and ArrayBuffers. At exit it prints the peak as one
// `live-memory <bytes>` line on stderr. After a full collection garbage is not
// counted, so unlike resident memory (RSS) the figure does not depend on when
// the collector last ran or on what the allocator keeps for later.

const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new Error('live-memory.ts needs node --expose-gc');

let peak = 0;
const sample = () => {
  collect();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  peak = Math.max(peak, heapUsed + arrayBuffers);
};
setInterval(sample, 200).unref();
process.on('exit', () => {
  sample();
  process.stderr.write(`live-memory ${peak}\n`);
});
