import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import type pg from 'pg';
import type { BufferSettings } from '../lib/config.ts';
import { MetricName, MetricUnit } from '../lib/metrics.ts';
import { bufferKeys, type CountedRecord, describeBuffer } from './buffer.ts';
import { type CommitItem, type CommitResult, CommitStatus, createCommitter } from './commit.ts';
import { MalformedMessageError, parseMessageBody, type UploadEvent } from './events.ts';
import { type FlushResult, flushBuffer } from './flush.ts';
import { createNotifier } from './notify.ts';
import { countObject } from './object.ts';

// The function: parse → count → buffer → group commit → acknowledge. A
// message is acknowledged (left out of batchItemFailures) only when each of its
// records is committed in PostgreSQL (or a row already holds it or a newer
// event of the file), or when it is legitimately skipped: a TestEvent, an
// object changed (412) or deleted (404) since the event. handler.ts builds the
// dependencies once per cold start; tests build their own. The tables exist
// before the function runs: the migration function creates them
// (lambda-image/migrate.ts), and the function's role may not.

export interface FunctionDeps {
  s3: S3Client;
  redis: Redis;
  pool: pg.Pool;
  buffer: BufferSettings;
  schema: string;
  logger: Logger;
  metrics: Metrics;
}

export interface LineCountFunction {
  handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse>;
  flushHandler(event?: unknown, context?: Context): Promise<FlushResult>;
}

// A batch's records are processed in parallel (so that their buffer writes
// coalesce into one Redis transaction, see buffer.ts), but at most this many
// objects are read at once: each open GetObject body holds one of the S3
// client's sockets (the SDK's Node HTTP handler keeps 50 per host by default),
// and a batch can be up to 10,000 messages (SQS event source BatchSize).
const maxConcurrentReads = 32;

// The commit wait takes this share of the time the invocation has left once
// every record is counted, and leaves at least returnReserveMs to answer: an
// invocation that times out fails its whole batch (Lambda, "Handling errors").
const commitShareOfRemaining = 0.8;
const returnReserveMs = 250;
// without a Lambda context (tests, scripts)
const defaultRemainingMs = 30_000;

function commitDeadline(context: Context | undefined): number {
  const remaining = context?.getRemainingTimeInMillis() ?? defaultRemainingMs;
  const budget = Math.min(remaining * commitShareOfRemaining, remaining - returnReserveMs);
  return Date.now() + Math.max(0, budget);
}

function describeUpload(upload: UploadEvent): Record<string, string> {
  return {
    bucket: upload.bucket,
    key: upload.key,
    eTag: upload.eTag,
    sequencer: upload.sequencer,
    ...(upload.versionId === undefined ? {} : { versionId: upload.versionId }),
  };
}

// Why a message failed because of its records' commit, for the log and SQS.
class UncommittedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UncommittedError';
  }
}

// The records of one invocation are committed together: each message counts
// its objects, hands its records in (or says it has none), and waits; when
// every message has, one commit runs for all of them. Nothing is acknowledged
// before the handler returns anyway, so waiting for the slowest read costs no
// latency and saves one flush per read that finishes late.
class InvocationCommit {
  private readonly items: CommitItem[] = [];
  private readonly parts: { from: number; to: number; resolve(results: CommitResult[]): void }[] = [];
  private arrived = 0;

  constructor(
    private readonly expected: number,
    private readonly run: (items: readonly CommitItem[]) => Promise<CommitResult[]>,
    private readonly onError: (error: unknown) => void,
  ) {}

  submit(items: readonly CommitItem[]): Promise<CommitResult[]> {
    return new Promise((resolve) => {
      this.parts.push({ from: this.items.length, to: this.items.length + items.length, resolve });
      this.items.push(...items);
      this.arrive();
    });
  }

  // a message with nothing to commit (skipped, or failed before its records were ready)
  pass(): void {
    this.arrive();
  }

  private arrive(): void {
    this.arrived += 1;
    if (this.arrived < this.expected) return;
    const parts = this.parts;
    if (parts.length === 0) return;
    this.run(this.items).then(
      (results) => {
        for (const part of parts) part.resolve(results.slice(part.from, part.to));
      },
      (error: unknown) => {
        this.onError(error);
        const failed = new UncommittedError(`cannot commit: ${String(error)}`, { cause: error });
        for (const part of parts) {
          part.resolve(
            this.items.slice(part.from, part.to).map(() => ({
              appended: false,
              status: CommitStatus.failed,
              error: failed,
            })),
          );
        }
      },
    );
  }
}

