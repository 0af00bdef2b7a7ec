import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnCli } from '../test/support/generator/cli.ts';
import { downloadObject, type S3Emulator, startS3Emulator } from '../test/support/generator/emulator.ts';
import { parseManifest } from './manifest.ts';

// A 2 GiB file must not need 2 GiB of memory: what the generator holds has to
// stay bounded by the upload's parts, whatever the file's size. The CLI runs
// in its own process so its memory is not mixed with the emulator's, which
// holds every stored object in memory.
//
// The measure is live memory (test/support/generator/live-memory.ts: heap in use plus
// Buffers, after a full collection), not resident memory: the peak RSS of the
// same run varies by 100 MiB and more with when the collector ran and what the
// allocator kept, so a bound on it either flakes or proves nothing. And it is
// compared between a small and a large file, so what every run holds anyway
// (the SDK, the parts in flight) cancels out and only memory that grows with
// the file is left.

let emulator: S3Emulator;
let cwd: string;
const bucket = 'generator-memory';
const sampler = fileURLToPath(new URL('../test/support/generator/live-memory.ts', import.meta.url));
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

before(async () => {
  emulator = await startS3Emulator();
  await emulator.createBucket(bucket);
  cwd = await mkdtemp(join(tmpdir(), 'generator-memory-'));
});

after(async () => {
  await emulator.stop();
  await rm(cwd, { recursive: true, force: true });
});

interface Run {
  bytes: number;
  lines: number;
  multipart: number;
  durationMs: number;
  liveBytes: number;
  rssGrowthBytes: number;
  manifest: string;
}

// ~90 bytes a line
async function generate(name: string, lines: number): Promise<Run> {
  const manifest = join(cwd, `${name}.jsonl`);
  const { result } = spawnCli({
    args: [
      ...['--bucket', bucket, '--prefix', `${name}/`, '--count', '1', '--concurrency', '1'],
      ...['--min-lines', String(lines), '--max-lines', String(lines), '--manifest', manifest, '--json'],
    ],
    cwd,
    endpoint: emulator.endpoint,
    nodeArgs: ['--expose-gc', '--import', sampler],
  });
  const { code, stdout, stderr } = await result;
  assert.equal(code, 0, stderr);
  const live = /^live-memory (\d+)$/m.exec(stderr);
  assert.ok(live?.[1], `no live-memory line in ${stderr}`);
  const summary = JSON.parse(stdout);
  return {
    bytes: summary.bytes,
    lines: summary.lines,
    multipart: summary.multipart,
    durationMs: summary.durationMs,
    liveBytes: Number(live[1]),
    rssGrowthBytes: summary.memory.maxRssBytes - summary.memory.startRssBytes,
    manifest,
  };
}

test('a 200 MiB file streams through holding no more memory than a 20 MiB one', async (t) => {
  const small = await generate('small', 240_000);
  const large = await generate('large', 2_400_000);
  for (const [name, run] of Object.entries({ small, large })) {
    t.diagnostic(
      `${name}: ${mib(run.bytes)} MiB in ${run.durationMs} ms, live peak ${mib(run.liveBytes)} MiB, RSS +${mib(run.rssGrowthBytes)} MiB`,
    );
  }
  assert.ok(large.bytes > 200 * 1024 * 1024, `${large.bytes} bytes`);
  assert.equal(large.lines, 2_400_000);
  assert.equal(small.multipart + large.multipart, 2);
  // a generator that kept a fifth of what it sent would hold 37 MiB more for
  // the large file; bounded, the two peaks differ by up to ~10 MiB (whether a
  // sample caught parts in flight)
  const grown = large.liveBytes - small.liveBytes;
  assert.ok(
    grown < (large.bytes - small.bytes) / 5,
    `live memory grew ${mib(grown)} MiB from a ${mib(small.bytes)} MiB file to a ${mib(large.bytes)} MiB one`,
  );

  const [entry] = parseManifest(await readFile(large.manifest, 'utf8'));
  assert.ok(entry);
  const stored = await downloadObject(emulator.s3, bucket, entry.key);
  assert.deepEqual(
    { bytes: stored.bytes, lines: stored.lines, sha256: stored.sha256, etag: stored.etag },
    { bytes: entry.bytes, lines: entry.lines, sha256: entry.sha256, etag: entry.etag },
  );
  assert.match(entry.etag ?? '', /-\d+$/);
});
