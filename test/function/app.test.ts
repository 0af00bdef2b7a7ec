import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, beforeEach, mock, test } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { buildApp } from 'fauxqs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createFunction, type FunctionDeps } from '../../lambda-image/app.ts';
import { bufferKeys } from '../../lambda-image/buffer.ts';
import { createRedis } from '../../lambda-image/connections.ts';
import { migrate, qualifiedTable } from '../../lambda-image/schema.ts';
import type { BufferSettings } from '../../lib/config.ts';
import { MetricName, metricNamespace } from '../../lib/metrics.ts';
import { encodeEventKey } from '../../lib/s3-event.ts';
import { CuttableProxy } from '../support/proxy.ts';
import { readRows, sleep, testBufferSettings } from '../support/records.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testDatabaseUrl,
  testRedisUrl,
  uniqueName,
} from '../support/services.ts';

// The whole function on real services: objects in the S3 emulator (fauxqs,
// in-process on a loopback port), dedupe and buffer in the machine's Redis,
// rows in the machine's PostgreSQL. SQS events are built here as the event
// source mapping would deliver them.

const emulator = buildApp({ logger: false });
const bucket = 'ada-function-test';
let s3: S3Client;
let db: TestSchema;
let cache: TestRedis;
let settings: BufferSettings;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  await emulator.listen({ port: 0, host: '127.0.0.1' });
  s3 = new S3Client({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${(emulator.server.address() as AddressInfo).port}`,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  db = await createTestSchema('app');
  cache = await createTestRedis('app');
  // as the migration function does before the function is deployed
  await migrate(db.pool, db.schema);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await cache.cleanup();
  await db.drop();
  s3.destroy();
  await emulator.close();
});

beforeEach(async () => {
  settings = testBufferSettings(`${cache.prefix}${uniqueName('case')}:`);
  await db.pool.query(`TRUNCATE ${qualifiedTable(db.schema)}`).catch(() => undefined);
});

// ---- events as S3, SNS and SQS deliver them ----

let lastSequencer = 0x0055aed6dcd90281e0n;
function nextSequencer(): string {
  lastSequencer += 1n;
  return lastSequencer.toString(16).toUpperCase().padStart(18, '0');
}

interface Uploaded {
  key: string;
  size: number;
  eTag: string;
  sequencer: string;
}

async function upload(key: string, body: string): Promise<Uploaded> {
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return {
    key,
    size: Buffer.byteLength(body),
    eTag: (put.ETag ?? '').replaceAll('"', ''),
    sequencer: nextSequencer(),
  };
}

function s3Event(...objects: Uploaded[]) {
  return {
    Records: objects.map((o) => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: new Date().toISOString(),
      eventName: 'ObjectCreated:Put',
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'uploads',
        bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
        object: { key: encodeEventKey(o.key), size: o.size, eTag: o.eTag, sequencer: o.sequencer },
      },
    })),
  };
}

const testEvent = {
  Service: 'Amazon S3',
  Event: 's3:TestEvent',
  Time: '2025-01-02T03:04:05.000Z',
  Bucket: bucket,
  RequestId: 'R',
  HostId: 'H',
};

function snsEnvelope(message: unknown) {
  return {
    Type: 'Notification',
    MessageId: crypto.randomUUID(),
    TopicArn: 'arn:aws:sns:us-east-1:000000000000:uploads',
    Subject: 'Amazon S3 Notification',
    Message: JSON.stringify(message),
    Timestamp: new Date().toISOString(),
  };
}

function sqsRecord(messageId: string, body: unknown): SQSRecord {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'sns',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:uploads',
    awsRegion: 'us-east-1',
  };
}

function sqsEvent(...records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

// ---- the function under test ----

function build(overrides: Partial<FunctionDeps> = {}) {
  const metrics = new Metrics({ namespace: metricNamespace, serviceName: 'ada-linecount-test' });
  const added: Partial<Record<string, number>> = {};
  mock.method(metrics, 'addMetric', (name: string, _unit: string, value: number) => {
    added[name] = (added[name] ?? 0) + value;
    return metrics;
  });
  mock.method(metrics, 'hasStoredMetrics', () => Object.keys(added).length > 0);
  const published = mock.method(metrics, 'publishStoredMetrics', () => undefined);
  const logger = new Logger({ serviceName: 'ada-linecount-test', logLevel: 'SILENT' });
  const fn = createFunction({
    s3,
    redis: cache.redis,
    pool: db.pool,
    buffer: settings,
    schema: db.schema,
    logger,
    metrics,
    ...overrides,
  });
  return { fn, added, published };
}

async function streamLength(): Promise<number> {
  return cache.redis.xlen(bufferKeys(settings).stream);
}

async function seenMarks(): Promise<string[]> {
  return cache.redis.keys(`${settings.keyPrefix}seen*`);
}

test('s3:TestEvent raw and inside an SNS envelope is acknowledged and records nothing', async () => {
  const { fn, added } = build();
  const response = await fn.handler(
    sqsEvent(sqsRecord('test-raw', testEvent), sqsRecord('test-sns', snsEnvelope(testEvent))),
  );
  assert.deepEqual(response, { batchItemFailures: [] });
  assert.equal((await readRows(db.pool, db.schema)).length, 0);
  assert.equal(await streamLength(), 0);
  assert.equal(added[MetricName.filesCounted], undefined);
});

test('an upload is counted, buffered and flushed into one row with the decoded key', async () => {
  const { fn, added, published } = build();
  const object = await upload('relatórios/jan 2025/a+b ç.txt', 'one\ntwo\r\nthree');
  const response = await fn.handler(sqsEvent(sqsRecord('m1', snsEnvelope(s3Event(object)))));
  assert.deepEqual(response, { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.file_name, 'relatórios/jan 2025/a+b ç.txt');
  assert.equal(rows[0]?.line_count, '3');
  assert.equal(rows[0]?.size_bytes, String(object.size));
  assert.equal(added[MetricName.filesCounted], 1);
  assert.equal(added[MetricName.linesCounted], 3);
  assert.equal(added[MetricName.rowsFlushed], 1);
  assert.equal(published.mock.callCount(), 1, 'metrics published once per invocation');
});

test('the function runs no DDL: before the migration its messages fail, nothing is created, and once migrated the redelivery is recorded', async () => {
  const bare = await createTestSchema('app_bare');
  cleanups.push(() => bare.drop());
  const { fn } = build({ pool: bare.pool, schema: bare.schema });
  const object = await upload('bare/a.txt', 'a\n');
  const event = sqsEvent(sqsRecord('bare-1', s3Event(object)));
  assert.deepEqual(await fn.handler(event), { batchItemFailures: [{ itemIdentifier: 'bare-1' }] });
  await assert.rejects(fn.flushHandler(), /line_counts.*does not exist/);
  const { rows } = await bare.pool.query(
    'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1',
    [bare.schema],
  );
  assert.equal(rows[0].n, 0, 'the function created no table');
  await migrate(bare.pool, bare.schema);
  assert.deepEqual(await fn.handler(event), { batchItemFailures: [] });
  assert.equal((await readRows(bare.pool, bare.schema)).length, 1);
});

test('the same event delivered twice under new message ids records one row', async () => {
  const { fn, added } = build();
  const object = await upload('twice.txt', 'a\nb\n');
  await fn.handler(sqsEvent(sqsRecord('first', snsEnvelope(s3Event(object)))));
  const again = await fn.handler(sqsEvent(sqsRecord('second', s3Event(object))));
  assert.deepEqual(again, { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.line_count, '2');
  assert.equal(added[MetricName.filesCounted], 1);
  assert.equal(added[MetricName.duplicatesSkipped], 1);
  assert.equal(await streamLength(), 0);
});

test('the same events delivered concurrently to two invocations record one row each', async () => {
  const otherRedis = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
  cleanups.push(() => otherRedis.disconnect());
  await otherRedis.ping();
  const first = build();
  const second = build({ redis: otherRedis });
  const objects = await Promise.all(
    Array.from({ length: 8 }, (_, i) => upload(`concurrent/${i}.txt`, 'x\n'.repeat(i + 1))),
  );
  const [a, b] = await Promise.all([
    first.fn.handler(sqsEvent(...objects.map((o, i) => sqsRecord(`a-${i}`, snsEnvelope(s3Event(o)))))),
    second.fn.handler(sqsEvent(...objects.map((o, i) => sqsRecord(`b-${i}`, snsEnvelope(s3Event(o)))))),
  ]);
  assert.deepEqual([a, b], [{ batchItemFailures: [] }, { batchItemFailures: [] }]);
  await first.fn.flushHandler();
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.file_name, r.line_count]),
    objects.map((o, i) => [o.key, String(i + 1)]),
  );
  const counted = (first.added[MetricName.filesCounted] ?? 0) + (second.added[MetricName.filesCounted] ?? 0);
  const duplicates =
    (first.added[MetricName.duplicatesSkipped] ?? 0) + (second.added[MetricName.duplicatesSkipped] ?? 0);
  assert.deepEqual([counted, duplicates], [8, 8]);
});

test("a batch's records are read in parallel and buffered in a few Redis transactions, not one per record", async () => {
  const { fn } = build();
  const objects = await Promise.all(
    Array.from({ length: 10 }, (_, i) => upload(`parallel/${i}.txt`, 'line\n'.repeat(i + 1))),
  );
  // the buffer checks a group's marks with one pipelined WATCH + EXISTS round: one per group
  const checks = mock.method(cache.redis, 'pipeline');
  try {
    const response = await fn.handler(
      sqsEvent(...objects.map((o, i) => sqsRecord(`p-${i}`, snsEnvelope(s3Event(o))))),
    );
    assert.deepEqual(response, { batchItemFailures: [] });
    assert.ok(checks.mock.callCount() <= 3, `${checks.mock.callCount()} groups for 10 records`);
  } finally {
    checks.mock.restore();
  }
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.file_name, r.line_count]),
    objects.map((o, i) => [o.key, String(i + 1)]),
  );
});

test('an older event arriving after a newer one is not counted: the object changed since (412)', async () => {
  const { fn, added } = build();
  const older = await upload('overwritten.txt', '1\n2\n');
  const newer = await upload('overwritten.txt', '1\n2\n3\n4\n');
  await fn.handler(sqsEvent(sqsRecord('newer', s3Event(newer))));
  const late = await fn.handler(sqsEvent(sqsRecord('older', s3Event(older))));
  assert.deepEqual(late, { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.line_count, '4');
  assert.equal(added[MetricName.objectsSkipped], 1);
});

test('an older event arriving after a newer one never overwrites the newer count, even when both versions are readable', async () => {
  // A versioned bucket serves both versions, so both events are counted; only
  // the sequencer decides. The emulator has no versioning: this stand-in
  // serves each version's bytes by the eTag the event asks for.
  const versions = new Map([
    ['"v1"', '1\n2\n'],
    ['"v2"', '1\n2\n3\n4\n5\n'],
  ]);
  const versionedS3 = {
    send: async (command: GetObjectCommand) => {
      const text = versions.get(command.input.IfMatch ?? '') ?? '';
      return { Body: Readable.from([Buffer.from(text)]), ContentLength: Buffer.byteLength(text) };
    },
  } as unknown as S3Client;
  const { fn } = build({ s3: versionedS3 });
  const older = { key: 'versioned.txt', size: 4, eTag: 'v1', sequencer: nextSequencer() };
  const newer = { key: 'versioned.txt', size: 10, eTag: 'v2', sequencer: nextSequencer() };
  await fn.handler(sqsEvent(sqsRecord('newer', s3Event(newer))));
  await fn.handler(sqsEvent(sqsRecord('older', s3Event(older))));
  let rows = await readRows(db.pool, db.schema);
  assert.equal(rows[0]?.line_count, '5');
  assert.equal(rows[0]?.etag, 'v2');
  // and both in one batch, older last: one flush keeps the newer
  await db.pool.query(`TRUNCATE ${qualifiedTable(db.schema)}`);
  const older2 = { ...older, key: 'versioned-2.txt', sequencer: nextSequencer() };
  const newer2 = { ...newer, key: 'versioned-2.txt', sequencer: nextSequencer() };
  await fn.handler(sqsEvent(sqsRecord('newer-2', s3Event(newer2)), sqsRecord('older-2', s3Event(older2))));
  rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.file_name, r.line_count, r.sequencer]),
    [['versioned-2.txt', '5', newer2.sequencer]],
  );
});

test('a batch of 10 with one malformed body records 9 rows and fails exactly that message', async () => {
  const { fn, added } = build();
  const objects = await Promise.all(Array.from({ length: 9 }, (_, i) => upload(`batch/${i}.txt`, 'l\n')));
  const records = objects.map((o, i) => sqsRecord(`good-${i}`, snsEnvelope(s3Event(o))));
  records.splice(4, 0, sqsRecord('bad-one', '{"Type": "Notification", "Message": "not json'));
  const response = await fn.handler(sqsEvent(...records));
  assert.deepEqual(response, { batchItemFailures: [{ itemIdentifier: 'bad-one' }] });
  assert.equal((await readRows(db.pool, db.schema)).length, 9);
  assert.equal(added[MetricName.malformedMessages], 1);
});

test('PostgreSQL unreachable: the messages fail, their records stay buffered, and once it is back one flush writes them and the redelivery is acknowledged', async () => {
  const proxy = await new CuttableProxy('127.0.0.1', Number(new URL(testDatabaseUrl).port || 5432)).start();
  const url = new URL(testDatabaseUrl);
  url.port = String(proxy.port);
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2, connectionTimeoutMillis: 2000 });
  pool.on('error', () => undefined);
  cleanups.push(async () => {
    await pool.end();
    await proxy.stop();
  });
  const { fn, added } = build({ pool });
  await fn.flushHandler(); // cold start while the database is up

  const objects = await Promise.all(Array.from({ length: 4 }, (_, i) => upload(`outage/pg-${i}.txt`, 'a\n')));
  const batch = sqsEvent(...objects.map((o, i) => sqsRecord(`pg-${i}`, s3Event(o))));
  proxy.cutConnections();
  const response = await fn.handler(batch);
  assert.deepEqual(
    response.batchItemFailures.map((f) => f.itemIdentifier).sort(),
    ['pg-0', 'pg-1', 'pg-2', 'pg-3'],
    'no message is acknowledged before its record is committed',
  );
  assert.ok((added[MetricName.flushFailures] ?? 0) >= 1);
  assert.equal(await streamLength(), 4, 'the records stay buffered');
  assert.equal((await readRows(db.pool, db.schema)).length, 0);

  proxy.restore();
  const result = await fn.flushHandler();
  assert.equal(result.rows, 4);
  assert.equal(await streamLength(), 0);
  // SQS delivers the failed messages again: their records are committed now
  assert.deepEqual(await fn.handler(batch), { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 4);
  assert.equal(added[MetricName.duplicatesSkipped], 4);
  assert.equal(added[MetricName.filesCounted], 4, 'counted once, on the first delivery');
});

test('Redis unreachable: the messages fail fast, nothing is marked seen, and a retry after it is back records them once', async () => {
  const proxy = await new CuttableProxy('127.0.0.1', Number(new URL(testRedisUrl).port || 6379)).start();
  const redis = await createRedis({ url: proxy.url('redis'), port: proxy.port, tls: false });
  cleanups.push(async () => {
    redis.disconnect();
    await proxy.stop();
  });
  await redis.ping();
  const { fn } = build({ redis });
  const objects = await Promise.all(
    Array.from({ length: 3 }, (_, i) => upload(`outage/redis-${i}.txt`, 'a\nb\n')),
  );
  const batch = sqsEvent(...objects.map((o, i) => sqsRecord(`redis-${i}`, s3Event(o))));

  proxy.cutConnections();
  const started = Date.now();
  const response = await fn.handler(batch);
  assert.ok(Date.now() - started < 10_000, `failed fast (${Date.now() - started} ms)`);
  assert.deepEqual(response.batchItemFailures.map((f) => f.itemIdentifier).sort(), [
    'redis-0',
    'redis-1',
    'redis-2',
  ]);
  assert.deepEqual(await seenMarks(), [], 'nothing marked seen');
  assert.equal(await streamLength(), 0);

  proxy.restore();
  for (let i = 0; i < 50 && redis.status !== 'ready'; i++) await sleep(100);
  assert.deepEqual(await fn.handler(batch), { batchItemFailures: [] });
  assert.deepEqual(await fn.handler(batch), { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.file_name, r.line_count]),
    objects.map((o) => [o.key, '2']),
  );
  assert.equal((await seenMarks()).length, 3);
});

test('a message with two ObjectCreated records counts and records both', async () => {
  const { fn, added } = build();
  const first = await upload('pair/first.txt', 'a\nb\n');
  const second = await upload('pair/second.txt', 'a\nb\nc\nd\ne');
  const response = await fn.handler(sqsEvent(sqsRecord('pair', snsEnvelope(s3Event(first, second)))));
  assert.deepEqual(response, { batchItemFailures: [] });
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.file_name, r.line_count]),
    [
      ['pair/first.txt', '2'],
      ['pair/second.txt', '5'],
    ],
  );
  assert.equal(added[MetricName.filesCounted], 2);
  assert.equal(added[MetricName.linesCounted], 7);
});

test('a body shorter than its ContentLength fails the message instead of recording a short count', async () => {
  // a connection cut mid-body: the stream ends early and cleanly
  const truncatedS3 = {
    send: async () => ({ Body: Readable.from([Buffer.from('a\nb\n')]), ContentLength: 40 }),
  } as unknown as S3Client;
  const { fn } = build({ s3: truncatedS3 });
  const object = { key: 'truncated.txt', size: 40, eTag: 'e1', sequencer: nextSequencer() };
  const response = await fn.handler(sqsEvent(sqsRecord('cut', s3Event(object))));
  assert.deepEqual(response, { batchItemFailures: [{ itemIdentifier: 'cut' }] });
  assert.equal((await readRows(db.pool, db.schema)).length, 0);
  assert.equal(await streamLength(), 0, 'nothing buffered');
});

test('a record PostgreSQL cannot store fails its message alone and is quarantined; its batch-mates are acknowledged', async () => {
  const { fn, added } = build();
  const good = await Promise.all(Array.from({ length: 4 }, (_, i) => upload(`poison/good-${i}.txt`, 'x\n')));
  const bad = await upload('poison/nul\u0000key.txt', 'one\ntwo\n');
  const records = good.map((o, i) => sqsRecord(`good-${i}`, snsEnvelope(s3Event(o))));
  records.splice(2, 0, sqsRecord('poison', snsEnvelope(s3Event(bad))));
  const response = await fn.handler(sqsEvent(...records));
  assert.deepEqual(response, { batchItemFailures: [{ itemIdentifier: 'poison' }] });
  assert.equal((await readRows(db.pool, db.schema)).length, 4);
  assert.equal(added[MetricName.rowsQuarantined], 1);
  const { rows } = await db.pool.query(
    `SELECT message_id, error, record FROM ${db.schema}.line_counts_quarantine`,
  );
  assert.equal(rows.length, 1);
  assert.equal(rows[0].message_id, 'poison');
  assert.match(rows[0].error, /U\+0000/);
  assert.equal(JSON.parse(rows[0].record).lines, 2);
  // delivered again, it fails again with the same reason, and still nothing else moves
  const again = await fn.handler(sqsEvent(records[2] as SQSRecord));
  assert.deepEqual(again, { batchItemFailures: [{ itemIdentifier: 'poison' }] });
  await db.pool.query(`TRUNCATE ${db.schema}.line_counts_quarantine`);
});

test('an invocation whose records cannot be committed before its deadline fails them, and their retry is acknowledged once committed', async () => {
  const { fn, added } = build();
  const object = await upload('deadline/late.txt', 'a\n');
  const message = sqsRecord('late', s3Event(object));
  const keys = bufferKeys(settings);
  // another flusher holds the lock for longer than this invocation may wait
  await cache.redis.set(keys.lock, `${Date.now()}:another`, 'PX', 30_000);
  const context = { getRemainingTimeInMillis: () => 1_000 } as Context;
  const started = Date.now();
  const late = await fn.handler(sqsEvent(message), context);
  assert.ok(Date.now() - started < 1_500, 'answered before the function timeout');
  assert.deepEqual(late, { batchItemFailures: [{ itemIdentifier: 'late' }] });
  assert.equal(await streamLength(), 1, 'the record stays buffered');
  await cache.redis.del(keys.lock);
  assert.deepEqual(await fn.handler(sqsEvent(message)), { batchItemFailures: [] });
  assert.equal(await streamLength(), 0);
  assert.equal((await readRows(db.pool, db.schema)).length, 1);
  assert.equal(added[MetricName.filesCounted], 1);
  assert.equal(added[MetricName.duplicatesSkipped], 1);
});
