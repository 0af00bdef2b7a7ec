import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BufferSettings } from '../lib/config.ts';
import { eventIdentity, type UploadEvent } from './events.ts';

// The write-behind buffer in Redis: a mark per event and one stream of counted
// records, drained into PostgreSQL by flush.ts. Only plain commands are used
// (no Lua, no modules), so the same code runs on ElastiCache, a local Redis and
// the demo's in-process RESP emulation.
//
// A mark says where its event stands, and only a commit makes it final:
//   p          buffered, not yet committed: a retry waits for the commit (commit.ts)
//   c          committed in PostgreSQL (the row holds this or a newer sequencer)
//   q:<reason> PostgreSQL refused the row; it is in the quarantine table
// Redis may lose any of this (a restart, a failover, FLUSHALL): a lost mark
// only means the record is buffered again, and the upsert is idempotent.

export interface CountedRecord extends UploadEvent {
  lines: number;
  bytes: number;
}

export type BufferOutcome = 'buffered' | 'duplicate';

export const BufferOutcome = { buffered: 'buffered', duplicate: 'duplicate' } as const;

export const MarkState = { pending: 'p', committed: 'c', quarantined: 'q' } as const;

// What appending found: the record was appended now, or its mark was already
// there, pending or committed.
type AppendResult = { outcome: 'buffered' } | { outcome: 'duplicate'; committed: boolean };

export interface BufferKeys {
  stream: string;
  group: string;
  lock: string;
  // set by every flush when absent (flush.ts): it disappears with Redis's data
  since: string;
  // the pub/sub channel on which flushes announce commits and lock releases
  channel: string;
  seen(identity: string): string;
}

// Redis keys may be 512 MB, but an S3 key alone may be 1,024 bytes: long
// identities are hashed so marks stay small and uniform.
const maxReadableIdentity = 200;
// The fields of each stream entry: the record as JSON, and the SQS message that carried it.
const recordField = 'r';
const messageField = 'm';
// This many aborted WATCH transactions in a row, none of them explained by a
// mark found present afterwards, means something keeps rewriting marks without
// settling them; give up and let SQS retry the messages.
const maxWatchAttempts = 5;

export function bufferKeys(settings: BufferSettings): BufferKeys {
  const prefix = settings.keyPrefix;
  return {
    stream: `${prefix}buffer`,
    group: 'flushers',
    lock: `${prefix}flush-lock`,
    since: `${prefix}buffer-since`,
    channel: `${prefix}flushed`,
    seen(identity: string) {
      if (identity.length <= maxReadableIdentity) return `${prefix}seen:${identity}`;
      return `${prefix}seen#${createHash('sha256').update(identity).digest('base64url')}`;
    },
  };
}

export function markKey(settings: BufferSettings, record: UploadEvent): string {
  return bufferKeys(settings).seen(eventIdentity(record));
}

// A quarantine mark keeps the reason for the waiting invocation's log; a
// Redis value may be large, but a reason longer than this says nothing more.
const maxReasonLength = 500;

export function quarantineMark(reason: string): string {
  return `${MarkState.quarantined}:${reason.slice(0, maxReasonLength)}`;
}

export type MarkValue =
  | { state: 'absent' }
  | { state: 'pending' }
  | { state: 'committed' }
  | { state: 'quarantined'; reason: string };

export function readMark(value: string | null | undefined): MarkValue {
  if (value === MarkState.pending) return { state: 'pending' };
  if (value === MarkState.committed) return { state: 'committed' };
  if (value?.startsWith(`${MarkState.quarantined}:`)) {
    return { state: 'quarantined', reason: value.slice(MarkState.quarantined.length + 1) };
  }
  // Nothing, or a value this version does not write (the '1' of a release
  // whose marks meant "buffered", whatever became of the record): buffering
  // again is always safe, since the upsert is idempotent.
  return { state: 'absent' };
}

// WATCH state belongs to the connection, and EXEC clears every watched key. Two
// transactions interleaved on one connection (the batch processor handles a
// batch's records concurrently) would let one EXEC drop the other's WATCH, so
// every WATCH…EXEC section on a client runs one after another.
const watchQueues = new WeakMap<Redis, Promise<unknown>>();

