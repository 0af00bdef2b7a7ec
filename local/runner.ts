import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

// The local stand-in for Lambda's SQS event source mapping with
// ReportBatchItemFailures, and for the schedule that calls the flush handler.
// It behaves as the mapping does (Lambda developer guide, "Using Lambda with
// Amazon SQS"): long polling; up to batchSize records gathered within the
// batching window; the messages that succeeded deleted; the ones listed in
// batchItemFailures left alone, so they reappear after the visibility timeout
// and the queue's redrive policy moves one that keeps failing to the DLQ. A
// thrown error, or a failure naming an empty or unknown itemIdentifier, fails
// the whole batch. Redrive itself is the queue's job: the emulator (fauxqs)
// moves a message whose receive count exceeds maxReceiveCount, as SQS does.
// An invocation that outlives the function timeout fails its whole batch, as
// Lambda's timeout does: nothing is deleted and every message comes back.
//
// Fault tests run it with shortened timings: a function timeout of a few
// seconds (the function's commit wait is a share of it) and a visibility
// timeout of a second or two on receive, so that failed messages come back,
// and reach the DLQ after maxReceiveCount receives, within seconds instead of
// the queue's minutes. The function's own behaviour is the same: it reads its
// deadline from the context, as in Lambda.

export type BatchHandler = (
  event: SQSEvent,
  context: Context,
) => Promise<SQSBatchResponse | undefined | void>;

interface RunnerLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface RunnerOptions {
  sqs: SQSClient;
  queueUrl: string;
  // the records' eventSourceARN (the stack's outputs hold it)
  queueArn: string;
  handler: BatchHandler;
  flushHandler?: () => Promise<unknown>;
  // Lambda accepts up to 10,000 for standard queues; one ReceiveMessage returns ≤ 10
  batchSize: number;
  batchingWindowMs: number;
  // overrides the queue's visibility timeout for the messages this runner receives
  visibilityTimeoutSeconds?: number;
  flushIntervalMs?: number;
  // given to the handler's context (getRemainingTimeInMillis), and enforced
  functionTimeoutMs?: number;
  // parallel pollers, like the mapping's concurrency (default 1)
  concurrency?: number;
  functionName?: string;
  log?: RunnerLog;
}

export interface RunnerStats {
  batches: number;
  received: number;
  deleted: number;
  failed: number;
  handlerErrors: number;
  // invocations that outlived the function timeout (counted in handlerErrors too)
  timeouts: number;
  flushes: number;
  flushErrors: number;
}

export interface Runner {
  readonly stats: RunnerStats;
  // stops polling; resolves once the batches in flight and a running flush finish
  stop(): Promise<void>;
}

// SQS limits: 10 messages per ReceiveMessage and per DeleteMessageBatch, 20 s long poll
const maxReceive = 10;
const maxDeleteBatch = 10;
const maxWaitSeconds = 20;
// Lambda's default function timeout is 3 s; this project deploys 60 s (FUNCTION_TIMEOUT_SECONDS)
const defaultFunctionTimeoutMs = 60_000;

const quietLog: RunnerLog = { info() {}, warn() {} };

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const messageAttributes: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
      ...(value.BinaryValue === undefined
        ? {}
        : { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
    };
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(attributes.MessageGroupId === undefined ? {} : { MessageGroupId: attributes.MessageGroupId }),
      ...(attributes.MessageDeduplicationId === undefined
        ? {}
        : { MessageDeduplicationId: attributes.MessageDeduplicationId }),
      ...(attributes.SequenceNumber === undefined ? {} : { SequenceNumber: attributes.SequenceNumber }),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes === undefined
      ? {}
      : { md5OfMessageAttributes: message.MD5OfMessageAttributes }),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

function createContext(functionName: string, region: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  const unsupported = () => {
    throw new Error('the local runner supports async handlers only');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

// Which messages to delete after an invocation. Lambda's rules for
// ReportBatchItemFailures: no response or an empty list means all succeeded;
// an itemIdentifier that is empty or not in the batch fails the whole batch.
export function succeededMessages(
  records: readonly SQSRecord[],
  response: SQSBatchResponse | undefined | void,
) {
  const failures = response?.batchItemFailures ?? [];
  const ids = new Set(records.map((r) => r.messageId));
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = failure?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !ids.has(id)) {
      return { succeeded: [] as SQSRecord[], wholeBatchFailed: true };
    }
    failed.add(id);
  }
  return { succeeded: records.filter((r) => !failed.has(r.messageId)), wholeBatchFailed: false };
}

