import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { type StackOutputs, writeOutputs } from '../lib/outputs.ts';
import { spawnCli } from '../test/support/generator/cli.ts';
import {
  downloadObject,
  region,
  type S3Emulator,
  startS3Emulator,
} from '../test/support/generator/emulator.ts';
import { CuttableProxy } from '../test/support/proxy.ts';
import type { ManifestEntry } from './generate.ts';
import { parseManifest } from './manifest.ts';

let emulator: S3Emulator;
let cwd: string;
const bucket = 'generator-cli';

before(async () => {
  emulator = await startS3Emulator();
  await emulator.createBucket(bucket);
  cwd = await mkdtemp(join(tmpdir(), 'generator-cli-'));
});

after(async () => {
  await emulator.stop();
  await rm(cwd, { recursive: true, force: true });
});

const runCli = (args: string[], env: Record<string, string | undefined> = {}, directory = cwd) =>
  spawnCli({ args, env, cwd: directory, endpoint: emulator.endpoint }).result;

test('--help prints the usage and exits 0', async () => {
  const result = await runCli(['--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^Usage: npx tsx generator\/main\.ts/);
  for (const flag of [
    '--count',
    '--min-lines',
    '--max-lines',
    '--bucket',
    '--prefix',
    '--concurrency',
    '--seed',
  ]) {
    assert.ok(result.stdout.includes(flag), flag);
  }
});

test('bad flags and bad configuration exit 2 with every problem listed at once', async () => {
  const result = await runCli(
    [
      '--count',
      'many',
      '--min-lines',
      '9',
      '--max-lines',
      '3',
      '--concurrency',
      '0',
      '--bucket',
      'Bad_Name',
      '--frobnicate',
      '--stage',
      'Prod!',
    ],
    { AWS_REGION: undefined, AWS_ENDPOINT_URL: 'not a url' },
  );
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, '');
  for (const pattern of [
    /--count=many must be a whole number/,
    /--min-lines=9 must not be more than --max-lines=3/,
    /--concurrency=0 must be from 1 to 64/,
    /--bucket=Bad_Name must be 3-63 lowercase/,
    /unknown flag --frobnicate/,
    /--stage=Prod! must be 2-10 lowercase letters/,
    /AWS_ENDPOINT_URL is not a URL/,
    /AWS_REGION is not set/,
  ]) {
    assert.match(result.stderr, pattern);
  }
  assert.match(result.stderr, /Run with --help for usage/);
});

test('without --bucket and without provisioning outputs it exits 2 and says how to fix it', async () => {
  const result = await runCli(['--count', '1'], { STAGE: 'nowhere' });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /no bucket: --bucket is not given and .*\.ada\/outputs\.nowhere\.json/);
  assert.match(result.stderr, /npx tsx provision\/up\.ts/);
  assert.match(result.stderr, /pass --bucket NAME/);
  assert.match(result.stderr, /npm run demo -- --keep/);
});

test('a bucket that does not exist exits 2 before anything is generated', async () => {
  const result = await runCli(['--bucket', 'missing-bucket', '--count', '1']);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /bucket missing-bucket does not exist at http:\/\/127\.0\.0\.1:\d+/);
});

