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
import { BufferOutcome, bufferRecord, describeBuffer } from './buffer.ts';
import { MalformedMessageError, parseMessageBody, type UploadEvent } from './events.ts';
import { type FlushResult, flushBuffer } from './flush.ts';
import { countObject } from './object.ts';
import { migrate } from './schema.ts';

// The function: parse → count → dedupe and buffer → group commit. handler.ts
// builds the dependencies once per cold start; tests build their own.

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

function describeUpload(upload: UploadEvent): Record<string, string> {
  return {
    bucket: upload.bucket,
    key: upload.key,
    eTag: upload.eTag,
    sequencer: upload.sequencer,
    ...(upload.versionId === undefined ? {} : { versionId: upload.versionId }),
  };
}

export function createFunction(deps: FunctionDeps): LineCountFunction {
  const { s3, redis, pool, buffer, schema, logger, metrics } = deps;

  const addMetric = (name: MetricName, value = 1) => metrics.addMetric(name, MetricUnit[name], value);
  const limitReads = pLimit(maxConcurrentReads);

  // Once per cold start, before the first flush; a failed attempt is retried by the next flush.
  let migration: Promise<void> | undefined;
  const ensureSchema = (): Promise<void> => {
    migration ??= migrate(pool, schema).catch((error: unknown) => {
      migration = undefined;
      throw error;
    });
    return migration;
  };

  async function processUpload(upload: UploadEvent, messageId: string): Promise<void> {
    const object = await limitReads(() => countObject(s3, upload));
    if (object.status === 'skipped') {
      // 412: overwritten since the event, the newer upload's event counts it; 404: deleted.
      logger.info('object not counted', { messageId, reason: object.reason, ...describeUpload(upload) });
      addMetric(MetricName.objectsSkipped);
      return;
    }
    const outcome = await bufferRecord(redis, buffer, {
      ...upload,
      lines: object.lines,
      bytes: object.bytes,
    });
    if (outcome === BufferOutcome.duplicate) {
      logger.info('duplicate event skipped', { messageId, ...describeUpload(upload) });
      addMetric(MetricName.duplicatesSkipped);
      return;
    }
    logger.debug('counted and buffered', { messageId, lines: object.lines, ...describeUpload(upload) });
    addMetric(MetricName.filesCounted);
    addMetric(MetricName.linesCounted, object.lines);
  }

  // A throw fails this message alone: the batch processor lists it in
  // batchItemFailures, SQS redelivers it, and after maxReceiveCount it is dead-lettered.
  async function processRecord(record: SQSRecord): Promise<void> {
    const messageId = record.messageId;
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
      for (const upload of message.uploads) await processUpload(upload, messageId);
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

  function recordFlush(result: FlushResult): void {
    if (result.skipped) {
      logger.debug('flush skipped: another invocation holds the flush lock');
      return;
    }
    if (result.dropped > 0) {
      logger.warn('unreadable buffer entries dropped', { dropped: result.dropped });
    }
    if (result.entries > 0) {
      logger.info('flushed', { ...result });
      addMetric(MetricName.rowsFlushed, result.rows);
      addMetric(MetricName.flushLatency, result.durationMs);
    }
  }

  async function flush(): Promise<FlushResult> {
    try {
      await ensureSchema();
      const result = await flushBuffer(redis, pool, buffer, schema);
      recordFlush(result);
      return result;
    } catch (error) {
      logger.error('flush failed: the records stay buffered and the next flush retries them', { error });
      addMetric(MetricName.flushFailures);
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
      try {
        const response = await processPartialResponse(
          event,
          processRecord,
          new BatchProcessor(EventType.SQS),
          {
            ...(context === undefined ? {} : { context }),
            // every message failing is still a partial response naming each id, not a thrown batch
            throwOnFullBatchFailure: false,
            // all records at once: their bufferRecord calls form one Redis transaction
            processInParallel: true,
          },
        );
        // The records are safe in Redis once buffered: a failed flush is
        // reported but does not fail the messages; the next flush retries.
        await flush().catch(() => undefined);
        return response;
      } finally {
        // a batch of TestEvents records no metric; publishing nothing would only log a warning
        if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      }
    },

    async flushHandler(_event, context) {
      if (context !== undefined) logger.addContext(context);
      try {
        return await flush();
      } finally {
        // published even when the flush failed: a growing backlog is what the alarm watches
        await publishBufferState();
        metrics.publishStoredMetrics();
      }
    },
  };
}