export function startRunner(options: RunnerOptions): Runner {
  const log = options.log ?? quietLog;
  const batchSize = Math.max(1, options.batchSize);
  const functionName = options.functionName ?? 'local-function';
  const region = options.queueUrl.match(/sqs\.([a-z0-9-]+)\./)?.[1] ?? 'us-east-1';
  const stats: RunnerStats = {
    batches: 0,
    received: 0,
    deleted: 0,
    failed: 0,
    handlerErrors: 0,
    timeouts: 0,
    flushes: 0,
    flushErrors: 0,
  };
  const abort = new AbortController();
  let stopping = false;
  async function receive(max: number, waitSeconds: number): Promise<Message[]> {
    try {
      const result = await options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: Math.min(maxReceive, max),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
          ...(options.visibilityTimeoutSeconds === undefined
            ? {}
            : { VisibilityTimeout: options.visibilityTimeoutSeconds }),
        }),
        { abortSignal: abort.signal },
      );
      return result.Messages ?? [];
    } catch (error) {
      if (stopping) return [];
      log.warn(`ReceiveMessage failed, retrying in 1 s: ${String(error)}`);
      await sleep(1_000);
      return [];
    }
  }

  // Gathers one batch: waits (long poll) for the first messages, then keeps
  // receiving until batchSize or the end of the batching window.
  async function gather(): Promise<Message[]> {
    const messages: Message[] = [];
    while (messages.length === 0 && !stopping) {
      messages.push(...(await receive(batchSize, maxWaitSeconds)));
    }
    const deadline = Date.now() + options.batchingWindowMs;
    while (!stopping && messages.length < batchSize) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const waitSeconds = Math.min(maxWaitSeconds, Math.floor(remaining / 1000));
      const more = await receive(batchSize - messages.length, waitSeconds);
      messages.push(...more);
      if (more.length === 0 && waitSeconds === 0) await sleep(Math.min(remaining, 50));
    }
    return messages;
  }

  async function deleteMessages(records: readonly SQSRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += maxDeleteBatch) {
      const chunk = records.slice(i, i + maxDeleteBatch);
      const result = await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: chunk.map((r, index) => ({ Id: String(index), ReceiptHandle: r.receiptHandle })),
        }),
      );
      stats.deleted += result.Successful?.length ?? 0;
      for (const failure of result.Failed ?? []) {
        // e.g. the visibility timeout expired first: the message comes back
        // and is processed again (the function is idempotent)
        log.warn(`could not delete message ${failure.Id}: ${failure.Code} ${failure.Message}`);
      }
    }
  }

  // handler calls still running: an invocation past its timeout is given up
  // on but cannot be killed, and stop() waits for it before resolving
  const running = new Set<Promise<unknown>>();

  // the handler's answer, or 'timeout' once the function timeout has passed
  async function call(
    records: SQSRecord[],
  ): Promise<{ response: SQSBatchResponse | undefined | void } | 'timeout'> {
    const timeoutMs = options.functionTimeoutMs ?? defaultFunctionTimeoutMs;
    const handled = Promise.resolve().then(() =>
      options.handler({ Records: records }, createContext(functionName, region, timeoutMs)),
    );
    running.add(handled);
    handled.then(
      () => running.delete(handled),
      () => running.delete(handled),
    );
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      return await Promise.race([handled.then((response) => ({ response })), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function invoke(messages: Message[]): Promise<void> {
    const records = messages.map((m) => toRecord(m, options.queueArn, region));
    stats.batches += 1;
    stats.received += records.length;
    let response: SQSBatchResponse | undefined | void;
    try {
      const outcome = await call(records);
      if (outcome === 'timeout') {
        stats.timeouts += 1;
        stats.handlerErrors += 1;
        stats.failed += records.length;
        log.warn(
          `the invocation outlived the function timeout: the whole batch of ${records.length} will be retried`,
        );
        return;
      }
      response = outcome.response;
    } catch (error) {
      stats.handlerErrors += 1;
      stats.failed += records.length;
      log.warn(`handler failed, the whole batch of ${records.length} will be retried: ${String(error)}`);
      return;
    }
    const { succeeded, wholeBatchFailed } = succeededMessages(records, response);
    if (wholeBatchFailed) {
      log.warn(
        `batchItemFailures named an unknown or empty itemIdentifier: the whole batch of ${records.length} will be retried`,
      );
    }
    stats.failed += records.length - succeeded.length;
    if (succeeded.length > 0) await deleteMessages(succeeded);
  }

  async function poll(): Promise<void> {
    while (!stopping) {
      const messages = await gather();
      // a batch gathered before stop() is still delivered: its messages are
      // already invisible, and stop() waits for the batch in flight
      if (messages.length === 0) continue;
      try {
        await invoke(messages);
      } catch (error) {
        log.warn(`batch of ${messages.length} not completed: ${String(error)}`);
      }
    }
  }

  let flushing: Promise<void> = Promise.resolve();
  let flushTimer: NodeJS.Timeout | undefined;
  function scheduleFlush(): void {
    if (options.flushHandler === undefined || options.flushIntervalMs === undefined || stopping) return;
    const flushHandler = options.flushHandler;
    flushTimer = setTimeout(() => {
      flushing = flushHandler()
        .then(() => {
          stats.flushes += 1;
        })
        .catch((error) => {
          stats.flushErrors += 1;
          log.warn(`scheduled flush failed: ${String(error)}`);
        })
        .finally(scheduleFlush);
    }, options.flushIntervalMs);
  }

  const pollers = Array.from({ length: Math.max(1, options.concurrency ?? 1) }, () => poll());
  scheduleFlush();
  log.info(`polling ${options.queueUrl} (batch ${batchSize}, window ${options.batchingWindowMs} ms)`);

  let stopped: Promise<void> | undefined;
  return {
    stats,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (flushTimer !== undefined) clearTimeout(flushTimer);
        abort.abort();
        await Promise.all(pollers);
        await Promise.allSettled([...running]);
        await flushing;
      })();
      return stopped;
    },
  };
}
