// Benchmark: the function's line counter against `wc -l`, and its peak memory.
//
//   node --import tsx bench/count-lines.ts [--size-mib 512] [--rounds 7]
//
// Inputs are generated once into bench/.data/ (git-ignored) and reused by later
// runs; `rm -rf bench/.data` frees the disk space (about 1.6 GiB by default).
// Throughput: every method reads the same file from the page cache, interleaved
// round by round so that machine noise hits all alike; the median round counts.
// Both scanners (the WebAssembly SIMD one the function uses and the indexOf loop
// it replaced) are timed through countLines, the streaming API the function
// calls, over three file sources: createReadStream (a fresh buffer per chunk),
// readSync into one reused buffer (copied into the WebAssembly memory), and
// readSync straight into the WebAssembly memory (counted where it lies). More
// rows split the time into its parts: reading without counting, and counting
// bytes already in memory. The cost of spawning a process is measured on
// /dev/null and subtracted from wc -l.
// Memory: each input is counted in a fresh child process that runs this file
// bundled by esbuild and reports its own peak resident set (VmHWM), so one
// measurement cannot inherit the other's heap.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  countLines,
  createWasmScanner,
  defaultScanner,
  indexOfScanner,
  type NewlineScanner,
} from '../lambda-image/count.ts';
import { ExitCode, wholeNumberProblem } from '../lib/cli.ts';

const MiB = 1024 * 1024;
const dataDir = join(dirname(fileURLToPath(import.meta.url)), '.data');
const benchFile = fileURLToPath(import.meta.url);

// One read size for every file source, so their rows compare the sources and
// not the sizes; 1 MiB reads measured within noise of 2 and 4 MiB, and clearly
// faster than createReadStream's 64 KiB default and than 256 KiB.
const readSize = MiB;
// S3 bodies arrive in chunks of about 16 KiB (one TLS record each).
const s3ChunkBytes = 16 * 1024;
// Counting "in memory" reuses this much of the file, pass after pass, instead
// of holding the whole input: a parent holding 512 MiB makes every fork (each
// wc -l) tens of milliseconds slower, which would blur the spawn-cost correction.
const inMemoryBytes = 64 * MiB;
const goals = { throughputRatio: 0.8, rssSpread: 0.1, rssCeilingMiB: 100 } as const;
const rssInputsMiB = [64, 1024] as const;
// Random printable ASCII lines of 0..160 bytes (mean ~80, like CSV exports).
const maxLineBytes = 160;
const childSources = { stream: 'stream', wasmMemory: 'wasm-memory' } as const;
type ChildSource = (typeof childSources)[keyof typeof childSources];

interface Options {
  sizeMiB: number;
  rounds: number;
}

interface ChildOptions {
  child: string;
  source: ChildSource;
}

function parseOptions(): Options | ChildOptions {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '512' },
      rounds: { type: 'string', default: '7' },
      'child-count': { type: 'string' },
      'child-source': { type: 'string', default: childSources.stream },
      help: { type: 'boolean', default: false },
    },
  });
  if (values['child-count'] !== undefined) {
    const source = Object.values(childSources).find((s) => s === values['child-source']);
    if (source === undefined) throw new Error(`unknown --child-source ${values['child-source']}`);
    return { child: values['child-count'], source };
  }
  if (values.help) {
    console.log('usage: node --import tsx bench/count-lines.ts [--size-mib 512] [--rounds 7]');
    process.exit(0);
  }
  const problems = [
    wholeNumberProblem('size-mib', values['size-mib'], 1),
    wholeNumberProblem('rounds', values.rounds, 1),
  ].filter((problem) => problem !== undefined);
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    process.exit(ExitCode.usage);
  }
  return { sizeMiB: Number(values['size-mib']), rounds: Number(values.rounds) };
}

