import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { appendRecord, bufferKeys, type CountedRecord } from '../../lambda-image/buffer.ts';
import { type CommitResult, type Committer, createCommitter } from '../../lambda-image/commit.ts';
import { createNotifier } from '../../lambda-image/notify.ts';
import { migrate } from '../../lambda-image/schema.ts';
import { type BufferSettings, loadRuntimeConfig } from '../../lib/config.ts';
import { countedRecord, countedRecords, readRows, sleep, testBufferSettings } from '../support/records.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testDatabaseUrl,
  testRedisUrl,
  uniqueName,
} from '../support/services.ts';

// The wait for a commit (commit.ts) on the machine's Redis and PostgreSQL:
// who flushes, who sleeps and what wakes it, what happens when the buffer
// loses its data or a flusher dies.

let db: TestSchema;
let cache: TestRedis;
let settings: BufferSettings;

before(async () => {
  db = await createTestSchema('commit');
  cache = await createTestRedis('commit');
  await migrate(db.pool, db.schema);
});

after(async () => {
  await cache.cleanup();
  await db.drop();
});

beforeEach(async () => {
  settings = testBufferSettings(`${cache.prefix}${uniqueName('case')}:`);
  await db.pool.query(`TRUNCATE ${db.schema}.line_counts`);
});

function committer(overrides: Partial<BufferSettings> = {}): Committer {
  const own = { ...settings, ...overrides };
  return createCommitter({
    redis: cache.redis,
    pool: db.pool,
    settings: own,
    schema: db.schema,
    notifier: createNotifier(cache.redis, bufferKeys(own).channel),
  });
}

function items(records: readonly CountedRecord[]) {
  return records.map((record, i) => ({ record, messageId: `m-${i}` }));
}

function statuses(results: readonly CommitResult[]): string[] {
  return results.map((r) => r.status);
}

// another flusher's lock, as flush.ts writes it, for as long as the test says
async function holdLock(ms: number): Promise<void> {
  await cache.redis.set(bufferKeys(settings).lock, `${Date.now()}:held-by-the-test`, 'PX', ms);
}

async function releaseLock(): Promise<void> {
  const keys = bufferKeys(settings);
  await cache.redis.del(keys.lock);
  await cache.redis.publish(keys.channel, '1');
}

test('with the lock free, the invocation commits its own records and each is committed', async () => {
  const records = countedRecords(5);
  const results = await committer().commit(items(records), Date.now() + 10_000);
  assert.deepEqual(
    statuses(results),
    records.map(() => 'committed'),
  );
  assert.ok(results.every((r) => r.appended));
  assert.equal((await readRows(db.pool, db.schema)).length, 5);
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0);
});

test('a waiter sleeps while another holds the lock and wakes on its announcement, not at the end of its lease', async () => {
  await holdLock(20_000);
  const started = Date.now();
  const pending = committer().commit(items(countedRecords(3)), Date.now() + 15_000);
  await sleep(300);
  assert.equal((await readRows(db.pool, db.schema)).length, 0, 'nothing committed while the lock is held');
  await releaseLock();
  const results = await pending;
  assert.deepEqual(statuses(results), ['committed', 'committed', 'committed']);
  assert.ok(Date.now() - started < 3_000, `woke after ${Date.now() - started} ms, not after the 20 s lease`);
});

test('what is not committed by the deadline fails, and stays buffered', async () => {
  await holdLock(20_000);
  const started = Date.now();
  const results = await committer().commit(items(countedRecords(2)), Date.now() + 700);
  const waited = Date.now() - started;
  assert.deepEqual(statuses(results), ['failed', 'failed']);
  assert.match(
    results[0]?.status === 'failed' ? results[0].error.message : '',
    /not committed in time: the record stays buffered/,
  );
  assert.ok(waited >= 650 && waited < 2_000, `gave up after ${waited} ms`);
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 2);
  await cache.redis.del(bufferKeys(settings).lock);
});

test('a retry of a record that is buffered but not committed waits for that commit instead of buffering again', async () => {
  const record = countedRecord({ key: 'uploads/retried.txt' });
  await holdLock(20_000);
  const first = await committer().commit(items([record]), Date.now() + 300);
  assert.deepEqual(statuses(first), ['failed']);
  assert.equal(first[0]?.appended, true);
  const keys = bufferKeys(settings);
  assert.equal(await cache.redis.xlen(keys.stream), 1);

  const retry = committer().commit(items([record]), Date.now() + 15_000);
  await sleep(200);
  assert.equal(await cache.redis.xlen(keys.stream), 1, 'not appended a second time');
  await releaseLock();
  const results = await retry;
  assert.deepEqual(statuses(results), ['duplicate']);
  assert.equal(results[0]?.appended, false);
  assert.equal((await readRows(db.pool, db.schema)).length, 1);
});

