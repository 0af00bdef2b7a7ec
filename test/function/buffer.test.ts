import assert from 'node:assert/strict';
import { after, before, beforeEach, mock, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  appendRecord,
  type BufferOutcome,
  bufferKeys,
  bufferRecord,
  bufferRecords,
  type CountedRecord,
  decodeMessageId,
  decodeRecord,
  MarkState,
  quarantineMark,
  readMark,
} from '../../lambda-image/buffer.ts';
import { createRedis } from '../../lambda-image/connections.ts';
import { eventIdentity } from '../../lambda-image/events.ts';
import { flushBuffer } from '../../lambda-image/flush.ts';
import { migrate } from '../../lambda-image/schema.ts';
import type { BufferSettings } from '../../lib/config.ts';
import { startRedisEmulator } from '../../local/redis-emulator.ts';
import { CuttableProxy } from '../support/proxy.ts';
import { countedRecord, countedRecords, readRows, sleep, testBufferSettings } from '../support/records.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testRedisUrl,
  uniqueName,
} from '../support/services.ts';

// Coalesced buffering: the concurrent calls on one connection become one
// WATCH/MULTI/EXEC group, and each call still gets its own outcome.

let cache: TestRedis;
let settings: BufferSettings;

before(async () => {
  cache = await createTestRedis('buffer');
});

after(async () => {
  await cache.cleanup();
});

beforeEach(() => {
  settings = testBufferSettings(`${cache.prefix}${uniqueName('case')}:`);
});

async function streamIdentities(redis: Redis, streamSettings = settings): Promise<string[]> {
  const entries = await redis.xrange(bufferKeys(streamSettings).stream, '-', '+');
  return entries.map(([, fields]) => {
    const record = decodeRecord(fields);
    assert.ok(record, 'every entry holds a readable record');
    return eventIdentity(record);
  });
}

async function seenMarks(redis: Redis): Promise<string[]> {
  return redis.keys(`${settings.keyPrefix}seen*`);
}

// Counts the MULTI transactions the buffer opens on a connection.
function countTransactions(redis: Redis): { readonly count: number } {
  const multi = mock.method(redis, 'multi');
  return {
    get count() {
      return multi.mock.callCount();
    },
  };
}

test('a batch with internal duplicates is one transaction: each event buffered once, every other call a duplicate', async () => {
  const unique = countedRecords(60);
  await bufferRecord(cache.redis, settings, unique[0] as CountedRecord); // delivered earlier
  // the same event twice in the batch (a new message id, the same identity), shuffled in
  const batch = [...unique, ...unique.slice(0, 20).map((r) => ({ ...r }))].sort(() => Math.random() - 0.5);
  const transactions = countTransactions(cache.redis);
  try {
    const outcomes = await bufferRecords(cache.redis, settings, batch);
    assert.equal(transactions.count, 1, 'one MULTI for the whole batch');
    const buffered = new Map<string, number>();
    batch.forEach((record, i) => {
      if (outcomes[i] === 'buffered') {
        const id = eventIdentity(record);
        buffered.set(id, (buffered.get(id) ?? 0) + 1);
      }
    });
    assert.equal(buffered.size, 59, 'every new event buffered');
    assert.ok(
      [...buffered.values()].every((n) => n === 1),
      'and by exactly one call',
    );
    assert.equal(outcomes.filter((o) => o === 'duplicate').length, batch.length - 59);
    assert.equal(
      buffered.has(eventIdentity(unique[0] as CountedRecord)),
      false,
      'the earlier one is a duplicate',
    );
  } finally {
    mock.restoreAll();
  }
  const identities = await streamIdentities(cache.redis);
  assert.equal(identities.length, 60);
  assert.equal(new Set(identities).size, 60);
  assert.equal((await seenMarks(cache.redis)).length, 60);
});

