import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ChainableCommander, Redis } from 'ioredis';
import type pg from 'pg';
import type { BufferSettings } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import {
  type BufferKeys,
  bufferKeys,
  type CountedRecord,
  decodeRecord,
  ensureGroup,
  isNoGroup,
  runWatched,
} from './buffer.ts';
import { compareSequencers } from './events.ts';
import { qualifiedTable } from './schema.ts';

// Group commit: drain the buffer stream into PostgreSQL in one statement per
// batch, then acknowledge exactly the entries that statement covered.
//
// Exactly once in the table follows from three facts:
// - an entry leaves the stream (XACK + XDEL) only after the statement that
//   wrote it committed, so nothing is lost when PostgreSQL or the flusher fails;
// - an entry read but never acknowledged stays in the group's pending list: the
//   next flush under the shared consumer name reads it again at once, and one
//   left by another consumer name is reclaimed (XAUTOCLAIM) once idle longer
//   than claimIdleMs;
// - the upsert only replaces a row with a strictly newer sequencer, so writing
//   the same entry again, or an older event after a newer one, changes nothing.
// The flush lock only keeps flushers from doing the same work twice; correctness
// does not depend on it (a lock that expires under a slow flusher is harmless).

export interface FlushResult {
  skipped: boolean; // lock held by another flusher
  entries: number;
  rows: number;
  reclaimed: number;
  durationMs: number;
  // entries that held no readable record (not written by buffer.ts): acknowledged and dropped
  dropped: number;
}

export const FlushStage = { claimed: 'claimed', committed: 'committed' } as const;
export type FlushStage = (typeof FlushStage)[keyof typeof FlushStage];

export interface FlushOptions {
  // Every flusher may share one consumer name: the lock makes them take turns,
  // and a fixed name keeps the group from collecting one consumer per cold start.
  consumer?: string;
  // Called between the steps; a test throws here to play a flusher that dies there.
  checkpoint?: (stage: FlushStage) => void | Promise<void>;
}

const defaultConsumer = 'flusher';

type StreamEntry = [id: string, fields: string[] | null];
// [next cursor, claimed entries, ids that no longer exist (Redis 7)]
type AutoclaimReply = [string, StreamEntry[], string[]?];

interface Batch {
  ids: string[];
  records: CountedRecord[];
  reclaimed: number;
  dropped: number;
}

export async function flushBuffer(
  redis: Redis,
  pool: pg.Pool,
  settings: BufferSettings,
  schema: string,
  options: FlushOptions = {},
): Promise<FlushResult> {
  const started = performance.now();
  const keys = bufferKeys(settings);
  const consumer = options.consumer ?? defaultConsumer;
  // stop starting new batches after half the lock's lifetime
  const budgetMs = settings.flushLockMs / 2;
  const result: FlushResult = {
    skipped: false,
    entries: 0,
    rows: 0,
    reclaimed: 0,
    durationMs: 0,
    dropped: 0,
  };

  // A random token so that only the holder can extend or release the lock.
  const token = randomUUID();
  const acquired = await redis.set(keys.lock, token, 'PX', settings.flushLockMs, 'NX');
  if (acquired !== 'OK') {
    result.skipped = true;
    result.durationMs = performance.now() - started;
    return result;
  }
  try {
    for (;;) {
      const batch = await claimBatch(redis, keys, consumer, settings);
      if (batch.ids.length === 0) break;
      await options.checkpoint?.(FlushStage.claimed);
      result.rows += await writeRecords(pool, schema, keepNewest(batch.records));
      await options.checkpoint?.(FlushStage.committed);
      await acknowledge(redis, keys, batch.ids);
      result.entries += batch.ids.length;
      result.reclaimed += batch.reclaimed;
      result.dropped += batch.dropped;
      // a short batch means the stream is drained
      if (batch.ids.length < settings.flushMaxEntries) break;
      if (performance.now() - started > budgetMs) break;
      // the next batch gets the lock's full lifetime; if the lock was lost, stop
      if (!(await extendLock(redis, keys, token, settings.flushLockMs))) break;
    }
  } finally {
    // If Redis is gone the lock simply expires (PX); do not mask the real error.
    await releaseLock(redis, keys, token).catch(() => undefined);
  }
  result.durationMs = performance.now() - started;
  return result;
}

