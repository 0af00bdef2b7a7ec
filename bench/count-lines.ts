// Benchmark: the function's line counter against `wc -l`, and its peak memory.
//
//   node --import tsx bench/count-lines.ts [--size-mib 512] [--rounds 5]
//
// Inputs are generated once into bench/.data/ (git-ignored) and reused by later
// runs; `rm -rf bench/.data` frees the disk space (about 1.6 GiB by default).
// Throughput: both counters read the same file, from the page cache, interleaved
// round by round so that machine noise hits both alike; the median round counts.
// Two extra rows split the counter's time into its parts (reading the file
// without counting, counting a file already in memory), and the cost of
// spawning a process is measured on /dev/null and subtracted from wc -l.
// Memory: each input is counted in a fresh child process that runs this file
// bundled by esbuild and reports its own peak resident set (VmHWM), so one
// measurement cannot inherit the other's heap.

import { spawn } from 'node:child_process';
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
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countLines } from '../lambda-image/count.ts';

const MiB = 1024 * 1024;
const dataDir = join(dirname(fileURLToPath(import.meta.url)), '.data');
const benchFile = fileURLToPath(import.meta.url);

// The function reads S3 bodies as they come; for files, 1 MiB reads cut the
// per-chunk overhead against fs.createReadStream's 64 KiB default.
const readSizes = { '1 MiB': MiB, '64 KiB': 64 * 1024 } as const;
const goals = { throughputRatio: 0.8, rssSpread: 0.1, rssCeilingMiB: 100 } as const;
const rssInputsMiB = [64, 1024] as const;
// Random printable ASCII lines of 0..160 bytes (mean ~80, like CSV exports).
const maxLineBytes = 160;

interface Options {
  sizeMiB: number;
  rounds: number;
}

function parseOptions(): Options | { child: string } {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '512' },
      rounds: { type: 'string', default: '5' },
      'child-count': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values['child-count'] !== undefined) return { child: values['child-count'] };
  if (values.help) {
    console.log('usage: node --import tsx bench/count-lines.ts [--size-mib 512] [--rounds 5]');
    process.exit(0);
  }
  const sizeMiB = Number(values['size-mib']);
  const rounds = Number(values.rounds);
  const problems: string[] = [];
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1)
    problems.push(`--size-mib must be a positive integer, got ${values['size-mib']}`);
  if (!Number.isInteger(rounds) || rounds < 1)
    problems.push(`--rounds must be a positive integer, got ${values.rounds}`);
  if (problems.length > 0) {
    console.error(problems.join('\n'));
    process.exit(2);
  }
  return { sizeMiB, rounds };
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

async function countFile(path: string, highWaterMark: number): Promise<{ lines: number; bytes: number }> {
  return countLines(createReadStream(path, { highWaterMark }));
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
}

async function measureThroughput(path: string, rounds: number) {
  const sizeBytes = statSync(path).size;
  // Held in memory once, to time the counter without any I/O (skipped above 1 GiB).
  const inMemory = sizeBytes <= 1024 * MiB ? readFileSync(path) : undefined;
  const headline = 'countLines ← createReadStream 1 MiB';
  const methods: Method[] = [
    { name: headline, run: async () => (await countFile(path, readSizes['1 MiB'])).lines },
    {
      name: 'countLines ← createReadStream 64 KiB',
      run: async () => (await countFile(path, readSizes['64 KiB'])).lines,
    },
    {
      name: 'read only ← createReadStream 1 MiB',
      run: async () => {
        for await (const _chunk of createReadStream(path, { highWaterMark: readSizes['1 MiB'] })) {
          // reads and drops: the I/O floor the counter sits on
        }
        return undefined;
      },
    },
    ...(inMemory === undefined
      ? []
      : [
          {
            name: 'countLines ← in memory, 1 MiB chunks',
            run: async () => (await countLines(sliceChunks(inMemory))).lines,
          },
        ]),
    { name: 'wc -l', run: () => runWc(path) },
    // what spawning a process costs this benchmark, subtracted from wc -l below
    { name: 'wc -l /dev/null (spawn cost)', run: async () => (await runWc('/dev/null')) || undefined },
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
  const seconds = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  for (let round = 1; round <= rounds; round++) {
    process.stdout.write(`round ${round}/${rounds} `);
    // rotate the order each round so no method always runs first
    for (let i = 0; i < methods.length; i++) {
      const method = methods[(i + round) % methods.length] as Method;
      const { seconds: took } = await timeIt(() => method.run());
      seconds.get(method.name)?.push(took);
      process.stdout.write('.');
    }
    process.stdout.write('\n');
  }
  const spawnCost = median(seconds.get('wc -l /dev/null (spawn cost)') as number[]);
  const rows = methods.map((m) => {
    const runs = seconds.get(m.name) as number[];
    return { name: m.name, medianSeconds: median(runs), runs };
  });
  const wcWall = rows.find((r) => r.name === 'wc -l')?.medianSeconds as number;
  rows.push({ name: 'wc -l, spawn cost subtracted', medianSeconds: wcWall - spawnCost, runs: [] });
  return { sizeBytes, headline, rows, lines: reference };
}

async function* sliceChunks(buffer: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < buffer.length; at += MiB) yield buffer.subarray(at, at + MiB);
}