test('the bucket and prefix come from the stage outputs when --bucket is not given', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'generator-outputs-'));
  try {
    const outputs: StackOutputs = {
      app: 'ada-linecount',
      stage: 'qa',
      region,
      accountId: '000000000000',
      bucket,
      uploadsPrefix: 'from-outputs/',
      topicArn: 'arn:aws:sns:us-east-1:000000000000:t',
      queueUrl: 'http://127.0.0.1/q',
      queueArn: 'arn:aws:sqs:us-east-1:000000000000:q',
      dlqUrl: 'http://127.0.0.1/d',
      dlqArn: 'arn:aws:sqs:us-east-1:000000000000:d',
      endpoint: emulator.endpoint,
      updatedAt: new Date().toISOString(),
    };
    await writeOutputs(outputs, directory);
    const result = await runCli(['--stage', 'qa', '--count', '3', '--json'], {}, directory);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout);
    assert.equal(summary.bucket, bucket);
    assert.equal(summary.prefix, 'from-outputs/');
    const listed = await emulator.s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'from-outputs/' }),
    );
    assert.equal(listed.KeyCount, 3);

    // outputs of a local stack without an emulator endpoint would send the upload to AWS
    const toAws = await runCli(['--stage', 'qa', '--count', '1'], { AWS_ENDPOINT_URL: undefined }, directory);
    assert.equal(toAws.code, 2, toAws.stderr);
    assert.match(toAws.stderr, /describes a local stack at http:\/\/127\.0\.0\.1:\d+: set AWS_ENDPOINT_URL=/);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test('--json prints one parseable summary, and the manifest lists every upload', async () => {
  const manifestPath = join(cwd, 'run.jsonl');
  const result = await runCli([
    '--bucket',
    bucket,
    '--prefix',
    'json/',
    '--count',
    '12',
    '--max-lines',
    '800',
    '--names',
    'realistic',
    '--seed',
    '31',
    '--manifest',
    manifestPath,
    '--json',
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim().split('\n').length, 1);
  const summary = JSON.parse(result.stdout);
  assert.equal(summary.ok, true);
  assert.equal(summary.files, 12);
  assert.equal(summary.seed, 31);
  assert.equal(summary.manifest, manifestPath);
  assert.match(summary.runId, /^[0-9a-z]+$/);

  const entries: ManifestEntry[] = parseManifest(await readFile(manifestPath, 'utf8'));
  assert.equal(entries.length, 12);
  assert.equal(
    summary.lines,
    entries.reduce((sum, e) => sum + e.lines, 0),
  );
  assert.equal(
    summary.bytes,
    entries.reduce((sum, e) => sum + e.bytes, 0),
  );
  for (const entry of entries) {
    assert.deepEqual(Object.keys(entry), ['key', 'lines', 'bytes', 'sha256', 'etag', 'uploadedAt']);
    assert.ok(entry.key.startsWith('json/'));
    const object = await downloadObject(emulator.s3, bucket, entry.key);
    assert.deepEqual(
      { bytes: object.bytes, lines: object.lines, sha256: object.sha256, etag: object.etag },
      { bytes: entry.bytes, lines: entry.lines, sha256: entry.sha256, etag: entry.etag },
    );
  }
});

test('without a terminal, progress is one plain line per file and the summary goes to stdout', async () => {
  const result = await runCli([
    '--bucket',
    bucket,
    '--prefix',
    'plain/',
    '--count',
    '4',
    '--max-lines',
    '10',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 4, result.stderr);
  for (const line of lines) assert.match(line, /^\[\d\/4\] uploaded plain\/.* \(\d+ lines, .+\)$/);
  assert.doesNotMatch(result.stderr, /\r|\x1b\[/);
  // on Node.js 24 the SDK has no NodeVersionSupportWarning to print
  assert.doesNotMatch(result.stderr, /Warning/);
  assert.match(result.stdout, /^uploaded 4 files \(/);
});

test('an unwritable manifest path exits 2 before anything is uploaded', async () => {
  const result = await runCli([
    '--bucket',
    bucket,
    '--prefix',
    'nomanifest/',
    '--manifest',
    join(cwd, 'no/such/dir/m.jsonl'),
  ]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /cannot write the manifest .*no\/such\/dir\/m\.jsonl: ENOENT/);
  const listed = await emulator.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'nomanifest/' }));
  assert.equal(listed.KeyCount ?? 0, 0);
});

test('an unreachable endpoint exits 1 and says what failed', async () => {
  // nothing listens on port 9: the bucket check is the first call and fails
  // at run time (exit 1), not as a usage problem
  const result = await runCli(['--bucket', bucket, '--count', '1', '--json'], {
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /cannot reach bucket generator-cli: .*ECONNREFUSED/);
  assert.equal(JSON.parse(result.stdout).ok, false);
});

test('an upload that fails mid-run exits 1, names the key, and the manifest keeps what was uploaded', async () => {
  const proxy = await new CuttableProxy('127.0.0.1', emulator.port).start();
  const manifestPath = join(cwd, 'cut.jsonl');
  try {
    const child = spawnCli({
      args: [
        ...['--bucket', bucket, '--prefix', 'cut/', '--count', '40', '--concurrency', '1'],
        ...['--min-lines', '20000', '--max-lines', '20000', '--manifest', manifestPath],
      ],
      env: { AWS_ENDPOINT_URL: proxy.url('http') },
      cwd,
      endpoint: emulator.endpoint,
    });
    // the emulator goes away once the first file is reported uploaded
    child.stderr.on('data', (chunk: string) => {
      if (chunk.includes('[1/40] uploaded')) proxy.cutConnections();
    });
    const result = await child.result;
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /generator: cannot upload s3:\/\/generator-cli\/cut\/\S+\.txt: /);
    assert.match(result.stderr, /uploaded \d+ of 40 files before failing/);
    const entries = parseManifest(await readFile(manifestPath, 'utf8'));
    assert.ok(entries.length >= 1 && entries.length < 40, `${entries.length} in the manifest`);
    for (const entry of entries) {
      const object = await downloadObject(emulator.s3, bucket, entry.key);
      assert.equal(object.sha256, entry.sha256);
    }
  } finally {
    await proxy.stop();
  }
});

test('Ctrl-C aborts the uploads in flight, exits 130 and keeps the finished ones in the manifest', async () => {
  const manifestPath = join(cwd, 'interrupted.jsonl');
  const child = spawnCli({
    args: [
      ...['--bucket', bucket, '--prefix', 'interrupted/', '--count', '200', '--concurrency', '2'],
      ...['--min-lines', '20000', '--max-lines', '20000', '--manifest', manifestPath],
    ],
    cwd,
    endpoint: emulator.endpoint,
  });
  child.stderr.on('data', (chunk: string) => {
    if (chunk.includes('[2/200] uploaded')) child.kill('SIGINT');
  });
  const result = await child.result;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /generator: interrupted after \d+ of 200 files/);
  const entries = parseManifest(await readFile(manifestPath, 'utf8'));
  assert.ok(entries.length >= 2 && entries.length < 200, `${entries.length} in the manifest`);
  for (const entry of entries) {
    assert.equal((await downloadObject(emulator.s3, bucket, entry.key)).sha256, entry.sha256);
  }
});