export function runWatched<T>(redis: Redis, section: () => Promise<T>): Promise<T> {
  const previous = watchQueues.get(redis) ?? Promise.resolve();
  const current = previous.then(async () => {
    try {
      return await section();
    } catch (error) {
      // leave no stale WATCH behind to abort the next section's EXEC
      await redis.unwatch().catch(() => undefined);
      throw error;
    }
  });
  watchQueues.set(
    redis,
    current.catch(() => undefined),
  );
  return current;
}

// XGROUP CREATE replies BUSYGROUP when the group exists (Redis XGROUP CREATE reference).
function isBusyGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('BUSYGROUP');
}

export function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

// One creation per stream and connection; concurrent first calls (a batch's
// records) share the same attempt, and a failed attempt is forgotten.
const groupsCreated = new WeakMap<Redis, Map<string, Promise<void>>>();

// Start id 0, not $: if the stream was created by an XADD before the group
// existed, the group must still deliver those entries. Flushed entries are
// XDELed, so "everything in the stream" is exactly "everything not yet flushed".
export function ensureGroup(redis: Redis, keys: BufferKeys, force = false): Promise<void> {
  let created = groupsCreated.get(redis);
  if (created === undefined) {
    created = new Map();
    groupsCreated.set(redis, created);
  }
  const known = created.get(keys.stream);
  if (!force && known !== undefined) return known;
  const attempt = redis.xgroup('CREATE', keys.stream, keys.group, '0', 'MKSTREAM').then(
    () => undefined,
    (error: unknown) => {
      if (isBusyGroup(error)) return;
      if (created.get(keys.stream) === attempt) created.delete(keys.stream);
      throw error;
    },
  );
  created.set(keys.stream, attempt);
  return attempt;
}

function encodeRecord(record: CountedRecord): string {
  const { bucket, key, size, eTag, versionId, sequencer, eventTime, eventName, lines, bytes } = record;
  return JSON.stringify({
    bucket,
    key,
    size,
    eTag,
    versionId,
    sequencer,
    eventTime,
    eventName,
    lines,
    bytes,
  });
}

// undefined when the entry is not one this module wrote (or was deleted while pending)
export function decodeRecord(fields: readonly string[] | null | undefined): CountedRecord | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== recordField) continue;
    try {
      const value = JSON.parse(fields[i + 1] as string) as Partial<CountedRecord>;
      if (
        typeof value.bucket === 'string' &&
        typeof value.key === 'string' &&
        typeof value.sequencer === 'string' &&
        typeof value.lines === 'number' &&
        typeof value.bytes === 'number' &&
        typeof value.eTag === 'string' &&
        typeof value.eventTime === 'string'
      ) {
        return value as CountedRecord;
      }
    } catch {
      return undefined;
    }
  }
  return undefined;
}

// the SQS message id the entry was buffered for, when the writer gave one
export function decodeMessageId(fields: readonly string[] | null | undefined): string | undefined {
  if (!fields) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === messageField) return fields[i + 1];
  }
  return undefined;
}

// Buffering a record is one atomic step: mark the event pending AND append it
// to the stream, or do neither. Concurrent calls on one connection (the records
// of a batch, processed in parallel) are coalesced into one transaction per group:
//
//   WATCH every mark of the group + MGET them (one round trip)
//   MULTI, SET mark p EX ttl + XADD for the new ones only, EXEC (one round trip)
//
// A mark found pending or committed makes the call a duplicate: nothing is
// appended, and the caller waits for (or already has) that commit. A mark
// found quarantined is buffered again: the retry tries PostgreSQL once more
// (the cause may have been fixed).
//
// Why this appends each event at most once while its mark lives, across
// connections and within a group:
// - EXEC runs the whole MULTI or nothing, so a mark is never set without its
//   entry being appended (and a connection lost before EXEC leaves nothing).
// - EXEC runs only if no watched mark was written since WATCH (Redis
//   transactions, "Optimistic locking using check-and-set"). Every mark in the
//   MULTI was watched and read, so at EXEC each is as it was read: of two
//   connections racing on one event, the later EXEC aborts (null) and its group
//   reads again, finding the mark now pending: 'duplicate'.
// - Within a group, the same event twice is one mark: the first call takes part
//   in the transaction, the others are duplicates of it.
// - WATCH belongs to the connection and EXEC clears every watched key, so
//   groups run one after another on a connection (runWatched), never interleaved.
export function bufferRecord(
  redis: Redis,
  settings: BufferSettings,
  record: CountedRecord,
): Promise<BufferOutcome> {
  return appendRecord(redis, settings, record).then((result) => result.outcome);
}

