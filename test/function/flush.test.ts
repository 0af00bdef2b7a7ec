import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  appendRecord,
  bufferKeys,
  bufferRecord,
  type CountedRecord,
  describeBuffer,
  readMark,
} from '../../lambda-image/buffer.ts';
import { eventIdentity } from '../../lambda-image/events.ts';
import { FlushStage, flushBuffer } from '../../lambda-image/flush.ts';
import { migrate, qualifiedQuarantineTable, qualifiedTable } from '../../lambda-image/schema.ts';
import type { BufferSettings } from '../../lib/config.ts';
import { CuttableProxy } from '../support/proxy.ts';
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

// Buffer and group commit against the machine's real Redis and PostgreSQL.
// Every test gets a fresh key prefix; rows are cleared between tests.

let db: TestSchema;
let cache: TestRedis;
let prefix: string;

before(async () => {
  db = await createTestSchema('flush');
  cache = await createTestRedis('flush');
  await migrate(db.pool, db.schema);
});

after(async () => {
  await cache.cleanup();
  await db.drop();
});

beforeEach(async () => {
  prefix = `${cache.prefix}${uniqueName('case')}:`;
  await db.pool.query(`TRUNCATE ${qualifiedTable(db.schema)}`);
});

async function pendingInGroup(redis: Redis, settings = testBufferSettings(prefix)): Promise<number> {
  const keys = bufferKeys(settings);
  const summary = (await redis.xpending(keys.stream, keys.group)) as [number, ...unknown[]];
  return summary[0];
}

test('a duplicate event appends nothing to the buffer', async () => {
  const settings = testBufferSettings(prefix);
  const record = countedRecord();
  assert.equal(await bufferRecord(cache.redis, settings, record), 'buffered');
  assert.equal(await bufferRecord(cache.redis, settings, { ...record, lines: 99 }), 'duplicate');
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 1);
  const ttl = await cache.redis.ttl(bufferKeys(settings).seen(eventIdentity(record)));
  assert.ok(ttl > 0 && ttl <= settings.dedupeTtlSeconds, `dedupe mark expires (ttl ${ttl})`);
});

test('the same events buffered concurrently by two invocations are appended once each', async () => {
  const settings = testBufferSettings(prefix);
  const other = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
  try {
    await other.ping(); // connected, so neither side runs ahead while the other connects
    const batch = countedRecords(200);
    // Each "invocation" is one connection processing its batch concurrently, as the batch processor does.
    const [first, second] = await Promise.all([
      Promise.all(batch.map((r) => bufferRecord(cache.redis, settings, r))),
      Promise.all(batch.map((r) => bufferRecord(other, settings, r))),
    ]);
    for (let i = 0; i < batch.length; i++) {
      assert.deepEqual(
        [first[i], second[i]].sort(),
        ['buffered', 'duplicate'],
        `record ${i} buffered exactly once`,
      );
    }
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), batch.length);
  } finally {
    other.disconnect();
  }
});

test('a long object key is marked under a hashed key', () => {
  const keys = bufferKeys(testBufferSettings('p:'));
  const short = keys.seen('abc');
  const long = keys.seen('x'.repeat(1000));
  assert.equal(short, 'p:seen:abc');
  assert.ok(long.length < 80, long);
  assert.notEqual(long, keys.seen(`${'x'.repeat(999)}y`));
});

test('a flush writes the buffered records, acknowledges and deletes exactly those entries', async () => {
  const settings = testBufferSettings(prefix);
  for (const record of countedRecords(25)) await bufferRecord(cache.redis, settings, record);
  const before = await describeBuffer(cache.redis, settings);
  assert.equal(before.pending, 25);
  assert.ok(before.oldestAgeMs !== undefined && before.oldestAgeMs >= 0);

  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.skipped, false);
  assert.equal(result.entries, 25);
  assert.equal(result.rows, 25);
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 25);
  assert.equal(rows.find((r) => r.file_name === 'uploads/f-7.txt')?.line_count, '7');
  assert.deepEqual(await describeBuffer(cache.redis, settings), { pending: 0 });
  assert.equal(await pendingInGroup(cache.redis), 0);
  assert.equal(await cache.redis.get(bufferKeys(settings).lock), null, 'lock released');
});

