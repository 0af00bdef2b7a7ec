import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { AwsStepError, UsageError } from '../lib/errors.ts';
import { downloadObject, type S3Emulator, startS3Emulator } from '../test/support/generator/emulator.ts';
import {
  GenerateAbortedError,
  type GenerateProgress,
  generateAndUpload,
  type ManifestEntry,
} from './generate.ts';
import { NameStyle } from './names.ts';

let emulator: S3Emulator;
const bucket = 'generator-tests';

before(async () => {
  emulator = await startS3Emulator();
  await emulator.createBucket(bucket);
});

after(async () => {
  await emulator.stop();
});

const run = (overrides: Partial<Parameters<typeof generateAndUpload>[0]> = {}) =>
  generateAndUpload({
    s3: emulator.s3,
    bucket,
    prefix: 'uploads/',
    count: 10,
    minLines: 0,
    maxLines: 1000,
    concurrency: 4,
    seed: 1,
    names: NameStyle.simple,
    ...overrides,
  });

async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await emulator.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((object) => object.Key as string));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function assertMatchesBucket(entries: readonly ManifestEntry[]): Promise<void> {
  for (const entry of entries) {
    const object = await downloadObject(emulator.s3, bucket, entry.key);
    assert.equal(object.bytes, entry.bytes, `${entry.key}: bytes`);
    assert.equal(object.sha256, entry.sha256, `${entry.key}: sha256`);
    assert.equal(object.lines, entry.lines, `${entry.key}: lines recounted from the stored object`);
    assert.equal(object.etag, entry.etag, `${entry.key}: etag`);
  }
}

test('every uploaded object matches its manifest line: bytes, sha256, recounted lines, etag', async () => {
  const progress: GenerateProgress[] = [];
  const entries = await run({
    count: 40,
    maxLines: 3000,
    names: NameStyle.realistic,
    prefix: 'uploads/realistic/',
    seed: 2025,
    onProgress: (p) => progress.push(p),
  });
  assert.equal(entries.length, 40);
  assert.deepEqual((await listKeys('uploads/realistic/')).sort(), entries.map((e) => e.key).sort());
  await assertMatchesBucket(entries);
  assert.ok(
    entries.some((e) => e.lines === 0 && e.bytes === 0),
    'an empty file is included',
  );
  assert.ok(entries.some((e) => / |#|\+/.test(e.key)));
  for (const entry of entries) assert.ok(!Number.isNaN(Date.parse(entry.uploadedAt)));

  const last = progress.at(-1) as GenerateProgress;
  assert.equal(last.filesDone, 40);
  assert.equal(last.lines, last.linesTotal);
  assert.equal(
    last.linesTotal,
    entries.reduce((sum, e) => sum + e.lines, 0),
  );
  assert.equal(
    last.bytes,
    entries.reduce((sum, e) => sum + e.bytes, 0),
  );
  assert.equal(progress.filter((p) => p.completed !== undefined).length, 40);
});

test('the same seed uploads the same contents again, under new keys', async () => {
  const first = await run({ seed: 777, runId: 'seedrun1', prefix: 'uploads/seed/' });
  const second = await run({ seed: 777, runId: 'seedrun2', prefix: 'uploads/seed/', concurrency: 1 });
  const byNumber = (entries: ManifestEntry[]) =>
    [...entries]
      .sort((a, b) => a.key.localeCompare(b.key))
      .map(({ sha256, lines, bytes }) => ({ sha256, lines, bytes }));
  assert.deepEqual(byNumber(first), byNumber(second));
  const keys = new Set(first.map((e) => e.key));
  assert.equal(
    second.some((e) => keys.has(e.key)),
    false,
  );
  const other = await run({ seed: 778, runId: 'seedrun3', prefix: 'uploads/seed/' });
  assert.notDeepEqual(other.map((e) => e.sha256).sort(), first.map((e) => e.sha256).sort());
  assert.equal((await listKeys('uploads/seed/')).length, 30);
});

test('a file over 5 MiB is uploaded as a multipart upload and stored intact', async () => {
  // ~90 bytes a line: 80,000 lines is about 7 MiB, two 5 MiB parts
  const [entry] = await run({
    count: 1,
    minLines: 80_000,
    maxLines: 80_000,
    prefix: 'uploads/large/',
    seed: 3,
  });
  assert.ok(entry);
  assert.ok(entry.bytes > 5 * 1024 * 1024, `${entry.bytes} bytes`);
  // S3 gives an object assembled from N parts an ETag ending in -N
  assert.match(entry.etag ?? '', /^[0-9a-f]{32}-2$/);
  const head = await emulator.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: entry.key }));
  assert.equal(head.ContentLength, entry.bytes);
  await assertMatchesBucket([entry]);
});

test('an upload failure names the key that failed and why', async () => {
  await assert.rejects(
    run({ bucket: 'no-such-bucket', count: 3, concurrency: 1, runId: 'failrun' }),
    (error) => {
      assert.ok(error instanceof AwsStepError);
      assert.match(error.message, /^cannot upload s3:\/\/no-such-bucket\/uploads\/.*failrun-000001\.txt: /);
      assert.match(error.message, /NoSuchBucket/);
      assert.match(error.message, /check --bucket, or run provision\/up\.ts/);
      return true;
    },
  );
});

test('aborting stops new files, keeps the finished ones and rejects', async () => {
  const controller = new AbortController();
  const finished: ManifestEntry[] = [];
  const result = run({
    count: 200,
    concurrency: 2,
    prefix: 'uploads/abort/',
    signal: controller.signal,
    onProgress: (p) => {
      if (p.completed) finished.push(p.completed);
      if (finished.length === 5) controller.abort();
    },
  });
  await assert.rejects(result, GenerateAbortedError);
  assert.ok(finished.length >= 5 && finished.length < 200, `${finished.length} finished`);
  const stored = new Set(await listKeys('uploads/abort/'));
  for (const entry of finished) assert.ok(stored.has(entry.key));
  await assertMatchesBucket(finished);
});

test('many uploads at once run without listener-leak warnings', async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  try {
    const entries = await run({ count: 40, maxLines: 5, concurrency: 32, prefix: 'uploads/wide/' });
    assert.equal(entries.length, 40);
    // warnings are emitted on the next tick
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
    [],
  );
});

test('impossible options are refused before anything is uploaded', async () => {
  await assert.rejects(run({ concurrency: 0, prefix: 'uploads/refused/' }), UsageError);
  await assert.rejects(run({ minLines: 5, maxLines: 4, prefix: 'uploads/refused/' }), UsageError);
  await assert.rejects(run({ count: 1.5, prefix: 'uploads/refused/' }), UsageError);
  const listed = await emulator.s3.send(
    new ListObjectsV2Command({ Bucket: bucket, Prefix: 'uploads/refused/' }),
  );
  assert.equal(listed.KeyCount ?? 0, 0);
});
