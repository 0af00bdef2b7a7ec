import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainableCommander, Redis } from 'ioredis';
import type pg from 'pg';
import type { BufferSettings } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import {
  type BufferKeys,
  bufferKeys,
  type CountedRecord,
  decodeMessageId,
  decodeRecord,
  ensureGroup,
  isNoGroup,
  MarkState,
  type MarkValue,
  quarantineMark,
  runWatched,
} from './buffer.ts';
import { compareSequencers, eventIdentity } from './events.ts';
import { qualifiedQuarantineTable, qualifiedTable } from './schema.ts';

// Group commit: drain the buffer stream into PostgreSQL in one statement per
// batch, then settle exactly the entries that statement covered: mark each
// event committed (or quarantined), acknowledge and delete its entry, and
// announce it on the buffer's channel so waiting invocations look at once.
//
// Exactly once in the table follows from three facts:
// - an entry leaves the stream (XACK + XDEL) only after the statement that
//   wrote it committed, in the same transaction that marks its event
//   committed, so nothing is lost when PostgreSQL or the flusher fails;
// - an entry read but never acknowledged stays in the group's pending list: the
//   next flush under the shared consumer name reads it again at once, and one
//   left by another consumer name is reclaimed (XAUTOCLAIM) once idle longer
//   than claimIdleMs;
// - the upsert only replaces a row with a strictly newer sequencer, so writing
//   the same entry again, or an older event after a newer one, changes nothing.
// The flush lock only keeps flushers from doing the same work twice; correctness
// does not depend on it. It is a lease of FLUSH_LOCK_MS, renewed while the
// flush runs, so a flusher that dies stalls the others for one lease at most.
//
// A row PostgreSQL refuses (a data error: a key with U+0000, a time out of
// range, a constraint) is isolated by splitting the batch until the statement
// that fails holds that row alone; the rest commits, and the row goes to the
// quarantine table with the error, its event marked quarantined.

export interface FlushResult {
  skipped: boolean; // lock held by another flusher
  entries: number;
  rows: number;
  reclaimed: number;
  durationMs: number;
  // entries that held no readable record (not written by buffer.ts): acknowledged and dropped
  dropped: number;
  // records PostgreSQL refused, written to the quarantine table
  quarantined: number;
  // statements sent to PostgreSQL, each its own transaction
  statements: number;
  // the flush ended on a short batch: nothing readable was left in the stream
  drained: boolean;
}

export const FlushStage = { claimed: 'claimed', committed: 'committed' } as const;
export type FlushStage = (typeof FlushStage)[keyof typeof FlushStage];

// the marks a batch settled: committed, or quarantined with the reason
export type SettledMarks = ReadonlyMap<string, MarkValue>;

interface FlushOptions {
  // Every flusher may share one consumer name: the lock makes them take turns,
  // and a fixed name keeps the group from collecting one consumer per cold start.
  consumer?: string;
  // Called between the steps; a test throws here to play a flusher that dies there.
  checkpoint?: (stage: FlushStage) => void | Promise<void>;
  // No batch starts after this time (ms since the epoch).
  deadline?: number;
  // Called after each settled batch; returning false ends the flush there.
  onBatch?: (settled: SettledMarks) => boolean | undefined;
  // Once the lock is taken, wait this long before the first read, so records
  // other invocations are appending at this moment join this commit.
  gatherMs?: number;
}

const defaultConsumer = 'flusher';
// a flush without a deadline stops starting batches after this long
const defaultBudgetMs = 15_000;
// the lease is renewed three times per lifetime: two renewals may be late
const renewalsPerLease = 3;

type StreamEntry = [id: string, fields: string[] | null];
// [next cursor, claimed entries, ids that no longer exist (Redis 7)]
type AutoclaimReply = [string, StreamEntry[], string[]?];

interface BufferedRecord {
  record: CountedRecord;
  messageId: string | undefined;
}

interface Batch {
  ids: string[];
  records: BufferedRecord[];
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
  const deadline = options.deadline ?? Date.now() + defaultBudgetMs;
  const result: FlushResult = {
    skipped: false,
    entries: 0,
    rows: 0,
    reclaimed: 0,
    durationMs: 0,
    dropped: 0,
    quarantined: 0,
    statements: 0,
    drained: false,
  };