test('an older event arriving after a newer one leaves the newer count', async () => {
  const settings = testBufferSettings(prefix);
  const newer = countedRecord({ sequencer: '0055AED6DCD90281E6', lines: 20, eTag: 'new' });
  const older = countedRecord({ sequencer: '0055AED6DCD90281E5', lines: 10, eTag: 'old' });
  await bufferRecord(cache.redis, settings, newer);
  await flushBuffer(cache.redis, db.pool, settings, db.schema);
  await bufferRecord(cache.redis, settings, older);
  const late = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(late.entries, 1);
  assert.equal(late.rows, 0);
  const [row] = await readRows(db.pool, db.schema);
  assert.equal(row?.line_count, '20');
  assert.equal(row?.etag, 'new');
});

test('within one batch only the newest event per file is written', async () => {
  const settings = testBufferSettings(prefix);
  await bufferRecord(cache.redis, settings, countedRecord({ sequencer: '0B', lines: 2, eTag: 'b' }));
  await bufferRecord(cache.redis, settings, countedRecord({ sequencer: '0C', lines: 3, eTag: 'c' }));
  await bufferRecord(cache.redis, settings, countedRecord({ sequencer: '0A', lines: 1, eTag: 'a' }));
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.entries, 3);
  assert.equal(result.rows, 1);
  const [row] = await readRows(db.pool, db.schema);
  assert.equal(row?.line_count, '3');
});

test('sequencers of different lengths compare after right-padding with zeros', async () => {
  const settings = testBufferSettings(prefix);
  // padded: "90" > "10", so "10" is the older event although it is numerically larger
  const cases = [
    { key: 'pad-1', first: '9', second: '10', kept: '9' },
    // equal once padded: the same event, the stored row stays
    { key: 'pad-2', first: 'A', second: 'A0', kept: 'A' },
    // "0FF" < "1": the shorter, padded to "100", is newer
    { key: 'pad-3', first: '0FF', second: '1', kept: '1' },
    // case does not matter: "B0" > "a1" once both are upper-cased
    { key: 'pad-4', first: 'a1', second: 'B0', kept: 'B0' },
  ];
  for (const c of cases) {
    await bufferRecord(
      cache.redis,
      settings,
      countedRecord({ key: c.key, sequencer: c.first, eTag: c.first }),
    );
  }
  await flushBuffer(cache.redis, db.pool, settings, db.schema);
  for (const c of cases) {
    await bufferRecord(
      cache.redis,
      settings,
      countedRecord({ key: c.key, sequencer: c.second, eTag: c.second }),
    );
  }
  await flushBuffer(cache.redis, db.pool, settings, db.schema);
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    Object.fromEntries(rows.map((r) => [r.file_name, r.sequencer])),
    Object.fromEntries(cases.map((c) => [c.key, c.kept])),
  );
});

test('a flush while another holds the lock is skipped and writes nothing', async () => {
  const settings = testBufferSettings(prefix);
  await bufferRecord(cache.redis, settings, countedRecord());
  await cache.redis.set(bufferKeys(settings).lock, 'someone-else', 'PX', 5000);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.skipped, true);
  assert.equal((await readRows(db.pool, db.schema)).length, 0);
  assert.equal(
    await cache.redis.get(bufferKeys(settings).lock),
    'someone-else',
    "another's lock is left alone",
  );
});

test('a flush loops over full batches until the buffer is drained', async () => {
  const settings = testBufferSettings(prefix, { flushMaxEntries: 10 });
  for (const record of countedRecords(35)) await bufferRecord(cache.redis, settings, record);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.entries, 35);
  assert.equal((await readRows(db.pool, db.schema)).length, 35);
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0);
});