// VmHWM is this process's own high-water mark. getrusage's maxRSS is the
// fallback only: on Linux it survives execve, so a child forked from this
// benchmark (which holds the test file in memory) would report the parent's peak.
function readPeakRss(): { vmHwmKiB: number | undefined; maxRssKiB: number } {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return { vmHwmKiB: match ? Number(match[1]) : undefined, maxRssKiB: process.resourceUsage().maxRSS };
}

async function runChildCount(path: string): Promise<void> {
  const before = readPeakRss();
  const { lines, bytes } = await countFile(path, readSizes['1 MiB']);
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

async function measurePeakRss(bundle: string, path: string) {
  const child = spawn(process.execPath, [bundle, '--child-count', path], {
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

function describeMachine(): string {
  const cpu = cpus();
  return [
    `CPU: ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} cores`,
    `memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `node: ${process.version} (${process.platform} ${process.arch})`,
    `date: ${new Date().toISOString()}`,
  ].join('\n');
}

function formatVerdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

async function runBenchmark(options: Options): Promise<void> {
  console.log(`${describeMachine()}\n`);
  console.log(`throughput: ${options.sizeMiB} MiB file, ${options.rounds} interleaved rounds, median`);
  const path = await ensureInput(options.sizeMiB);
  const { sizeBytes, headline, rows, lines } = await measureThroughput(path, options.rounds);
  const wcNet = rows.find((r) => r.name === 'wc -l, spawn cost subtracted')?.medianSeconds as number;
  const wcWall = rows.find((r) => r.name === 'wc -l')?.medianSeconds as number;
  const speed = (s: number) => sizeBytes / MiB / s;
  console.log(`${lines} lines in ${path}`);
  console.log(
    formatTable(
      ['method', 'median s', 'MiB/s', '× wc -l', 'rounds (s)'],
      rows.map((r) => [
        r.name,
        r.medianSeconds.toFixed(3),
        r.name.includes('/dev/null') ? '' : speed(r.medianSeconds).toFixed(0),
        r.name.includes('/dev/null') ? '' : (wcNet / r.medianSeconds).toFixed(2),
        r.runs.map((s) => s.toFixed(3)).join(' '),
      ]),
    ),
  );
  const counterSeconds = rows.find((r) => r.name === headline)?.medianSeconds as number;
  const ratio = wcNet / counterSeconds;
  console.log(
    `ratio ${headline} / wc -l: ${ratio.toFixed(2)} (${(wcWall / counterSeconds).toFixed(2)} against wc -l with its spawn cost)` +
      ` — goal ≥ ${goals.throughputRatio}: ${formatVerdict(ratio >= goals.throughputRatio)}`,
  );

  console.log(
    '\npeak RSS: each input counted by countLines ← createReadStream 1 MiB in a fresh child process',
  );
  const bundle = await bundleChild();
  const measured = [];
  for (const sizeMiB of rssInputsMiB) {
    const input = await ensureInput(sizeMiB);
    measured.push({ sizeMiB, ...(await measurePeakRss(bundle, input)) });
  }
  console.log(
    formatTable(
      ['input', 'lines', 'RSS before counting MiB', 'peak RSS MiB'],
      measured.map((r) => [`${r.sizeMiB} MiB`, String(r.lines), r.startMiB.toFixed(1), r.peakMiB.toFixed(1)]),
    ),
  );
  const peaks = measured.map((r) => r.peakMiB);
  const spread = (Math.max(...peaks) - Math.min(...peaks)) / Math.min(...peaks);
  const largest = Math.max(...peaks);
  console.log(
    `peak RSS spread ${(spread * 100).toFixed(1)}% — goal ≤ ${goals.rssSpread * 100}%: ${formatVerdict(spread <= goals.rssSpread)}; ` +
      `largest ${largest.toFixed(1)} MiB — goal < ${goals.rssCeilingMiB} MiB: ${formatVerdict(largest < goals.rssCeilingMiB)}`,
  );
  console.log(`\ninputs kept in ${dataDir} for the next run; rm -rf bench/.data frees the space`);
}

const parsed = parseOptions();
if ('child' in parsed) await runChildCount(parsed.child);
else await runBenchmark(parsed);