// bufferRecord, telling a committed duplicate from a pending one; messageId
// goes into the entry, so a quarantined row names the message that carried it.
// replacePending appends even over a pending mark: for a record whose entry
// is known to be gone although its mark says pending (commit.ts).
export function appendRecord(
  redis: Redis,
  settings: BufferSettings,
  record: CountedRecord,
  messageId?: string,
  options: { replacePending?: boolean } = {},
): Promise<AppendResult> {
  const keys = bufferKeys(settings);
  const fields = [recordField, encodeRecord(record)];
  if (messageId !== undefined) fields.push(messageField, messageId);
  const request = {
    seenKey: keys.seen(eventIdentity(record)),
    stream: keys.stream,
    ttlSeconds: settings.dedupeTtlSeconds,
    fields,
    label: `${record.bucket}/${record.key}`,
    replacePending: options.replacePending === true,
  };
  return ensureGroup(redis, keys).then(
    () =>
      new Promise<AppendResult>((resolve, reject) => {
        enqueue(redis, { ...request, resolve, reject });
      }),
  );
}

// The calls of one batch, each with its own outcome; rejects if any failed.
export function bufferRecords(
  redis: Redis,
  settings: BufferSettings,
  records: readonly CountedRecord[],
): Promise<BufferOutcome[]> {
  return Promise.all(records.map((record) => bufferRecord(redis, settings, record)));
}