test('calls arriving while a group runs form the next group, not one transaction each', async () => {
  const transactions = countTransactions(cache.redis);
  try {
    const all = countedRecords(300);
    // three waves, each starting while the previous group is on the wire
    const waves = [all.slice(0, 100), all.slice(100, 200), all.slice(200)];
    const pending: Promise<BufferOutcome>[] = [];
    for (const wave of waves) {
      pending.push(...wave.map((r) => bufferRecord(cache.redis, settings, r)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outcomes = await Promise.all(pending);
    assert.ok(
      outcomes.every((o) => o === 'buffered'),
      'all buffered',
    );
    assert.ok(transactions.count <= 3, `${transactions.count} transactions for 300 records`);
  } finally {
    mock.restoreAll();
  }
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 300);
});

test('two connections racing on overlapping batches buffer each event exactly once', async () => {
  const other = new Redis(testRedisUrl, { maxRetriesPerRequest: 1 });
  try {
    await other.ping();
    const all = countedRecords(400);
    // A takes 0..249, B takes 150..399; each side in several overlapping waves, with repeats
    const sideA = [...all.slice(0, 250), ...all.slice(200, 230)].sort(() => Math.random() - 0.5);
    const sideB = [...all.slice(150), ...all.slice(160, 180)].sort(() => Math.random() - 0.5);
    const run = async (redis: Redis, side: CountedRecord[]) => {
      const calls: Promise<BufferOutcome>[] = [];
      for (let i = 0; i < side.length; i += 40) {
        calls.push(...side.slice(i, i + 40).map((r) => bufferRecord(redis, settings, r)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      return Promise.all(calls);
    };
    const [a, b] = await Promise.all([run(cache.redis, sideA), run(other, sideB)]);
    const bufferedCount = new Map<string, number>();
    const tally = (side: CountedRecord[], outcomes: BufferOutcome[]) =>
      side.forEach((record, i) => {
        if (outcomes[i] !== 'buffered') return;
        const id = eventIdentity(record);
        bufferedCount.set(id, (bufferedCount.get(id) ?? 0) + 1);
      });
    tally(sideA, a);
    tally(sideB, b);
    assert.equal(bufferedCount.size, 400, 'every event buffered');
    assert.deepEqual(
      [...bufferedCount.entries()].filter(([, n]) => n !== 1),
      [],
      'by exactly one call',
    );
    const identities = await streamIdentities(cache.redis);
    assert.equal(identities.length, 400);
    assert.equal(new Set(identities).size, 400);
  } finally {
    other.disconnect();
  }
});

test('Redis cut in the middle of a group: every caller fails, nothing is marked seen, and a retry buffers each once', async () => {
  const proxy = await new CuttableProxy('127.0.0.1', Number(new URL(testRedisUrl).port || 6379)).start();
  // the function's own connection settings: fail fast once connected
  const redis = await createRedis({ url: proxy.url('redis'), port: proxy.port, tls: false });
  try {
    await redis.ping();
    const batch = countedRecords(25);
    // Cut after the marks were checked (WATCH + EXISTS answered) and before
    // the transaction goes out: the worst moment for "seen implies buffered".
    const multi = redis.multi.bind(redis);
    mock.method(redis, 'multi', (...args: Parameters<Redis['multi']>) => {
      proxy.cutConnections();
      return multi(...args);
    });
    const outcomes = await Promise.allSettled(batch.map((r) => bufferRecord(redis, settings, r)));
    mock.restoreAll();
    assert.deepEqual(
      outcomes.map((o) => o.status),
      batch.map(() => 'rejected'),
      'every caller of the group fails',
    );
    assert.deepEqual(await seenMarks(cache.redis), [], 'nothing marked seen');
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 0, 'nothing appended');

    proxy.restore();
    for (let i = 0; i < 50 && redis.status !== 'ready'; i++) await sleep(100);
    // SQS redelivers the messages (and, here, twice)
    assert.deepEqual(
      await bufferRecords(redis, settings, batch),
      batch.map(() => 'buffered'),
    );
    assert.deepEqual(
      await bufferRecords(redis, settings, batch),
      batch.map(() => 'duplicate'),
    );
    assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 25);
  } finally {
    mock.restoreAll();
    redis.disconnect();
    await proxy.stop();
  }
});

test('a command failing inside the transaction fails its own callers only, and takes its mark back', async () => {
  const broken = testBufferSettings(`${settings.keyPrefix}broken:`);
  const brokenStream = bufferKeys(broken).stream;
  await bufferRecord(cache.redis, broken, countedRecord({ key: 'first' })); // the group exists
  // then the stream key is replaced by a string: XADD answers WRONGTYPE inside EXEC
  await cache.redis.del(
    brokenStream,
    bufferKeys(broken).seen(eventIdentity(countedRecord({ key: 'first' }))),
  );
  await cache.redis.set(brokenStream, 'not a stream');
  await bufferRecord(cache.redis, settings, countedRecord({ key: 'warm' })); // and the good one's too
  const good = countedRecords(5, 'good');
  const bad = countedRecords(3, 'bad');
  const transactions = countTransactions(cache.redis);
  const calls = [
    ...good.map((r) => bufferRecord(cache.redis, settings, r)),
    ...bad.map((r) => bufferRecord(cache.redis, broken, r).catch((error: Error) => error)),
  ];
  const outcomes = await Promise.all(calls);
  mock.restoreAll();
  assert.equal(transactions.count, 1, 'both prefixes in one group');
  assert.deepEqual(
    outcomes.slice(0, 5),
    good.map(() => 'buffered'),
  );
  for (const outcome of outcomes.slice(5)) {
    assert.ok(outcome instanceof Error && /WRONGTYPE/.test(outcome.message), String(outcome));
  }
  assert.deepEqual(await cache.redis.keys(`${broken.keyPrefix}seen*`), [], 'no mark without its entry');
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 6);
});

test('coalesced buffering and the retry of failed flushes work on the demo emulated Redis', async () => {
  const emulator = await startRedisEmulator({ port: 0 });
  const redis = new Redis(emulator.url, { maxRetriesPerRequest: 1, protocol: 2, disableClientInfo: true });
  const db: TestSchema = await createTestSchema('buffer_emulated');
  try {
    await migrate(db.pool, db.schema);
    const local = testBufferSettings('demo:', { claimIdleMs: 60_000 });
    const batch = countedRecords(500);
    const outcomes = await bufferRecords(redis, local, [...batch, ...batch.slice(0, 50)]);
    assert.equal(outcomes.filter((o) => o === 'buffered').length, 500);
    assert.equal(await redis.xlen(bufferKeys(local).stream), 500);

    // a flush whose statement fails leaves the entries pending; the next one retries them at once
    await assert.rejects(flushBuffer(redis, db.pool, local, 'no_such_schema'), /entries stay buffered/);
    const retried = await flushBuffer(redis, db.pool, local, db.schema);
    assert.deepEqual([retried.entries, retried.rows, retried.reclaimed], [500, 500, 500]);
    assert.equal((await readRows(db.pool, db.schema)).length, 500);
    assert.equal(await redis.xlen(bufferKeys(local).stream), 0);
  } finally {
    redis.disconnect();
    await emulator.stop();
    await db.drop();
  }
});

test('2,500 concurrent calls on one connection all settle, in groups of at most 1,000', async () => {
  const transactions = countTransactions(cache.redis);
  const records = countedRecords(2_500);
  let outcomes: PromiseSettledResult<BufferOutcome>[];
  try {
    const calls = records.map((r) => bufferRecord(cache.redis, settings, r));
    // and more arriving while the first groups are on the wire
    await new Promise((resolve) => setImmediate(resolve));
    const late = countedRecords(500, 'late').map((r) => bufferRecord(cache.redis, settings, r));
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('calls still unsettled after 20 s')), 20_000).unref(),
    );
    outcomes = await Promise.race([Promise.allSettled([...calls, ...late]), timeout]);
  } finally {
    mock.restoreAll();
  }
  assert.equal(outcomes.length, 3_000);
  assert.deepEqual(
    outcomes.filter((o) => o.status !== 'fulfilled' || o.value !== 'buffered'),
    [],
  );
  assert.ok(transactions.count >= 3 && transactions.count <= 5, `${transactions.count} transactions`);
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 3_000);
});