test('PostgreSQL unreachable: the flush fails, nothing is acknowledged, and the next flush retries at once and writes each record once', async () => {
  // a claim timeout far longer than the test: only the retry of the shared consumer's own pending entries can pass it
  const settings = testBufferSettings(prefix, { claimIdleMs: 600_000 });
  const proxy = await new CuttableProxy('127.0.0.1', 5432).start();
  const url = new URL(testDatabaseUrl);
  url.port = String(proxy.port);
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2, connectionTimeoutMillis: 2000 });
  pool.on('error', () => undefined); // idle clients die with the cut; the next query reconnects
  try {
    for (const record of countedRecords(12)) await bufferRecord(cache.redis, settings, record);
    proxy.cutConnections();
    await assert.rejects(flushBuffer(cache.redis, pool, settings, db.schema), /entries stay buffered/);
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 12, 'entries stay in the stream');
    assert.equal(await pendingInGroup(cache.redis), 12, 'read but unacknowledged');
    assert.equal(
      await cache.redis.get(bufferKeys(settings).lock),
      null,
      'the failed flush released its lock',
    );

    proxy.restore();
    const result = await flushBuffer(cache.redis, pool, settings, db.schema);
    assert.equal(result.reclaimed, 12);
    assert.equal(result.rows, 12);
    assert.equal((await readRows(db.pool, db.schema)).length, 12);
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0);
    assert.equal(await pendingInGroup(cache.redis), 0);
  } finally {
    await pool.end();
    await proxy.stop();
  }
});

test('a flusher that dies after commit and before acknowledging: the next flush rewrites nothing', async () => {
  const settings = testBufferSettings(prefix);
  for (const record of countedRecords(10)) await bufferRecord(cache.redis, settings, record);
  const dies = async (stage: FlushStage) => {
    if (stage === FlushStage.committed) throw new Error('flusher died after commit');
  };
  await assert.rejects(
    flushBuffer(cache.redis, db.pool, settings, db.schema, { consumer: 'crashed', checkpoint: dies }),
    /died after commit/,
  );
  const committed = await readRows(db.pool, db.schema);
  assert.equal(committed.length, 10, 'the statement committed');
  assert.equal(await pendingInGroup(cache.redis), 10, 'but nothing was acknowledged');

  await sleep(settings.claimIdleMs + 50);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.reclaimed, 10);
  assert.equal(result.rows, 0, 'the rewrite changes no row');
  assert.deepEqual(await readRows(db.pool, db.schema), committed, 'not even recorded_at');
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0);
  assert.equal(await pendingInGroup(cache.redis), 0);
});

test('a flusher that dies before commit: the next flush retries its entries at once and writes each record once', async () => {
  const settings = testBufferSettings(prefix, { claimIdleMs: 600_000 });
  for (const record of countedRecords(10)) await bufferRecord(cache.redis, settings, record);
  const dies = async (stage: FlushStage) => {
    if (stage === FlushStage.claimed) throw new Error('flusher died before commit');
  };
  await assert.rejects(
    flushBuffer(cache.redis, db.pool, settings, db.schema, { checkpoint: dies }),
    /died before commit/,
  );
  assert.equal((await readRows(db.pool, db.schema)).length, 0);
  assert.equal(await pendingInGroup(cache.redis), 10);

  // the flushers share one consumer name: the next lock holder rereads its pending entries
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.reclaimed, 10);
  assert.equal(result.entries, 10);
  assert.equal(result.rows, 10);
  const rows = await readRows(db.pool, db.schema);
  assert.equal(rows.length, 10);
  assert.equal(new Set(rows.map((r) => r.file_name)).size, 10);
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0);
  assert.equal(await pendingInGroup(cache.redis), 0);
});