interface BufferRequest {
  seenKey: string;
  stream: string;
  ttlSeconds: number;
  fields: string[];
  label: string;
  replacePending: boolean;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

interface Coalescer {
  waiting: BufferRequest[];
  draining: boolean;
}

// A group this large is one WATCH of ~1,000 keys and one MULTI of ~2,000
// commands: still a few hundred KiB on the wire, and a caller that arrives
// while it runs waits for one round trip more, not for thousands of records.
const maxGroupSize = 1_000;

const coalescers = new WeakMap<Redis, Coalescer>();

function enqueue(redis: Redis, request: BufferRequest): void {
  let coalescer = coalescers.get(redis);
  if (coalescer === undefined) {
    coalescer = { waiting: [], draining: false };
    coalescers.set(redis, coalescer);
  }
  coalescer.waiting.push(request);
  if (coalescer.draining) return;
  coalescer.draining = true;
  // setImmediate lets every record whose S3 read finished in the same turn of
  // the event loop join the first group
  setImmediate(() => {
    void drain(redis, coalescer);
  });
}

// One loop per connection takes groups of at most maxGroupSize until nobody
// waits: calls arriving while a group is on the wire form the next group, and
// no caller depends on a reschedule to be answered.
async function drain(redis: Redis, coalescer: Coalescer): Promise<void> {
  try {
    while (coalescer.waiting.length > 0) {
      const group = coalescer.waiting.splice(0, maxGroupSize);
      // writeGroup answers every caller of the group, also when it fails
      await runWatched(redis, () => writeGroup(redis, group)).catch(() => undefined);
    }
  } finally {
    coalescer.draining = false;
  }
}

async function writeGroup(redis: Redis, group: readonly BufferRequest[]): Promise<void> {
  // the first call per mark leads; later calls for the same event follow it as pending duplicates
  const followers = new Map<string, BufferRequest[]>();
  let open: BufferRequest[] = [];
  for (const request of group) {
    const same = followers.get(request.seenKey);
    if (same === undefined) {
      followers.set(request.seenKey, []);
      open.push(request);
    } else same.push(request);
  }
  const settle = (leader: BufferRequest, outcome: AppendResult | { error: unknown }) => {
    const others = followers.get(leader.seenKey) ?? [];
    if ('outcome' in outcome) {
      leader.resolve(outcome);
      const committed = outcome.outcome === BufferOutcome.duplicate && outcome.committed;
      for (const other of others) other.resolve({ outcome: BufferOutcome.duplicate, committed });
    } else {
      leader.reject(outcome.error);
      for (const other of others) other.reject(outcome.error);
    }
  };
  try {
    // An aborted EXEC means another connection wrote one of the marks, which the
    // next check finds present; a check that finds none new is a stall.
    let stalls = 0;
    while (open.length > 0) {
      const round = await tryGroup(redis, open, settle);
      open = round.aborted;
      stalls = round.duplicates > 0 ? 0 : stalls + 1;
      if (open.length > 0 && stalls >= maxWatchAttempts) {
        throw new Error(
          `cannot buffer ${open.length} records (first ${open[0]?.label}): their dedupe marks changed during ${maxWatchAttempts} transactions in a row (the messages will be retried)`,
        );
      }
    }
  } catch (error) {
    for (const request of open) settle(request, { error });
  }
}

type PipelineReplies = [error: Error | null, result: unknown][] | null;

function marksOf(replies: PipelineReplies, marks: number): (string | null)[] {
  const failed = replies?.find(([error]) => error !== null)?.[0];
  const reply = replies?.[1]?.[1];
  if (failed || !Array.isArray(reply) || reply.length !== marks) {
    throw new Error(
      `cannot check ${marks} dedupe marks: ${failed?.message ?? 'no reply'} (the messages will be retried)`,
      { cause: failed },
    );
  }
  return reply as (string | null)[];
}

async function tryGroup(
  redis: Redis,
  open: readonly BufferRequest[],
  settle: (leader: BufferRequest, outcome: AppendResult | { error: unknown }) => void,
): Promise<{ aborted: BufferRequest[]; duplicates: number }> {
  // WATCH and MGET over every mark go out together (one round trip); Redis runs
  // them in order, so the values read are the watched ones.
  const keys = open.map((request) => request.seenKey);
  const marks = marksOf(
    await redis
      .pipeline()
      .watch(...keys)
      .mget(...keys)
      .exec(),
    open.length,
  );
  const fresh: BufferRequest[] = [];
  let duplicates = 0;
  open.forEach((request, i) => {
    const mark = readMark(marks[i]);
    if (mark.state === 'committed' || (mark.state === 'pending' && !request.replacePending)) {
      duplicates++;
      settle(request, { outcome: BufferOutcome.duplicate, committed: mark.state === 'committed' });
    } else fresh.push(request);
  });
  if (fresh.length === 0) {
    await redis.unwatch();
    return { aborted: [], duplicates };
  }
  const transaction = redis.multi();
  for (const request of fresh) {
    transaction
      .set(request.seenKey, MarkState.pending, 'EX', request.ttlSeconds)
      .xadd(request.stream, '*', ...request.fields);
  }
  const replies = await transaction.exec();
  // null: a watched mark changed under us, most likely a concurrent delivery of the same event
  if (replies === null) return { aborted: fresh, duplicates };
  // A command can still fail inside EXEC (e.g. the stream key holds another
  // type, or Redis is out of memory): those records fail alone, and a mark set
  // without its entry is taken back, since "pending" must imply "buffered".
  const orphanMarks: string[] = [];
  const failures: [BufferRequest, Error][] = [];
  fresh.forEach((request, i) => {
    const setError = replies[2 * i]?.[0];
    const addError = replies[2 * i + 1]?.[0];
    if (addError) {
      if (!setError) orphanMarks.push(request.seenKey);
      failures.push([
        request,
        new Error(
          `cannot append to the buffer stream ${request.stream}: ${addError.message} (check that the key is a stream and Redis has memory: maxmemory-policy noeviction)`,
          { cause: addError },
        ),
      ]);
    } else if (setError) {
      failures.push([
        request,
        new Error(`cannot mark ${request.seenKey} as buffered: ${setError.message}`, { cause: setError }),
      ]);
    } else settle(request, { outcome: BufferOutcome.buffered });
  });
  if (orphanMarks.length > 0) await redis.del(...orphanMarks).catch(() => undefined);
  for (const [request, error] of failures) settle(request, { error });
  return { aborted: [], duplicates };
}

// The stream id's first half is the Redis server's clock in ms when XADD ran.
function entryTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export async function describeBuffer(
  redis: Redis,
  settings: BufferSettings,
): Promise<{ pending: number; oldestAgeMs?: number }> {
  const keys = bufferKeys(settings);
  const [pending, oldest] = await Promise.all([
    redis.xlen(keys.stream),
    redis.xrange(keys.stream, '-', '+', 'COUNT', 1),
  ]);
  const first = oldest[0];
  if (first === undefined) return { pending };
  return { pending, oldestAgeMs: Math.max(0, Date.now() - entryTime(first[0])) };
}
