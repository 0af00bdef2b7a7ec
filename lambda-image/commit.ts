import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { BufferSettings } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import { appendRecord, bufferKeys, type CountedRecord, type MarkValue, markKey, readMark } from './buffer.ts';
import { type FlushResult, flushBuffer, type SettledMarks } from './flush.ts';
import type { Notifier } from './notify.ts';

// Real group commit: an invocation appends its records to the buffer, then
// stays until PostgreSQL holds them, so that SQS deletes a message only once
// its record is committed. While it waits it either holds the flush lock and
// commits everything buffered (its own records and those of every other
// invocation), or sleeps until the holder announces a commit or a release
// (notify.ts), and looks again. What is not committed by the deadline fails,
// and SQS delivers it again; the record stays buffered, so a later flush (at
// the latest the scheduled one) commits it and the redelivery finds it done.
//
// A record found pending (buffered by an earlier delivery, or by another
// invocation at the same moment) is waited for, not appended again. A record
// whose mark disappears while waiting (Redis restarted empty, failed over, or
// was flushed) is appended again at once: losing Redis costs a write, never a
// record. So is one still marked pending after this invocation drained the
// stream itself: its entry is gone (Redis lost the entry but not the mark),
// and waiting for it would only send the message to the DLQ. Appending twice
// is always safe: the upsert is idempotent.

export interface CommitItem {
  record: CountedRecord;
  messageId: string;
}

export type CommitResult = { appended: boolean } & (
  | { status: 'committed' }
  | { status: 'duplicate' }
  | { status: 'quarantined'; reason: string }
  | { status: 'failed'; error: Error }
);

export const CommitStatus = {
  committed: 'committed',
  duplicate: 'duplicate',
  quarantined: 'quarantined',
  failed: 'failed',
} as const;

interface CommitterDeps {
  redis: Redis;
  pool: pg.Pool;
  settings: BufferSettings;
  schema: string;
  notifier: Notifier;
  onFlush?(result: FlushResult): void;
  onFlushError?(error: unknown): void;
}

export interface Committer {
  // one result per item, in order; resolves by the deadline (ms since the epoch)
  commit(items: readonly CommitItem[], deadline: number): Promise<CommitResult[]>;
}

// A record whose mark vanishes this many times while one invocation waits is
// given up on: Redis keeps losing its data, and SQS will retry the message.
const maxAppends = 3;
// After a flush that found nothing to commit while ours still wait (their
// entries are held under another consumer name), look again after this long.
const emptyFlushBackoffMs = 50;