test("own pending entries, other consumers' idle entries and new entries all go into one flush, each once", async () => {
  const settings = testBufferSettings(prefix);
  const keys = bufferKeys(settings);
  for (const record of countedRecords(4, 'own')) await bufferRecord(cache.redis, settings, record);
  await assert.rejects(
    flushBuffer(cache.redis, db.pool, settings, db.schema, {
      checkpoint: (stage) => {
        if (stage === FlushStage.claimed) throw new Error('statement failed');
      },
    }),
  );
  for (const record of countedRecords(3, 'other')) await bufferRecord(cache.redis, settings, record);
  await cache.redis.xreadgroup('GROUP', keys.group, 'gone', 'COUNT', 100, 'STREAMS', keys.stream, '>');
  for (const record of countedRecords(2, 'new')) await bufferRecord(cache.redis, settings, record);
  // after the claim timeout XAUTOCLAIM returns our own idle entries too: they are taken once
  await sleep(settings.claimIdleMs + 50);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.deepEqual([result.entries, result.reclaimed, result.rows], [9, 7, 9]);
  assert.equal((await readRows(db.pool, db.schema)).length, 9);
  assert.equal(await pendingInGroup(cache.redis), 0);
});

test('entries abandoned by another consumer are left alone until idle, then reclaimed', async () => {
  // long enough that a loaded machine cannot make the entries idle before the first flush
  const settings = testBufferSettings(prefix, { claimIdleMs: 3_000 });
  const keys = bufferKeys(settings);
  for (const record of countedRecords(5)) await bufferRecord(cache.redis, settings, record);
  // a flusher on another machine reads the entries, then its process is gone
  await cache.redis.xreadgroup('GROUP', keys.group, 'gone', 'COUNT', 100, 'STREAMS', keys.stream, '>');
  for (const record of countedRecords(3, 'late')) await bufferRecord(cache.redis, settings, record);
  const early = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.deepEqual([early.entries, early.reclaimed], [3, 0], 'not stolen while possibly in use');
  await sleep(settings.claimIdleMs + 50);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.reclaimed, 5);
  assert.equal(result.entries, 5);
  assert.equal((await readRows(db.pool, db.schema)).length, 8);
  assert.equal(await pendingInGroup(cache.redis), 0);
});