  const lease = await acquireLock(redis, keys, settings.flushLockMs);
  if (lease === undefined) {
    result.skipped = true;
    result.durationMs = performance.now() - started;
    return result;
  }
  try {
    if ((options.gatherMs ?? 0) > 0) await sleep(options.gatherMs);
    for (;;) {
      const batch = await claimBatch(redis, keys, consumer, settings);
      if (batch.ids.length === 0) {
        result.drained = true;
        break;
      }
      await options.checkpoint?.(FlushStage.claimed);
      const written = await commitRecords(pool, schema, batch.records);
      result.rows += written.rows;
      result.statements += written.statements;
      await options.checkpoint?.(FlushStage.committed);
      // the last batch releases the lock in the transaction that settles it
      const last = batch.ids.length < settings.flushMaxEntries || Date.now() > deadline || lease.lost();
      const settled = await settleBatch(
        redis,
        keys,
        settings,
        batch,
        written.refused,
        last ? lease : undefined,
      );
      result.entries += batch.ids.length;
      result.reclaimed += batch.reclaimed;
      result.dropped += batch.dropped;
      result.quarantined += written.refused.size;
      const wanted = options.onBatch?.(settled);
      // a short batch means the stream is drained
      if (batch.ids.length < settings.flushMaxEntries) {
        result.drained = true;
        break;
      }
      if (wanted === false) break;
      if (Date.now() > deadline || lease.lost()) break;
    }
  } finally {
    // If Redis is gone the lock simply expires (PX); do not mask the real error.
    await lease.release().catch(() => undefined);
  }
  result.durationMs = performance.now() - started;
  return result;
}

interface Lease {
  token: string;
  lost(): boolean;
  // stops renewing; resolves once no renewal is on the wire
  stopRenewing(): Promise<void>;
  // the lock was deleted along with a settled batch
  released(): void;
  release(): Promise<void>;
}

// The lock's value names when it was taken, for ops/status; a random part
// makes it this flusher's alone to extend or release.
function lockToken(acquiredAt: number): string {
  return `${acquiredAt}:${randomUUID()}`;
}

// when a lock value written by lockToken was taken; undefined for another value
export function lockAcquiredAt(value: string): number | undefined {
  const match = /^(\d{13}):/.exec(value);
  return match === null ? undefined : Number(match[1]);
}

// SET NX PX takes the lock with its lease (Redis SET reference: NX, PX). The
// same round trip sets the buffer's "since" marker when it is absent: a
// marker that disappears with Redis's data, so ops/status can tell that the
// buffer was reset.
async function acquireLock(redis: Redis, keys: BufferKeys, leaseMs: number): Promise<Lease | undefined> {
  const now = Date.now();
  const token = lockToken(now);
  const [acquired] = await Promise.all([
    redis.set(keys.lock, token, 'PX', leaseMs, 'NX'),
    redis.set(keys.since, new Date(now).toISOString(), 'NX'),
  ]);
  if (acquired !== 'OK') return undefined;
  let lost = false;
  let done = false;
  let renewing: Promise<void> | undefined;
  const timer = setInterval(
    () => {
      if (renewing !== undefined) return;
      renewing = extendLock(redis, keys, token, leaseMs)
        .then(
          (held) => {
            if (!held) lost = true;
          },
          () => {
            lost = true;
          },
        )
        .finally(() => {
          renewing = undefined;
        });
    },
    Math.max(50, Math.floor(leaseMs / renewalsPerLease)),
  );
  return {
    token,
    lost: () => lost,
    async stopRenewing() {
      clearInterval(timer);
      await renewing;
    },
    released() {
      done = true;
    },
    async release() {
      clearInterval(timer);
      await renewing;
      if (!done) await releaseLock(redis, keys, token);
      announce(redis, keys);
    },
  };
}