test('a mark says where its event stands: pending and committed ones are duplicates, a quarantined one is buffered again', async () => {
  const [pending, committed, quarantined, fresh] = countedRecords(4, 'state');
  const keys = bufferKeys(settings);
  const mark = (record: CountedRecord) => keys.seen(eventIdentity(record));
  await bufferRecord(cache.redis, settings, pending as CountedRecord);
  await cache.redis.set(mark(committed as CountedRecord), MarkState.committed, 'EX', 60);
  await cache.redis.set(mark(quarantined as CountedRecord), quarantineMark('refused before'), 'EX', 60);
  const results = await Promise.all(
    [pending, committed, quarantined, fresh].map((r) =>
      appendRecord(cache.redis, settings, r as CountedRecord, 'msg-1'),
    ),
  );
  assert.deepEqual(results, [
    { outcome: 'duplicate', committed: false },
    { outcome: 'duplicate', committed: true },
    { outcome: 'buffered' },
    { outcome: 'buffered' },
  ]);
  assert.equal(readMark(await cache.redis.get(mark(quarantined as CountedRecord))).state, 'pending');
  const entries = await cache.redis.xrange(keys.stream, '-', '+');
  assert.equal(entries.length, 3, 'the pending one, then the quarantined one again and the fresh one');
  assert.deepEqual(
    entries.slice(1).map(([, fields]) => decodeMessageId(fields)),
    ['msg-1', 'msg-1'],
    'each entry names the message it was buffered for',
  );
});

test('a mark written by another release (a bare "1") is not trusted: the event is buffered again', async () => {
  const record = countedRecord({ key: 'uploads/legacy.txt' });
  await cache.redis.set(bufferKeys(settings).seen(eventIdentity(record)), '1', 'EX', 60);
  assert.equal(await bufferRecord(cache.redis, settings, record), 'buffered');
  assert.equal(await cache.redis.xlen(bufferKeys(settings).stream), 1);
});