test('one flush of 20,000 entries succeeds in a single statement', async () => {
  const settings = testBufferSettings(prefix, { flushMaxEntries: 20_000 });
  const keys = bufferKeys(settings);
  await bufferRecord(cache.redis, settings, countedRecord({ key: 'first' }));
  // Fill the stream directly in pipelined chunks: the dedupe path is tested above,
  // and 20,000 WATCH transactions would only slow this test down.
  const all = countedRecords(19_999, 'bulk');
  for (let i = 0; i < all.length; i += 2000) {
    const pipeline = cache.redis.pipeline();
    for (const record of all.slice(i, i + 2000)) pipeline.xadd(keys.stream, '*', 'r', JSON.stringify(record));
    await pipeline.exec();
  }
  assert.equal(await cache.redis.xlen(keys.stream), 20_000);
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
  assert.equal(result.entries, 20_000);
  assert.equal(result.rows, 20_000);
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${qualifiedTable(db.schema)}`);
  assert.equal(rows[0].n, 20_000);
  assert.equal(await cache.redis.xlen(keys.stream), 0);
});

async function quarantined(): Promise<
  {
    identity: string;
    file_name: string | null;
    error_code: string | null;
    error: string;
    message_id: string | null;
    record: string;
    attempts: number;
  }[]
> {
  const { rows } = await db.pool.query(
    `SELECT identity, file_name, error_code, error, message_id, record, attempts FROM ${qualifiedQuarantineTable(db.schema)} ORDER BY identity`,
  );
  return rows;
}

async function markOf(settings: BufferSettings, record: CountedRecord) {
  return readMark(await cache.redis.get(bufferKeys(settings).seen(eventIdentity(record))));
}

test('counts above 2^31 are stored exactly', async () => {
  const settings = testBufferSettings(prefix);
  const huge = [2 ** 31 + 1, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER];
  for (const [i, lines] of huge.entries()) {
    await bufferRecord(
      cache.redis,
      settings,
      countedRecord({ key: `uploads/huge-${i}.txt`, lines, bytes: lines }),
    );
  }
  await flushBuffer(cache.redis, db.pool, settings, db.schema);
  const rows = await readRows(db.pool, db.schema);
  assert.deepEqual(
    rows.map((r) => [r.line_count, r.size_bytes]),
    huge.map((n) => [String(n), String(n)]),
  );
});

test('a row PostgreSQL refuses is isolated: the rest of its batch commits and the row is quarantined with the error', async () => {
  const settings = testBufferSettings(prefix);
  // a rule the database enforces and the function does not know about
  const table = qualifiedTable(db.schema);
  await db.pool.query(`ALTER TABLE ${table} ADD CONSTRAINT no_poison CHECK (file_name NOT LIKE '%poison%')`);
  try {
    const records = countedRecords(40);
    const poison = countedRecord({ key: 'uploads/poison.txt', lines: 5 });
    records.splice(17, 0, poison);
    for (const [i, record] of records.entries()) {
      await appendRecord(cache.redis, settings, record, `message-${i}`);
    }
    const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    assert.deepEqual([result.entries, result.rows, result.quarantined], [41, 40, 1]);
    // one failed statement over 41 rows, then halves down to the poison alone, then the quarantine
    assert.ok(result.statements <= 2 * Math.ceil(Math.log2(41)) + 2, `${result.statements} statements`);
    const rows = await readRows(db.pool, db.schema);
    assert.equal(rows.length, 40);
    assert.ok(!rows.some((r) => r.file_name === poison.key));
    const [held] = await quarantined();
    assert.equal(held?.file_name, poison.key);
    assert.equal(held?.error_code, '23514');
    assert.match(held?.error ?? '', /PostgreSQL refused the row: .*no_poison/);
    assert.equal(held?.message_id, 'message-17');
    assert.equal(JSON.parse(held?.record ?? '{}').lines, 5, 'the record, with its count, is kept');
    assert.equal((await markOf(settings, poison)).state, 'quarantined');
    assert.equal((await markOf(settings, records[0] as CountedRecord)).state, 'committed');
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0, 'nothing blocks the next flush');

    // tried again (a redelivery), it is refused again: one quarantine row, two attempts
    await appendRecord(cache.redis, settings, poison, 'message-17');
    await bufferRecord(cache.redis, settings, countedRecord({ key: 'uploads/after.txt' }));
    const again = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    assert.deepEqual([again.rows, again.quarantined], [1, 1]);
    assert.deepEqual(
      (await quarantined()).map((q) => q.attempts),
      [2],
    );
  } finally {
    await db.pool.query(`ALTER TABLE ${table} DROP CONSTRAINT no_poison`);
    await db.pool.query(`TRUNCATE ${qualifiedQuarantineTable(db.schema)}`);
  }
});

test('an event time PostgreSQL cannot store is quarantined with its SQLSTATE', async () => {
  const settings = testBufferSettings(prefix);
  const ancient = countedRecord({ key: 'uploads/ancient.txt', eventTime: '-271821-04-20T00:00:00.000Z' });
  await bufferRecord(cache.redis, settings, ancient);
  for (const record of countedRecords(3)) await bufferRecord(cache.redis, settings, record);
  try {
    const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    assert.deepEqual([result.rows, result.quarantined], [3, 1]);
    const [held] = await quarantined();
    assert.equal(held?.file_name, ancient.key);
    assert.match(held?.error_code ?? '', /^22/);
  } finally {
    await db.pool.query(`TRUNCATE ${qualifiedQuarantineTable(db.schema)}`);
  }
});

test('a key with U+0000 is quarantined without a failing statement, its key kept escaped in the record', async () => {
  const settings = testBufferSettings(prefix);
  const nul = countedRecord({ key: 'uploads/nul\u0000name.txt' });
  await bufferRecord(cache.redis, settings, nul);
  await bufferRecord(cache.redis, settings, countedRecord({ key: 'uploads/fine.txt' }));
  try {
    const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    assert.deepEqual([result.rows, result.quarantined, result.statements], [1, 1, 2]);
    const [held] = await quarantined();
    assert.equal(held?.file_name, null, 'text cannot hold the key');
    assert.equal(held?.error_code, null);
    assert.match(held?.error ?? '', /key contains U\+0000/);
    assert.equal(JSON.parse(held?.record ?? '{}').key, nul.key, 'the record keeps the key exactly');
    assert.equal((await markOf(settings, nul)).state, 'quarantined');
  } finally {
    await db.pool.query(`TRUNCATE ${qualifiedQuarantineTable(db.schema)}`);
  }
});

test('when the newest event of a file is refused, the older one in the batch is written in its place', async () => {
  const settings = testBufferSettings(prefix);
  const older = countedRecord({ key: 'uploads/twice.txt', sequencer: '0A', lines: 1, eTag: 'a' });
  const newer = countedRecord({
    key: 'uploads/twice.txt',
    sequencer: '0B',
    lines: 2,
    eTag: 'b',
    eventTime: '-271821-04-20T00:00:00.000Z',
  });
  await bufferRecord(cache.redis, settings, older);
  await bufferRecord(cache.redis, settings, newer);
  try {
    const result = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    assert.deepEqual([result.rows, result.quarantined], [1, 1]);
    const [row] = await readRows(db.pool, db.schema);
    assert.deepEqual([row?.line_count, row?.sequencer], ['1', '0A']);
    assert.equal((await markOf(settings, older)).state, 'committed');
    assert.equal((await markOf(settings, newer)).state, 'quarantined');
  } finally {
    await db.pool.query(`TRUNCATE ${qualifiedQuarantineTable(db.schema)}`);
  }
});

test('a flush renews its lease while it runs: a flush longer than the lease keeps the lock to the end', async () => {
  const settings = testBufferSettings(prefix, { flushLockMs: 300 });
  const keys = bufferKeys(settings);
  for (const record of countedRecords(5)) await bufferRecord(cache.redis, settings, record);
  let during: Awaited<ReturnType<typeof flushBuffer>> | undefined;
  const result = await flushBuffer(cache.redis, db.pool, settings, db.schema, {
    checkpoint: async (stage) => {
      if (stage !== FlushStage.claimed) return;
      await sleep(1_000); // more than three leases
      during = await flushBuffer(cache.redis, db.pool, settings, db.schema);
    },
  });
  assert.equal(during?.skipped, true, 'the lock was still held after three leases');
  assert.equal(result.rows, 5);
  assert.equal(await cache.redis.get(keys.lock), null, 'released at the end');
  assert.ok(await cache.redis.get(keys.since), 'the flush left the buffer-since marker');
});

test('a settled batch marks each event committed and announces it on the buffer channel', async () => {
  const settings = testBufferSettings(prefix);
  const keys = bufferKeys(settings);
  const records = countedRecords(3);
  for (const record of records) await bufferRecord(cache.redis, settings, record);
  const subscriber = cache.redis.duplicate();
  const messages: string[] = [];
  try {
    subscriber.on('message', (channel: string) => messages.push(channel));
    await subscriber.subscribe(keys.channel);
    const settled: string[] = [];
    await flushBuffer(cache.redis, db.pool, settings, db.schema, {
      onBatch: (marks) => {
        settled.push(...marks.keys());
        return undefined;
      },
    });
    assert.deepEqual(settled.sort(), records.map((r) => keys.seen(eventIdentity(r))).sort());
    for (const record of records) assert.equal((await markOf(settings, record)).state, 'committed');
    for (let i = 0; i < 50 && messages.length < 2; i++) await sleep(10);
    assert.ok(messages.length >= 2, 'a commit and a release announced');
  } finally {
    subscriber.disconnect();
  }
});