export function createCommitter(deps: CommitterDeps): Committer {
  const { redis, pool, settings, schema, notifier } = deps;
  const lockKey = bufferKeys(settings).lock;

  return {
    async commit(items, deadline) {
      const results: (CommitResult | undefined)[] = items.map(() => undefined);
      const appended = items.map(() => false);
      const appends = items.map(() => 0);
      const marks = items.map((item) => markKey(settings, item.record));
      // index of each item still waiting, by mark
      const waiting = new Map<number, string>();

      const settle = (index: number, result: CommitResult) => {
        results[index] = result;
        waiting.delete(index);
      };
      const settleByMark = (index: number, mark: MarkValue): boolean => {
        if (mark.state === 'committed') {
          settle(index, {
            appended: appended[index] as boolean,
            status: appended[index] ? CommitStatus.committed : CommitStatus.duplicate,
          });
          return true;
        }
        if (mark.state === 'quarantined') {
          settle(index, { appended: appended[index] as boolean, status: 'quarantined', reason: mark.reason });
          return true;
        }
        return false;
      };
      const fail = (indexes: Iterable<number>, error: Error) => {
        for (const index of [...indexes]) {
          settle(index, { appended: appended[index] as boolean, status: CommitStatus.failed, error });
        }
      };

      // Appends the items (again, for those whose mark was lost); the
      // buffer coalesces the calls into one Redis transaction.
      const append = async (indexes: readonly number[], replacePending = false) => {
        const outcomes = await Promise.allSettled(
          indexes.map((index) => {
            const item = items[index] as CommitItem;
            appends[index] = (appends[index] as number) + 1;
            return appendRecord(redis, settings, item.record, item.messageId, { replacePending });
          }),
        );
        outcomes.forEach((outcome, i) => {
          const index = indexes[i] as number;
          if (outcome.status === 'rejected') {
            fail([index], asError(outcome.reason));
          } else if (outcome.value.outcome === 'buffered') {
            appended[index] = true;
            waiting.set(index, marks[index] as string);
          } else if (outcome.value.committed) {
            settleByMark(index, { state: 'committed' });
          } else {
            waiting.set(index, marks[index] as string);
          }
        });
      };

      const onBatch = (settled: SettledMarks) => {
        for (const [index, mark] of [...waiting]) {
          const value = settled.get(mark);
          if (value !== undefined) settleByMark(index, value);
        }
        // the flush goes on only while some of ours still wait
        return waiting.size > 0;
      };

      await append(items.map((_, index) => index));
      // Right after appending, every mark of ours is pending: try the lock
      // first. A duplicate's mark may already say committed: look first.
      let look = [...waiting.keys()].some((index) => !appended[index]);
      let lockTtl = -2;
      // this invocation's own flush just read everything the stream held
      let drained = false;
      while (waiting.size > 0) {
        const now = Date.now();
        if (now >= deadline) {
          fail(
            waiting.keys(),
            new Error(
              'not committed in time: the record stays buffered, a later flush commits it, and SQS delivers the message again',
            ),
          );
          break;
        }
        const since = notifier.generation;
        if (look) {
          const indexes = [...waiting.keys()];
          const [values, ttl] = await Promise.all([
            redis.mget(...indexes.map((index) => marks[index] as string)),
            redis.pttl(lockKey),
          ]);
          const lost: number[] = [];
          const stale: number[] = [];
          indexes.forEach((index, i) => {
            const mark = readMark(values[i]);
            if (mark.state === 'absent') lost.push(index);
            else if (mark.state === 'pending' && drained) stale.push(index);
            else settleByMark(index, mark);
          });
          drained = false;
          lost.push(...stale);
          const given = lost.filter((index) => (appends[index] as number) >= maxAppends);
          fail(
            given,
            new Error(
              `the buffered record vanished from Redis ${maxAppends} times while waiting for its commit (is Redis restarting or being flushed?); SQS will deliver the message again`,
            ),
          );
          const again = lost.filter((index) => (appends[index] as number) < maxAppends);
          if (again.length > 0) {
            for (const index of again) waiting.delete(index);
            // both in the same turn of the event loop: one Redis transaction
            await Promise.all([
              append(
                again.filter((index) => !stale.includes(index)),
                false,
              ),
              append(
                again.filter((index) => stale.includes(index)),
                true,
              ),
            ]);
          }
          if (waiting.size === 0) break;
          lockTtl = again.length > 0 ? -2 : ttl;
        }
        look = true;
        if (lockTtl === -2) {
          // nobody flushes: take the lock and commit everything buffered
          let result: FlushResult;
          try {
            // a flush for waiting records gathers what others append meanwhile (FLUSH_GATHER_MS)
            result = await flushBuffer(redis, pool, settings, schema, {
              deadline,
              onBatch,
              gatherMs: settings.flushGatherMs,
            });
            deps.onFlush?.(result);
          } catch (error) {
            deps.onFlushError?.(error);
            fail(waiting.keys(), new Error(`cannot commit: ${describeError(error)}`, { cause: error }));
            break;
          }
          drained = !result.skipped && result.drained;
          if (!result.skipped && result.entries === 0 && waiting.size > 0) {
            await notifier.wait(since, Math.min(emptyFlushBackoffMs, deadline - Date.now()));
          }
          continue;
        }
        // Another flusher holds the lock: sleep until it announces a commit or
        // its release, or its lease runs out (a flusher that died says nothing).
        // -1: a lock without expiry, which only a person can set; look again
        // after a lease.
        const leaseLeft = lockTtl < 0 ? settings.flushLockMs : lockTtl + 1;
        await notifier.wait(
          since,
          Math.max(1, Math.min(leaseLeft, settings.flushLockMs, deadline - Date.now())),
        );
      }
      return results.map(
        (result, index) =>
          result ?? {
            appended: appended[index] as boolean,
            status: CommitStatus.failed,
            error: new Error('not committed'),
          },
      );
    },
  };
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