export function createFunction(deps: FunctionDeps): LineCountFunction {
  const { s3, redis, pool, buffer, schema, logger, metrics } = deps;

  const addMetric = (name: MetricName, value = 1) => metrics.addMetric(name, MetricUnit[name], value);
  const limitReads = pLimit(maxConcurrentReads);

  function recordFlush(result: FlushResult): void {
    if (result.skipped) {
      logger.debug('flush skipped: another invocation holds the flush lock');
      return;
    }
    if (result.dropped > 0) {
      logger.warn('unreadable buffer entries dropped', { dropped: result.dropped });
    }
    if (result.quarantined > 0) {
      logger.error(
        'rows PostgreSQL refused were quarantined; their messages fail until the dead-letter queue',
        {
          quarantined: result.quarantined,
        },
      );
      addMetric(MetricName.rowsQuarantined, result.quarantined);
    }
    if (result.entries > 0) {
      logger.info('flushed', { ...result });
      addMetric(MetricName.rowsFlushed, result.rows);
      addMetric(MetricName.flushLatency, result.durationMs);
    }
  }

  function recordFlushError(error: unknown): void {
    logger.error('flush failed: the records stay buffered and the next flush retries them', { error });
    addMetric(MetricName.flushFailures);
  }

  const committer = createCommitter({
    redis,
    pool,
    settings: buffer,
    schema,
    notifier: createNotifier(redis, bufferKeys(buffer).channel),
    onFlush: recordFlush,
    onFlushError: recordFlushError,
  });

  interface Counted {
    upload: UploadEvent;
    record: CountedRecord;
  }

  async function countUpload(upload: UploadEvent, messageId: string): Promise<Counted | undefined> {
    const object = await limitReads(() => countObject(s3, upload));
    if (object.status === 'skipped') {
      // 412: overwritten since the event, the newer upload's event counts it; 404: deleted.
      logger.info('object not counted', { messageId, reason: object.reason, ...describeUpload(upload) });
      addMetric(MetricName.objectsSkipped);
      return undefined;
    }
    return { upload, record: { ...upload, lines: object.lines, bytes: object.bytes } };
  }

  // Records what committing said about each record; the first that did not
  // end in PostgreSQL fails the message.
  function reportResults(messageId: string, counted: readonly Counted[], results: readonly CommitResult[]) {
    let failure: UncommittedError | undefined;
    results.forEach((result, i) => {
      const { upload, record } = counted[i] as Counted;
      if (result.appended) {
        addMetric(MetricName.filesCounted);
        addMetric(MetricName.linesCounted, record.lines);
      }
      if (result.status === CommitStatus.committed) {
        logger.debug('counted and committed', { messageId, lines: record.lines, ...describeUpload(upload) });
      } else if (result.status === CommitStatus.duplicate) {
        logger.info('duplicate event skipped', { messageId, ...describeUpload(upload) });
        addMetric(MetricName.duplicatesSkipped);
      } else if (result.status === CommitStatus.quarantined) {
        failure ??= new UncommittedError(
          `the record of s3://${upload.bucket}/${JSON.stringify(upload.key).slice(1, -1)} is quarantined: ${result.reason} (the row is in the quarantine table; the message goes to the dead-letter queue after its retries)`,
        );
      } else {
        failure ??= new UncommittedError(
          `the record of s3://${upload.bucket}/${JSON.stringify(upload.key).slice(1, -1)} is not committed: ${result.error.message}`,
          { cause: result.error },
        );
      }
    });
    if (failure !== undefined) throw failure;
  }

  // A throw fails this message alone: the batch processor lists it in
  // batchItemFailures, SQS redelivers it, and after maxReceiveCount it is dead-lettered.
  async function processRecord(record: SQSRecord, batch: InvocationCommit): Promise<void> {
    const messageId = record.messageId;
    let counted: Counted[] | undefined;
    try {
      try {
        const message = parseMessageBody(record.body);
        if (message.kind === 'test') {
          // Sent once when a notification configuration is saved: nothing to count, never a failure.
          logger.info('s3:TestEvent acknowledged', { messageId });
          return;
        }
        if (message.ignored !== undefined) {
          logger.info('records that are not ObjectCreated:* ignored', {
            messageId,
            eventNames: message.ignored,
          });
        }
        const all = await Promise.all(message.uploads.map((upload) => countUpload(upload, messageId)));
        counted = all.filter((c): c is Counted => c !== undefined);
      } finally {
        if (counted === undefined || counted.length === 0) batch.pass();
      }
      if (counted.length === 0) return;
      const results = await batch.submit(
        counted.map(({ record: counts }) => ({ record: counts, messageId })),
      );
      reportResults(messageId, counted, results);
    } catch (error) {
      if (error instanceof MalformedMessageError) {
        logger.error('malformed message: it fails until it reaches the dead-letter queue', {
          messageId,
          error,
        });
        addMetric(MetricName.malformedMessages);
      } else {
        logger.error('message failed: SQS will deliver it again', { messageId, error });
      }
      throw error;
    }
  }

  async function flush(context: Context | undefined): Promise<FlushResult> {
    try {
      const result = await flushBuffer(redis, pool, buffer, schema, { deadline: commitDeadline(context) });
      recordFlush(result);
      return result;
    } catch (error) {
      recordFlushError(error);
      throw error;
    }
  }

  async function publishBufferState(): Promise<void> {
    try {
      const state = await describeBuffer(redis, buffer);
      addMetric(MetricName.bufferBacklog, state.pending);
      addMetric(MetricName.oldestBufferedAge, (state.oldestAgeMs ?? 0) / 1000);
    } catch (error) {
      logger.warn('cannot read the buffer state', { error });
    }
  }

  return {
    async handler(event, context) {
      if (context !== undefined) logger.addContext(context);
      const batch = new InvocationCommit(
        event.Records.length,
        (items) => committer.commit(items, commitDeadline(context)),
        (error) => logger.error('commit failed', { error }),
      );
      try {
        return await processPartialResponse(
          event,
          (record: SQSRecord) => processRecord(record, batch),
          new BatchProcessor(EventType.SQS),
          {
            ...(context === undefined ? {} : { context }),
            // every message failing is still a partial response naming each id, not a thrown batch
            throwOnFullBatchFailure: false,
            // all records at once: their buffer writes form one Redis transaction, and
            // the batch waits for one commit (InvocationCommit)
            processInParallel: true,
          },
        );
      } finally {
        // a batch of TestEvents records no metric; publishing nothing would only log a warning
        if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      }
    },

    async flushHandler(_event, context) {
      if (context !== undefined) logger.addContext(context);
      try {
        return await flush(context);
      } finally {
        // published even when the flush failed: a growing backlog is what the alarm watches
        await publishBufferState();
        metrics.publishStoredMetrics();
      }
    },
  };
}