// Written to a temporary name and renamed when complete, so an interrupted run
// never leaves a truncated file that a later run would take for finished.
async function ensureInput(sizeMiB: number): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, `lines-${sizeMiB}MiB.txt`);
  if (existsSync(path) && statSync(path).size === sizeMiB * MiB) return path;
  const partial = `${path}.partial`;
  process.stdout.write(`generating ${path} (${sizeMiB} MiB of random lines, once) ... `);
  const started = performance.now();
  const out = createWriteStream(partial);
  let untilNewline = Math.floor(Math.random() * (maxLineBytes + 1));
  for (let written = 0; written < sizeMiB * MiB; written += 4 * MiB) {
    const block = randomBytes(4 * MiB);
    for (let i = 0; i < block.length; i++) {
      if (untilNewline === 0) {
        block[i] = 10;
        untilNewline = Math.floor(Math.random() * (maxLineBytes + 1));
      } else {
        block[i] = 32 + ((block[i] as number) % 95);
        untilNewline--;
      }
    }
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await finished(out);
  renameSync(partial, path);
  console.log(`${((performance.now() - started) / 1000).toFixed(1)} s`);
  return path;
}

// The file sources. Each chunk that readInto yields is a view of the one
// buffer it reads into, valid until the next chunk is pulled; countLines pushes
// every chunk before it pulls the next, so no chunk is overwritten unread.
// readSync, like wc's read(2) loop, keeps reading on the counting thread: the
// FileHandle.read variant shows what the thread-pool hand-off of an async read
// costs on top.
async function* readInto(path: string, buffer: Uint8Array): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    closeSync(fd);
  }
}

async function* readIntoAsync(path: string, buffer: Uint8Array): AsyncGenerator<Uint8Array> {
  const file = await open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

function streamFile(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: readSize });
}

async function* sliceChunks(buffer: Uint8Array, size: number, passes: number): AsyncGenerator<Uint8Array> {
  for (let pass = 0; pass < passes; pass++) {
    for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size);
  }
}