// Wakes the invocations waiting for a commit or for the lock (commit.ts). A
// lost announcement costs a waiter one wait of its timer, nothing more, and a
// server without PUBLISH (the demo's emulation) simply has none.
function announce(redis: Redis, keys: BufferKeys): void {
  redis.publish(keys.channel, '1').catch(() => undefined);
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
    // The group vanishes with the stream (e.g. the key was deleted, or Redis
    // lost its data); recreate and read again.
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
  const records: BufferedRecord[] = [];
  let dropped = 0;
  for (const [id, fields] of entries) {
    ids.push(id);
    const record = decodeRecord(fields);
    if (record === undefined) dropped++;
    else records.push({ record, messageId: decodeMessageId(fields) });
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

function fileKey(record: CountedRecord): string {
  return JSON.stringify([record.bucket, record.key]);
}

// ON CONFLICT DO UPDATE may not touch one row twice in a statement, and only
// the newest event per file matters: keep the largest sequencer per (bucket,
// key). Sorted by file, so concurrent flushers (a lease that lapsed under a slow
// one) lock rows in the same order and cannot deadlock each other.
function keepNewest(records: readonly CountedRecord[]): CountedRecord[] {
  const newest = new Map<string, CountedRecord>();
  for (const record of records) {
    const id = fileKey(record);
    const current = newest.get(id);
    if (current === undefined || compareSequencers(current.sequencer, record.sequencer) < 0) {
      newest.set(id, record);
    }
  }
  return [...newest.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, record]) => record);
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
async function upsert(pool: pg.Pool, schema: string, records: readonly CountedRecord[]): Promise<number> {
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
  const reply = await pool.query(sql, params);
  return reply.rowCount ?? 0;
}

function cannotWrite(table: string, count: number, error: unknown): Error {
  return new Error(
    `cannot write ${count} line counts to ${table}: ${describeError(error)} (the entries stay buffered in Redis and the next flush retries them)`,
    { cause: error },
  );
}

export async function writeRecords(
  pool: pg.Pool,
  schema: string,
  records: readonly CountedRecord[],
): Promise<number> {
  if (records.length === 0) return 0;
  try {
    return await upsert(pool, schema, records);
  } catch (error) {
    throw cannotWrite(qualifiedTable(schema), records.length, error);
  }
}

interface Refusal {
  record: CountedRecord;
  messageId: string | undefined;
  // SQLSTATE when PostgreSQL refused the statement; undefined when refused before sending
  code: string | undefined;
  reason: string;
}

// SQLSTATE classes of errors that one row's values can cause (PostgreSQL
// Appendix A): 22 data exception (a character the encoding refuses, a time
// out of range), 23 integrity constraint violation (a CHECK), 54 program limit
// exceeded (an index row too large). Anything else (connections, locks,
// permissions, a missing table) is about the database, not the row: the flush
// fails and the entries wait for the next one.
const rowErrorClasses = new Set(['22', '23', '54']);

function rowErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && rowErrorClasses.has(code.slice(0, 2)) ? code : undefined;
}

// What PostgreSQL can be known to refuse before sending: text columns cannot
// hold U+0000 (PostgreSQL "Character Types": the character with code zero
// cannot be stored). S3 keys may hold any UTF-8 character, including it.
function unstorableReason(record: CountedRecord): string | undefined {
  const fields: [string, string | undefined][] = [
    ['key', record.key],
    ['bucket', record.bucket],
    ['eTag', record.eTag],
    ['versionId', record.versionId],
    ['event name', record.eventName],
  ];
  for (const [name, value] of fields) {
    if (value?.includes('\u0000')) {
      return `the ${name} contains U+0000 (NUL), which a PostgreSQL text column cannot store`;
    }
  }
  return undefined;
}

// Writes the rows, splitting a statement that PostgreSQL refuses for its data
// into halves until each refusal is one row: the other rows commit, and each
// refused one is returned with its error. k bad rows among n cost about
// 2·k·log2(n) extra statements, and only when PostgreSQL refuses something.
async function writeIsolating(
  pool: pg.Pool,
  schema: string,
  records: readonly CountedRecord[],
  counts: { rows: number; statements: number },
): Promise<{ record: CountedRecord; code: string; reason: string }[]> {
  if (records.length === 0) return [];
  counts.statements += 1;
  try {
    counts.rows += await upsert(pool, schema, records);
    return [];
  } catch (error) {
    const code = rowErrorCode(error);
    if (code === undefined) throw cannotWrite(qualifiedTable(schema), records.length, error);
    if (records.length === 1) {
      return [
        {
          record: records[0] as CountedRecord,
          code,
          reason: `PostgreSQL refused the row: ${describeError(error)}`,
        },
      ];
    }
    const middle = records.length >> 1;
    const first = await writeIsolating(pool, schema, records.slice(0, middle), counts);
    const second = await writeIsolating(pool, schema, records.slice(middle), counts);
    return [...first, ...second];
  }
}

// Commits a batch: every record is in the table afterwards (or a newer one of
// its file is), except the refused ones, which are in the quarantine table.
// When the newest event of a file is refused, the next newest is written in
// its place: an older event is marked committed only once a row holds it or a
// newer one.
async function commitRecords(
  pool: pg.Pool,
  schema: string,
  buffered: readonly BufferedRecord[],
): Promise<{ rows: number; statements: number; refused: Map<string, Refusal> }> {
  const counts = { rows: 0, statements: 0 };
  const refused = new Map<string, Refusal>();
  const messageIds = new Map<string, string | undefined>();
  let candidates: CountedRecord[] = [];
  for (const { record, messageId } of buffered) {
    const identity = eventIdentity(record);
    if (!messageIds.has(identity) || messageId !== undefined) messageIds.set(identity, messageId);
    const reason = unstorableReason(record);
    if (reason === undefined) candidates.push(record);
    else refused.set(identity, { record, messageId, code: undefined, reason });
  }
  while (candidates.length > 0) {
    const newest = keepNewest(candidates);
    const failed = await writeIsolating(pool, schema, newest, counts);
    if (failed.length === 0) break;
    for (const { record, code, reason } of failed) {
      const identity = eventIdentity(record);
      refused.set(identity, { record, messageId: messageIds.get(identity), code, reason });
    }
    const written = new Set(newest.map(eventIdentity));
    const refusedFiles = new Set(failed.map(({ record }) => fileKey(record)));
    candidates = candidates.filter(
      (record) => !written.has(eventIdentity(record)) && refusedFiles.has(fileKey(record)),
    );
  }
  if (refused.size > 0) {
    counts.statements += 1;
    await quarantine(pool, schema, [...refused.values()]);
  }
  return { ...counts, refused };
}