test('records whose buffer vanished while waiting (Redis lost its data) are appended again and committed', async () => {
  const records = countedRecords(4);
  await holdLock(20_000);
  const pending = committer().commit(items(records), Date.now() + 15_000);
  const keys = bufferKeys(settings);
  for (let i = 0; i < 100 && (await cache.redis.xlen(keys.stream)) < 4; i++) await sleep(10);
  // everything of this buffer goes, as with FLUSHALL: marks, stream, group, lock
  const all = await cache.redis.keys(`${settings.keyPrefix}*`);
  await cache.redis.del(...all);
  await cache.redis.publish(keys.channel, '1');
  const results = await pending;
  assert.deepEqual(
    statuses(results),
    records.map(() => 'committed'),
  );
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => r.file_name),
    records.map((r) => r.key),
  );
});

test('a record PostgreSQL cannot store comes back quarantined with the reason; the others are committed', async () => {
  const records = [...countedRecords(3), countedRecord({ key: 'uploads/bad\u0000key.txt' })];
  const results = await committer().commit(items(records), Date.now() + 10_000);
  assert.deepEqual(statuses(results), ['committed', 'committed', 'committed', 'quarantined']);
  const last = results[3];
  assert.match(last?.status === 'quarantined' ? last.reason : '', /key contains U\+0000/);
  await db.pool.query(`TRUNCATE ${db.schema}.line_counts_quarantine`);
});

test('a duplicate of a committed record is answered without a flush', async () => {
  const record = countedRecord({ key: 'uploads/once.txt' });
  await committer().commit(items([record]), Date.now() + 10_000);
  await holdLock(20_000);
  const started = Date.now();
  const results = await committer().commit(items([record]), Date.now() + 10_000);
  assert.deepEqual(statuses(results), ['duplicate']);
  assert.ok(Date.now() - started < 1_000);
  await cache.redis.del(bufferKeys(settings).lock);
});

test('a flusher killed mid-flush (SIGKILL) holds the others back for one lease: the next flush commits within 2 s', async () => {
  // the deployed lease, FLUSH_LOCK_MS by default
  const { flushLockMs } = loadRuntimeConfig({
    REDIS_URL: testRedisUrl,
    DATABASE_URL: testDatabaseUrl,
  }).buffer;
  const own = { ...settings, flushLockMs };
  const records = countedRecords(20);
  for (const [i, record] of records.entries()) await appendRecord(cache.redis, own, record, `m-${i}`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/function/flusher.ts',
      testRedisUrl,
      testDatabaseUrl,
      db.schema,
      JSON.stringify(own),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = once(child, 'exit');
    for (let i = 0; i < 300 && !output.includes('claimed'); i++) await sleep(50);
    assert.match(output, /claimed/, 'the child took the lock and read the entries');
    assert.ok(await cache.redis.get(bufferKeys(own).lock), 'it holds the lock');
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    // a redelivery of the same messages: their records are pending, held by the dead flusher
    const results = await committer({ flushLockMs }).commit(items(records), Date.now() + 15_000);
    const took = Date.now() - killedAt;
    assert.deepEqual(
      statuses(results),
      records.map(() => 'duplicate'),
    );
    assert.ok(took <= 2_000, `committed ${took} ms after the kill`);
    assert.equal((await readRows(db.pool, db.schema)).length, 20);
    assert.equal(await cache.redis.xlen(bufferKeys(own).stream), 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('a record marked pending whose entry is gone is appended again by the invocation that drained the stream', async () => {
  const record = countedRecord({ key: 'uploads/orphan-mark.txt' });
  await appendRecord(cache.redis, settings, record, 'first');
  // Redis kept the mark but lost the entry
  const keys = bufferKeys(settings);
  const [[id]] = (await cache.redis.xrange(keys.stream, '-', '+')) as [[string, string[]]];
  await cache.redis.xdel(keys.stream, id);
  const started = Date.now();
  const results = await committer().commit(items([record]), Date.now() + 10_000);
  assert.deepEqual(statuses(results), ['committed']);
  assert.ok(Date.now() - started < 2_000, 'at once, not at the deadline');
  assert.equal((await readRows(db.pool, db.schema)).length, 1);
});
