import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BufferSettings } from '../lib/config.ts';
import { eventIdentity, type UploadEvent } from './events.ts';

// The write-behind buffer in Redis: a dedupe mark per event and one stream of
// counted records, drained into PostgreSQL by flush.ts. Only plain commands are
// used (no Lua, no modules), so the same code runs on ElastiCache, a local Redis
// and the demo's in-process RESP emulation.

export interface CountedRecord extends UploadEvent {
  lines: number;
  bytes: number;
}

export type BufferOutcome = 'buffered' | 'duplicate';

export const BufferOutcome = { buffered: 'buffered', duplicate: 'duplicate' } as const;

export interface BufferKeys {
  stream: string;
  group: string;
  lock: string;
  seen(identity: string): string;
}

// Redis keys may be 512 MB, but an S3 key alone may be 1,024 bytes: long
// identities are hashed so marks stay small and uniform.
const maxReadableIdentity = 200;
// The field that holds the record, as JSON, in each stream entry.
const recordField = 'r';
// A WATCH transaction aborted this many times in a row means something keeps
// rewriting the mark without settling it; give up and let SQS retry the message.
const maxWatchAttempts = 5;

export function bufferKeys(settings: BufferSettings): BufferKeys {
  const prefix = settings.keyPrefix;
  return {
    stream: `${prefix}buffer`,
    group: 'flushers',
    lock: `${prefix}flush-lock`,
    seen(identity: string) {
      if (identity.length <= maxReadableIdentity) return `${prefix}seen:${identity}`;
      return `${prefix}seen#${createHash('sha256').update(identity).digest('base64url')}`;
    },
  };
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

const groupsCreated = new WeakMap<Redis, Set<string>>();

// Start id 0, not $: if the stream was created by an XADD before the group
// existed, the group must still deliver those entries. Flushed entries are
// XDELed, so "everything in the stream" is exactly "everything not yet flushed".
export async function ensureGroup(redis: Redis, keys: BufferKeys, force = false): Promise<void> {
  let created = groupsCreated.get(redis);
  if (created === undefined) {
    created = new Set();
    groupsCreated.set(redis, created);
  }
  if (!force && created.has(keys.stream)) return;
  try {
    await redis.xgroup('CREATE', keys.stream, keys.group, '0', 'MKSTREAM');
  } catch (error) {
    if (!isBusyGroup(error)) throw error;
  }
  created.add(keys.stream);
}

export function encodeRecord(record: CountedRecord): string {
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

// One atomic step: mark the event seen AND append it to the stream, or do
// neither. WATCH makes the MULTI conditional on nobody touching the mark between
// our EXISTS and EXEC; EXEC answers null when someone did (Redis transactions,
// "Optimistic locking using check-and-set").
export async function bufferRecord(
  redis: Redis,
  settings: BufferSettings,
  record: CountedRecord,
): Promise<BufferOutcome> {
  const keys = bufferKeys(settings);
  const seenKey = keys.seen(eventIdentity(record));
  await ensureGroup(redis, keys);
  const entry = encodeRecord(record);
  return runWatched(redis, async () => {
    for (let attempt = 1; attempt <= maxWatchAttempts; attempt++) {
      // WATCH and EXISTS go out together (one round trip); Redis runs them in order.
      const [, exists] = await Promise.all([redis.watch(seenKey), redis.exists(seenKey)]);
      if (exists === 1) {
        await redis.unwatch();
        return BufferOutcome.duplicate;
      }
      const replies = await redis
        .multi()
        .set(seenKey, '1', 'EX', settings.dedupeTtlSeconds)
        .xadd(keys.stream, '*', recordField, entry)
        .exec();
      // null: the mark changed under us, most likely a concurrent delivery of the same event; look again
      if (replies === null) continue;
      const [setReply, addReply] = replies;
      if (addReply?.[0]) {
        // A command failed inside EXEC (e.g. the stream key holds another type):
        // take the mark back, since "seen" must imply "buffered".
        if (!setReply?.[0]) await redis.del(seenKey);
        throw new Error(
          `cannot append to the buffer stream ${keys.stream}: ${addReply[0].message} (check that the key is a stream and Redis has memory: maxmemory-policy noeviction)`,
          { cause: addReply[0] },
        );
      }
      if (setReply?.[0]) {
        throw new Error(`cannot mark ${seenKey} as seen: ${setReply[0].message}`, { cause: setReply[0] });
      }
      return BufferOutcome.buffered;
    }
    throw new Error(
      `cannot buffer ${record.bucket}/${record.key}: its dedupe mark changed ${maxWatchAttempts} times during the transaction (the message will be retried)`,
    );
  });
}

// The stream id's first half is the Redis server's clock in ms when XADD ran.
export function entryTime(id: string): number {
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