async function claimBatch(
  redis: Redis,
  keys: BufferKeys,
  consumer: string,
  settings: BufferSettings,
): Promise<Batch> {
  try {
    return await readBatch(redis, keys, consumer, settings);
  } catch (error) {
    // The group vanishes with the stream (e.g. the key was deleted); recreate and read again.
    if (!isNoGroup(error)) throw error;
    await ensureGroup(redis, keys, true);
    return readBatch(redis, keys, consumer, settings);
  }
}

async function readBatch(
  redis: Redis,
  keys: BufferKeys,
  consumer: string,
  settings: BufferSettings,
): Promise<Batch> {
  const limit = settings.flushMaxEntries;
  const entries: StreamEntry[] = [];
  const seen = new Set<string>();
  let reclaimed = 0;
  const take = (found: readonly StreamEntry[], pending: boolean) => {
    for (const entry of found) {
      if (seen.has(entry[0])) continue;
      seen.add(entry[0]);
      entries.push(entry);
      if (pending) reclaimed++;
    }
  };
  // Three reads in one round trip, oldest work first:
  // 1. this consumer's own pending entries. Every flusher shares the consumer
  //    name and takes turns under the lock, so these were read by an earlier
  //    flush that failed (PostgreSQL down) or died, and are retried at once
  //    rather than after claimIdleMs. An id instead of '>' reads the consumer's
  //    pending history without new deliveries (XREADGROUP reference).
  //    Rewriting an entry a slow flusher still holds is harmless: the upsert is
  //    idempotent and XACK of an acknowledged id is a no-op.
  // 2. entries another consumer name read and never acknowledged: XAUTOCLAIM
  //    hands over those idle > claimIdleMs. It can return our own entries from
  //    1 again (a history read does not reset their idle time): kept once.
  // 3. new entries ('>').
  // Each asks for up to `limit`; what does not fit in this batch is now in
  // this consumer's pending list, and the next batch (or flush) reads it first.
  const replies = await redis
    .pipeline()
    .xreadgroup('GROUP', keys.group, consumer, 'COUNT', limit, 'STREAMS', keys.stream, '0')
    .xautoclaim(keys.stream, keys.group, consumer, settings.claimIdleMs, '0-0', 'COUNT', limit)
    .xreadgroup('GROUP', keys.group, consumer, 'COUNT', limit, 'STREAMS', keys.stream, '>')
    .exec();
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
  if (replies?.length !== 3) throw new Error(`cannot read the buffer stream ${keys.stream}: no reply`);
  const [own, claimed, fresh] = replies.map(([, reply]) => reply);
  take(streamEntries(own), true);
  take((claimed as AutoclaimReply)[1], true);
  // XAUTOCLAIM scans the pending list in pages: follow its cursor until 0-0 (rarely needed)
  let cursor = (claimed as AutoclaimReply)[0];
  while (cursor !== '0-0' && entries.length < limit) {
    const reply = (await redis.xautoclaim(
      keys.stream,
      keys.group,
      consumer,
      settings.claimIdleMs,
      cursor,
      'COUNT',
      limit,
    )) as AutoclaimReply;
    cursor = reply[0];
    take(reply[1], true);
  }
  take(streamEntries(fresh), false);
  entries.splice(limit);
  reclaimed = Math.min(reclaimed, entries.length);
  const ids: string[] = [];
  const records: CountedRecord[] = [];
  let dropped = 0;
  for (const [id, fields] of entries) {
    ids.push(id);
    const record = decodeRecord(fields);
    if (record === undefined) dropped++;
    else records.push(record);
  }
  return { ids, records, reclaimed, dropped };
}

// XREADGROUP answers [[stream, entries]] (RESP2) or, from a RESP3 map flattened
// by the client, [stream, entries]; null when nothing is new.
function streamEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  if (typeof reply[0] === 'string') return (reply[1] as StreamEntry[] | undefined) ?? [];
  return reply.flatMap((stream) => (stream as [string, StreamEntry[]])[1] ?? []);
}

// ON CONFLICT DO UPDATE may not touch one row twice in a statement, and only
// the newest event per file matters: keep the largest sequencer per (bucket, key).
function keepNewest(records: readonly CountedRecord[]): CountedRecord[] {
  const newest = new Map<string, CountedRecord>();
  for (const record of records) {
    const id = JSON.stringify([record.bucket, record.key]);
    const current = newest.get(id);
    if (current === undefined || compareSequencers(current.sequencer, record.sequencer) < 0) {
      newest.set(id, record);
    }
  }
  return [...newest.values()];
}

