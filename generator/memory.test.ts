import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseManifest } from './manifest.ts';
import { spawnCli } from './test/cli.ts';
import { downloadObject, type S3Emulator, startS3Emulator } from './test/emulator.ts';

// A 2 GiB file must not need 2 GiB of memory: the generator's resident memory
// has to stay bounded by the upload's parts, whatever the file's size. The CLI
// runs in its own process so its RSS is not mixed with the emulator's, which
// holds every stored object in memory.

let emulator: S3Emulator;
let cwd: string;
const bucket = 'generator-memory';

before(async () => {
  emulator = await startS3Emulator();
  await emulator.createBucket(bucket);
  cwd = await mkdtemp(join(tmpdir(), 'generator-memory-'));
});

after(async () => {
  await emulator.stop();
  await rm(cwd, { recursive: true, force: true });
});

test('a 200 MiB file streams through with memory far below its size', async (t) => {
  // ~90 bytes a line; the child reports its RSS before generating and its peak
  const lines = '2400000';
  const { result } = spawnCli({
    args: [
      ...['--bucket', bucket, '--prefix', 'large/', '--count', '1', '--concurrency', '1'],
      ...['--min-lines', lines, '--max-lines', lines, '--manifest', join(cwd, 'large.jsonl'), '--json'],
    ],
    cwd,
    endpoint: emulator.endpoint,
  });
  const { code, stdout, stderr } = await result;
  assert.equal(code, 0, stderr);
  const summary = JSON.parse(stdout);
  assert.ok(summary.bytes > 200 * 1024 * 1024, `${summary.bytes} bytes`);
  assert.equal(summary.lines, Number(lines));
  assert.equal(summary.multipart, 1);
  const growth = summary.memory.maxRssBytes - summary.memory.startRssBytes;
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  t.diagnostic(
    `${mib(summary.bytes)} MiB in ${summary.durationMs} ms, RSS +${mib(growth)} MiB (peak ${mib(summary.memory.maxRssBytes)} MiB)`,
  );
  assert.ok(growth < summary.bytes * 0.4, `RSS grew ${mib(growth)} MiB for a ${mib(summary.bytes)} MiB file`);

  const [entry] = parseManifest(await readFile(join(cwd, 'large.jsonl'), 'utf8'));
  assert.ok(entry);
  const stored = await downloadObject(emulator.s3, bucket, entry.key);
  assert.deepEqual(
    { bytes: stored.bytes, lines: stored.lines, sha256: stored.sha256, etag: stored.etag },
    { bytes: entry.bytes, lines: entry.lines, sha256: entry.sha256, etag: entry.etag },
  );
  assert.match(entry.etag ?? '', /-\d+$/);
});