async function countLinesOf(source: AsyncIterable<Uint8Array>, scanner: NewlineScanner): Promise<number> {
  return (await countLines(source, scanner)).lines;
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<undefined> {
  for await (const _chunk of source) {
    // reads and drops: the I/O floor a counter sits on
  }
  return undefined;
}

async function runWc(path: string): Promise<number> {
  const child = spawn('wc', ['-l', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`wc -l ${path} exited with ${code}`);
  return Number.parseInt(output.trim().split(/\s+/)[0] ?? '', 10);
}

async function timeIt<T>(run: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const started = performance.now();
  const result = await run();
  return { seconds: (performance.now() - started) / 1000, result };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

// The rule differs from wc -l only for a last line without a newline: wc counts
// newlines, the function counts that last line too.
function expectedWcLines(path: string, lines: number): number {
  const size = statSync(path).size;
  if (size === 0) return 0;
  const last = Buffer.alloc(1);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, last, 0, 1, size - 1);
  } finally {
    closeSync(fd);
  }
  return last[0] === 10 ? lines : lines - 1;
}

interface Method {
  name: string;
  // returns the line count, or undefined for a pass that only reads
  run(): Promise<number | undefined>;
  // the share of the file one run covers, when it is not the whole file
  scale?: number;
}

const headline = 'countLines[wasm, in place] ← readSync 1 MiB into WASM memory';
const functionPath = 'countLines[wasm] ← createReadStream 1 MiB';
const spawnCostRow = 'wc -l /dev/null (spawn cost)';
const wcNetRow = 'wc -l, spawn cost subtracted';

async function measureThroughput(path: string, rounds: number) {
  const sizeBytes = statSync(path).size;
  // The scanners' own instances: each owns its memory, so the in-place source
  // can read into it without racing the default scanner's copies.
  const inPlace = createWasmScanner(readSize);
  const inPlaceAsync = createWasmScanner(readSize);
  // Where read(2) writes matters on this kind of machine: into a buffer that
  // starts 16 bytes past a page boundary (where malloc places large blocks, so
  // every big Node Buffer) the kernel's copy out of the page cache ran ~4×
  // slower than into a page-aligned one. WebAssembly memory is page-aligned;
  // this one serves only as a plain buffer, which the default scanner copies
  // from like any other chunk.
  const reused = createWasmScanner(readSize).memory;
  const mallocked = Buffer.allocUnsafeSlow(readSize);
  const held = Buffer.allocUnsafeSlow(Math.min(sizeBytes, inMemoryBytes));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, held, 0, held.length, 0);
  } finally {
    closeSync(fd);
  }
  const passes = Math.max(1, Math.round(sizeBytes / held.length));
  const inMemory = { scale: sizeBytes / (passes * held.length) };
  const methods: Method[] = [
    { name: 'wc -l', run: () => runWc(path) },
    // what spawning a process costs this benchmark, subtracted from wc -l below
    { name: spawnCostRow, run: async () => (await runWc('/dev/null')) || undefined },
    { name: headline, run: () => countLinesOf(readInto(path, inPlace.memory), inPlace) },
    {
      name: 'countLines[wasm, in place] ← FileHandle.read 1 MiB into WASM memory',
      run: () => countLinesOf(readIntoAsync(path, inPlaceAsync.memory), inPlaceAsync),
    },
    {
      name: 'countLines[wasm] ← readSync 1 MiB reused buffer',
      run: () => countLinesOf(readInto(path, reused), defaultScanner),
    },
    {
      name: 'countLines[indexOf] ← readSync 1 MiB reused buffer',
      run: () => countLinesOf(readInto(path, reused), indexOfScanner),
    },
    {
      name: 'countLines[wasm] ← readSync 1 MiB reused Buffer (malloc)',
      run: () => countLinesOf(readInto(path, mallocked), defaultScanner),
    },
    { name: functionPath, run: () => countLinesOf(streamFile(path), defaultScanner) },
    {
      name: 'countLines[indexOf] ← createReadStream 1 MiB',
      run: () => countLinesOf(streamFile(path), indexOfScanner),
    },
    { name: 'read only ← readSync 1 MiB reused buffer', run: () => readAll(readInto(path, reused)) },
    {
      name: 'read only ← readSync 1 MiB reused Buffer (malloc)',
      run: () => readAll(readInto(path, mallocked)),
    },
    { name: 'read only ← createReadStream 1 MiB', run: () => readAll(streamFile(path)) },
    {
      name: 'countLines[wasm] ← in memory, 1 MiB chunks',
      run: async () => void (await countLines(sliceChunks(held, readSize, passes), defaultScanner)),
      ...inMemory,
    },
    {
      name: 'countLines[wasm] ← in memory, 16 KiB chunks',
      run: async () => void (await countLines(sliceChunks(held, s3ChunkBytes, passes), defaultScanner)),
      ...inMemory,
    },
    {
      name: 'countLines[indexOf] ← in memory, 1 MiB chunks',
      run: async () => void (await countLines(sliceChunks(held, readSize, passes), indexOfScanner)),
      ...inMemory,
    },
  ];
  // one untimed pass of each puts the file in the page cache and warms the JIT
  const counts = new Map<string, number | undefined>();
  for (const method of methods) counts.set(method.name, await method.run());
  const reference = counts.get(headline) as number;
  const wantWc = expectedWcLines(path, reference);
  for (const [name, lines] of counts) {
    if (lines === undefined) continue;
    const want = name === 'wc -l' ? wantWc : reference;
    if (lines !== want)
      throw new Error(`${name} counted ${lines} lines, expected ${want}: the counters disagree`);
  }
  const heldCounts = [defaultScanner, indexOfScanner].map((scanner) => scanner.countNewlines(held));
  if (heldCounts[0] !== heldCounts[1])
    throw new Error(`the scanners disagree on the in-memory bytes: ${heldCounts.join(' vs ')} newlines`);
  const seconds = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  for (let round = 1; round <= rounds; round++) {
    process.stdout.write(`round ${round}/${rounds} `);
    // rotate the order each round so no method always runs first
    for (let i = 0; i < methods.length; i++) {
      const method = methods[(i + round) % methods.length] as Method;
      const { seconds: took } = await timeIt(() => method.run());
      seconds.get(method.name)?.push(took / (method.scale ?? 1));
      process.stdout.write('.');
    }
    process.stdout.write('\n');
  }
  const spawnCost = median(seconds.get(spawnCostRow) as number[]);
  const rows = methods.map((m) => {
    const runs = seconds.get(m.name) as number[];
    return { name: m.name, medianSeconds: median(runs), runs };
  });
  const wcWall = rows.find((r) => r.name === 'wc -l')?.medianSeconds as number;
  rows.splice(2, 0, { name: wcNetRow, medianSeconds: wcWall - spawnCost, runs: [] });
  return { sizeBytes, rows, lines: reference, newlinesInMemory: heldCounts[0] as number, passes };
}