// One statement whatever the batch size: eight array parameters, unnested into
// rows. A VALUES list would need 8 parameters per row and hit PostgreSQL's
// 65,535-parameter limit at 8,192 rows.
//
// Sequencers are compared in SQL, after upper-casing and right-padding the
// shorter one with zeros (S3 event message structure), in byte order (COLLATE
// "C", independent of the database's locale). The stored value stays exactly as
// S3 sent it rather than a padded form: no width has to be assumed, and the
// padding costs one comparison per conflicting row.
export async function writeRecords(
  pool: pg.Pool,
  schema: string,
  records: readonly CountedRecord[],
): Promise<number> {
  if (records.length === 0) return 0;
  const table = qualifiedTable(schema);
  const width = 'greatest(length(stored.sequencer), length(excluded.sequencer))';
  const sql = `
    INSERT INTO ${table} AS stored
      (bucket, file_name, line_count, size_bytes, etag, version_id, sequencer, event_time)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
    ON CONFLICT (bucket, file_name) DO UPDATE SET
      line_count = excluded.line_count,
      size_bytes = excluded.size_bytes,
      etag = excluded.etag,
      version_id = excluded.version_id,
      sequencer = excluded.sequencer,
      event_time = excluded.event_time,
      recorded_at = now()
    WHERE rpad(upper(stored.sequencer), ${width}, '0') COLLATE "C"
        < rpad(upper(excluded.sequencer), ${width}, '0') COLLATE "C"`;
  const params = [
    records.map((r) => r.bucket),
    records.map((r) => r.key),
    records.map((r) => r.lines),
    records.map((r) => r.bytes),
    records.map((r) => r.eTag),
    records.map((r) => r.versionId ?? null),
    records.map((r) => r.sequencer),
    records.map((r) => r.eventTime),
  ];
  try {
    const reply = await pool.query(sql, params);
    return reply.rowCount ?? 0;
  } catch (error) {
    throw new Error(
      `cannot write ${records.length} line counts to ${table}: ${describeError(error)} (the entries stay buffered in Redis and the next flush retries them)`,
      { cause: error },
    );
  }
}

async function acknowledge(redis: Redis, keys: BufferKeys, ids: readonly string[]): Promise<void> {
  // XACK and XDEL together: an entry acknowledged but not deleted would sit in
  // the stream forever, counted as backlog. Inside runWatched because EXEC would
  // otherwise clear a concurrent bufferRecord's WATCH on the same connection.
  const replies = await runWatched(redis, () =>
    redis
      .multi()
      .xack(keys.stream, keys.group, ...ids)
      .xdel(keys.stream, ...ids)
      .exec(),
  );
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (replies === null || failed) {
    throw new Error(
      `cannot acknowledge ${ids.length} flushed entries in ${keys.stream}: ${failed?.message ?? 'transaction aborted'} (they are already in PostgreSQL; the next flush rewrites them without changes)`,
      { cause: failed },
    );
  }
}

// Compare-and-act on the lock: only the holder of `token` may touch it.
// WATCH/GET/MULTI instead of a Lua script, so the emulated Redis can run it.
function changeLockIfHeld(
  redis: Redis,
  keys: BufferKeys,
  token: string,
  change: (transaction: ChainableCommander) => ChainableCommander,
): Promise<boolean> {
  return runWatched(redis, async () => {
    // WATCH and GET in one round trip; Redis runs them in order
    const [, holder] = await Promise.all([redis.watch(keys.lock), redis.get(keys.lock)]);
    if (holder !== token) {
      await redis.unwatch();
      return false;
    }
    return (await change(redis.multi()).exec()) !== null;
  });
}

function extendLock(redis: Redis, keys: BufferKeys, token: string, lockMs: number): Promise<boolean> {
  return changeLockIfHeld(redis, keys, token, (t) => t.pexpire(keys.lock, lockMs));
}

function releaseLock(redis: Redis, keys: BufferKeys, token: string): Promise<boolean> {
  return changeLockIfHeld(redis, keys, token, (t) => t.del(keys.lock));
}