// Text PostgreSQL can store: U+0000 written as the JSON escape it would be.
function storable(text: string): string {
  return text.replaceAll('\u0000', '\\u0000');
}

function storableOrNull(text: string): string | null {
  return text.includes('\u0000') ? null : text;
}

async function quarantine(pool: pg.Pool, schema: string, refusals: readonly Refusal[]): Promise<void> {
  const table = qualifiedQuarantineTable(schema);
  const sql = `
    INSERT INTO ${table} AS stored
      (identity, bucket, file_name, sequencer, record, error_code, error, message_id)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
    ON CONFLICT (identity) DO UPDATE SET
      record = excluded.record,
      error_code = excluded.error_code,
      error = excluded.error,
      message_id = coalesce(excluded.message_id, stored.message_id),
      attempts = stored.attempts + 1,
      last_refused = now()`;
  const params = [
    // JSON.stringify escapes every control character, U+0000 included
    refusals.map((r) => eventIdentity(r.record)),
    refusals.map((r) => storableOrNull(r.record.bucket)),
    refusals.map((r) => storableOrNull(r.record.key)),
    refusals.map((r) => storable(r.record.sequencer)),
    refusals.map((r) => JSON.stringify(r.record)),
    refusals.map((r) => r.code ?? null),
    refusals.map((r) => storable(r.reason)),
    refusals.map((r) => (r.messageId === undefined ? null : storable(r.messageId))),
  ];
  try {
    await pool.query(sql, params);
  } catch (error) {
    throw new Error(
      `cannot write ${refusals.length} refused rows to ${table}: ${describeError(error)} (the entries stay buffered in Redis and the next flush retries them)`,
      { cause: error },
    );
  }
}

// After the commit: mark every event of the batch committed (or quarantined),
// then XACK and XDEL exactly those entries, all in one MULTI, so a mark says
// committed only once its entry is gone and an entry is gone only once its
// mark says so. An entry acknowledged but not deleted would sit in the stream
// forever, counted as backlog. Inside runWatched because EXEC would otherwise
// clear a concurrent bufferRecord's WATCH on the same connection.
//
// With the flush's lease, this is its last batch: the same MULTI deletes the
// lock if it is still this flusher's (WATCH, then compare, as in
// changeLockIfHeld), which saves the release its two round trips on the path
// every waiting invocation is on.
async function settleBatch(
  redis: Redis,
  keys: BufferKeys,
  settings: BufferSettings,
  batch: Batch,
  refused: ReadonlyMap<string, Refusal>,
  lease?: Lease,
): Promise<Map<string, MarkValue>> {
  const marks = new Map<string, MarkValue>();
  for (const { record } of batch.records) {
    const identity = eventIdentity(record);
    const refusal = refused.get(identity);
    marks.set(
      keys.seen(identity),
      refusal === undefined ? { state: 'committed' } : { state: 'quarantined', reason: refusal.reason },
    );
  }
  const settle = (releasing: boolean) => {
    const transaction = redis.multi();
    for (const [mark, value] of marks) {
      const text = value.state === 'quarantined' ? quarantineMark(value.reason) : MarkState.committed;
      transaction.set(mark, text, 'EX', settings.dedupeTtlSeconds);
    }
    transaction.xack(keys.stream, keys.group, ...batch.ids).xdel(keys.stream, ...batch.ids);
    if (releasing) transaction.del(keys.lock);
    return transaction.exec();
  };
  await lease?.stopRenewing();
  const replies = await runWatched(redis, async () => {
    if (lease !== undefined) {
      const [, holder] = await Promise.all([redis.watch(keys.lock), redis.get(keys.lock)]);
      if (holder === lease.token) {
        const released = await settle(true);
        // null: the lock changed since WATCH (it expired and was taken): settle without it
        if (released !== null) {
          lease.released();
          return released;
        }
      } else await redis.unwatch();
    }
    return settle(false);
  });
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (replies === null || failed) {
    throw new Error(
      `cannot acknowledge ${batch.ids.length} flushed entries in ${keys.stream}: ${failed?.message ?? 'transaction aborted'} (they are already in PostgreSQL; the next flush rewrites them without changes)`,
      { cause: failed },
    );
  }
  announce(redis, keys);
  return marks;
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