// VmHWM is this process's own high-water mark. getrusage's maxRSS is the
// fallback only: on Linux it survives execve, so a child forked from this
// benchmark (which holds the test file in memory) would report the parent's peak.
function readPeakRss(): { vmHwmKiB: number | undefined; maxRssKiB: number } {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return { vmHwmKiB: match ? Number(match[1]) : undefined, maxRssKiB: process.resourceUsage().maxRSS };
}

async function runChildCount(path: string, source: ChildSource): Promise<void> {
  const before = readPeakRss();
  let counted: { lines: number; bytes: number };
  if (source === childSources.stream) {
    counted = await countLines(streamFile(path));
  } else {
    const scanner = createWasmScanner(readSize);
    counted = await countLines(readInto(path, scanner.memory), scanner);
  }
  const { lines, bytes } = counted;
  const after = readPeakRss();
  process.stdout.write(`${JSON.stringify({ lines, bytes, before, after })}\n`);
}

// The child runs this file bundled by esbuild, as the function's image runs its
// bundle: no TypeScript loader in the process to inflate its memory.
async function bundleChild(): Promise<string> {
  const outfile = join(dataDir, 'count-lines.bundle.mjs');
  // imported here, not at the top, so the bundled child never loads esbuild itself
  const { build } = await import('esbuild');
  await build({
    entryPoints: [benchFile],
    bundle: true,
    platform: 'node',
    format: 'esm',
    external: ['esbuild'],
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

async function measurePeakRss(bundle: string, path: string, source: ChildSource) {
  const child = spawn(process.execPath, [bundle, '--child-count', path, '--child-source', source], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`child counting ${path} exited with ${code}`);
  const report = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as {
    lines: number;
    bytes: number;
    before: ReturnType<typeof readPeakRss>;
    after: ReturnType<typeof readPeakRss>;
  };
  const peakKiB = report.after.vmHwmKiB ?? report.after.maxRssKiB;
  const startKiB = report.before.vmHwmKiB ?? report.before.maxRssKiB;
  return {
    bytes: report.bytes,
    lines: report.lines,
    peakMiB: peakKiB / 1024,
    startMiB: startKiB / 1024,
  };
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function describeLoad(): string {
  return loadavg()
    .map((load) => load.toFixed(2))
    .join(' ');
}

function describeMachine(): string {
  const cpu = cpus();
  let wc = 'unknown';
  try {
    wc = execFileSync('wc', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? wc;
  } catch {
    // a wc without --version (BSD, busybox) still counts; its version is only reported
  }
  return [
    `CPU: ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} cores`,
    `memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `node: ${process.version} (${process.platform} ${process.arch})`,
    `wc: ${wc}`,
    `date: ${new Date().toISOString()}`,
    `load average (1, 5, 15 min): ${describeLoad()}`,
  ].join('\n');
}

function formatVerdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

async function runBenchmark(options: Options): Promise<void> {
  console.log(`${describeMachine()}\n`);
  console.log(`throughput: ${options.sizeMiB} MiB file, ${options.rounds} interleaved rounds, median`);
  const path = await ensureInput(options.sizeMiB);
  const { sizeBytes, rows, lines, newlinesInMemory, passes } = await measureThroughput(path, options.rounds);
  const secondsOf = (name: string) => rows.find((r) => r.name === name)?.medianSeconds as number;
  const wcNet = secondsOf(wcNetRow);
  const wcWall = secondsOf('wc -l');
  const speed = (s: number) => sizeBytes / MiB / s;
  console.log(`${lines} lines in ${path}; load average after: ${describeLoad()}`);
  console.log(
    formatTable(
      ['method', 'median s', 'MiB/s', '× wc -l', 'rounds (s)'],
      rows.map((r) => [
        r.name,
        r.medianSeconds.toFixed(3),
        r.name === spawnCostRow ? '' : speed(r.medianSeconds).toFixed(0),
        r.name === spawnCostRow ? '' : (wcNet / r.medianSeconds).toFixed(2),
        r.runs.map((s) => s.toFixed(3)).join(' '),
      ]),
    ),
  );
  console.log(
    `(in-memory rows: the first ${Math.min(sizeBytes, inMemoryBytes) / MiB} MiB counted ${passes}× and scaled to the file size)`,
  );
  // where the time goes, per unit of work
  const newlinesScaled = (newlinesInMemory * sizeBytes) / Math.min(sizeBytes, inMemoryBytes);
  const indexOfMemory = secondsOf('countLines[indexOf] ← in memory, 1 MiB chunks');
  const wasmMemory = secondsOf('countLines[wasm] ← in memory, 1 MiB chunks');
  console.log(
    `indexOf: ${((indexOfMemory * 1e9) / newlinesScaled).toFixed(1)} ns per newline; ` +
      `wasm: ${((wasmMemory * 1e9) / sizeBytes).toFixed(3)} ns per byte, copy into its memory included; ` +
      `wc -l: ${((wcNet * 1e9) / sizeBytes).toFixed(3)} ns per byte, read included`,
  );
  for (const [name, label] of [
    [headline, 'the counter at its fastest'],
    [functionPath, 'the counter as the function feeds it, a fresh buffer per chunk'],
  ] as const) {
    const ratio = wcNet / secondsOf(name);
    console.log(
      `ratio ${name} / wc -l (${label}): ${ratio.toFixed(2)} (${(wcWall / secondsOf(name)).toFixed(2)} against wc -l with its spawn cost)` +
        ` — goal ≥ ${goals.throughputRatio}: ${formatVerdict(ratio >= goals.throughputRatio)}`,
    );
  }

  console.log('\npeak RSS: each input counted in a fresh child process');
  const bundle = await bundleChild();
  const sources = [
    [childSources.stream, functionPath],
    [childSources.wasmMemory, headline],
  ] as const;
  const measured = [];
  for (const [source, name] of sources) {
    for (const sizeMiB of rssInputsMiB) {
      const input = await ensureInput(sizeMiB);
      measured.push({ source, name, sizeMiB, ...(await measurePeakRss(bundle, input, source)) });
    }
  }
  console.log(
    formatTable(
      ['counted by', 'input', 'lines', 'RSS before counting MiB', 'peak RSS MiB'],
      measured.map((r) => [
        r.name,
        `${r.sizeMiB} MiB`,
        String(r.lines),
        r.startMiB.toFixed(1),
        r.peakMiB.toFixed(1),
      ]),
    ),
  );
  for (const [source, name] of sources) {
    const peaks = measured.filter((r) => r.source === source).map((r) => r.peakMiB);
    const spread = (Math.max(...peaks) - Math.min(...peaks)) / Math.min(...peaks);
    const largest = Math.max(...peaks);
    console.log(
      `${name}: peak RSS spread ${(spread * 100).toFixed(1)}% — goal ≤ ${goals.rssSpread * 100}%: ${formatVerdict(spread <= goals.rssSpread)}; ` +
        `largest ${largest.toFixed(1)} MiB — goal < ${goals.rssCeilingMiB} MiB: ${formatVerdict(largest < goals.rssCeilingMiB)}`,
    );
  }
  console.log(`\ninputs kept in ${dataDir} for the next run; rm -rf bench/.data frees the space`);
}

const parsed = parseOptions();
if ('child' in parsed) await runChildCount(parsed.child, parsed.source);
else await runBenchmark(parsed);
