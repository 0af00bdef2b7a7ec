import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import pg from 'pg';
import { createFunction, type LineCountFunction } from '../lambda-image/app.ts';
import { type Connections, createConnections } from '../lambda-image/connections.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { createClient } from '../lib/clients.ts';
import { type Env, loadRuntimeConfig, type RuntimeConfig } from '../lib/config.ts';
import { metricNamespace, serviceName } from '../lib/metrics.ts';
import type { Log } from '../lib/reconcile.ts';
import { emulatorCredentials } from './emulator.ts';
import { type Runner, type RunnerStats, startRunner } from './runner.ts';
import { type LocalStack, silentLog, startLocalStack } from './stack.ts';

// The whole flow on one machine, wired once for the demo, the end-to-end tests
// and the benchmark: the emulated S3/SNS/SQS stack (local/stack.ts), the
// event-source runner (local/runner.ts) and the real function (createFunction)
// with real S3 clients and real Redis/PostgreSQL connections.
//
// Each concurrent invocation gets its own execution environment (function
// instance, S3 client, Redis connection, PostgreSQL pool), built on first use
// and reused, as Lambda runs one invocation at a time per environment up to the
// mapping's maximum concurrency. The flush schedule invokes a second function
// (as provision/ deploys `<app>-<stage>-flush`) with its own environment.

type LogLevel = NonNullable<NonNullable<ConstructorParameters<typeof Logger>[0]>['logLevel']>;

export interface PipelineOptions {
  // Settings as environment variables (lib/config.ts): STAGE, REDIS_URL,
  // DATABASE_URL, DB_SCHEMA, REDIS_KEY_PREFIX, BATCH_SIZE,
  // BATCHING_WINDOW_SECONDS, MAX_CONCURRENCY, FUNCTION_TIMEOUT_SECONDS, ...
  // AWS_* entries are ignored: the stack decides the endpoint and region.
  env: Env;
  // emulator port; 0 (default) picks a free one
  port?: number;
  // The flush schedule. AWS runs it every minute (provision/resources/schedule.ts);
  // locally a second keeps the wait short when a batch's own flush found the lock taken.
  flushIntervalMs?: number;
  // overrides the queue's visibility timeout on receive (retries within a test)
  visibilityTimeoutSeconds?: number;
  // the function's Powertools log level (default SILENT)
  logLevel?: LogLevel;
  // the stack's and the runner's messages
  log?: Log;
  // every invocation of the count function, after it returned or threw
  onInvoke?: (invocation: Invocation) => void;
  // true: the runner starts only on start() (messages can be queued first)
  paused?: boolean;
}

export interface Invocation {
  event: SQSEvent;
  response?: SQSBatchResponse;
  error?: unknown;
}

// The generator's manifest entries (generator/generate.ts ManifestEntry) are
// ExpectedFiles as they are.
interface ExpectedFile {
  key: string;
  lines: number;
  // ISO time the upload completed: the start of the latency
  uploadedAt?: string;
  // when given, a row counts only if it holds this upload (not an older one of the key)
  etag?: string;
}

export interface FileResult {
  key: string;
  expected: number;
  recorded?: number;
  etag?: string;
  recordedAt?: Date;
  // upload completed → row committed (recorded_at, the flush transaction's time)
  latencyMs?: number;
  ok: boolean;
}

interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  onProgress?: (done: number, total: number) => void;
  // stops the wait early (the result is then incomplete)
  signal?: AbortSignal;
}

interface WaitResult {
  files: FileResult[];
  complete: boolean;
  waitedMs: number;
}

interface RecordedFile {
  key: string;
  lines: number;
  recordedAt: Date;
}

interface QueueDepth {
  visible: number;
  inFlight: number;
}

export interface LocalPipeline {
  stack: LocalStack;
  runtime: RuntimeConfig;
  readonly runner: Runner | undefined;
  readonly stats: RunnerStats | undefined;
  // execution environments of the count function started so far (≤ MAX_CONCURRENCY)
  readonly environments: number;
  // the function's metrics summed over every invocation (name → total)
  metrics(): Record<string, number>;
  start(): void;
  readFiles(files: readonly ExpectedFile[]): Promise<FileResult[]>;
  waitForFiles(files: readonly ExpectedFile[], options: WaitOptions): Promise<WaitResult>;
  // rows of the stack's bucket committed after `since` (to the millisecond, as
  // a Date holds it; all when absent), oldest first
  readRecorded(since?: Date, limit?: number): Promise<RecordedFile[]>;
  queueDepth(queueUrl: string): Promise<QueueDepth>;
  stop(): Promise<void>;
}

interface Environment {
  fn: LineCountFunction;
  s3: S3Client;
  connections: Connections;
}

// Locally there is no CloudWatch to read the function's EMF lines from stdout,
// and printing them would bury the demo's output: the metrics are summed here.
class TalliedMetrics extends Metrics {
  constructor(
    options: ConstructorParameters<typeof Metrics>[0],
    private readonly totals: Map<string, number>,
  ) {
    super(options);
  }

  override addMetric(name: string, _unit: Parameters<Metrics['addMetric']>[1], value: number): this {
    this.totals.set(name, (this.totals.get(name) ?? 0) + value);
    return this;
  }

  override hasStoredMetrics(): boolean {
    return false;
  }

  override publishStoredMetrics(): this {
    return this;
  }
}

// 42P01 undefined_table (PostgreSQL Appendix A): the first flush creates it.
function isUndefinedTable(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === '42P01';
}

function withoutAwsSettings(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('AWS_')));
}

export async function startLocalPipeline(options: PipelineOptions): Promise<LocalPipeline> {
  const log = options.log ?? silentLog;
  const stack = await startLocalStack({ port: options.port ?? 0, env: withoutAwsSettings(options.env), log });
  const environments: Environment[] = [];
  let results: pg.Pool | undefined;
  const closeEnvironments = async () => {
    for (const environment of environments.splice(0)) {
      await environment.connections.close().catch(() => undefined);
      environment.s3.destroy();
    }
  };
  try {
    const runtime = loadRuntimeConfig(stack.env);
    const databaseUrl = runtime.database.url;
    if (databaseUrl === undefined || runtime.redis.url === undefined) {
      throw new Error(
        'the local pipeline needs REDIS_URL and DATABASE_URL (startLocalServices provides both)',
      );
    }
    const fnSettings = stack.config.fn;
    const service = serviceName(runtime.stack.app, runtime.stack.stage);
    const logLevel = options.logLevel ?? 'SILENT';
    const totals = new Map<string, number>();
    const aws = { ...runtime.aws, credentials: emulatorCredentials };

    // A cold start, as handler.ts does it: clients and connections once per environment.
    async function createEnvironment(): Promise<Environment> {
      const logger = new Logger({ serviceName: service, logLevel });
      const metrics = new TalliedMetrics({ namespace: metricNamespace, serviceName: service }, totals);
      const s3 = createClient(aws, 's3');
      const connections = await createConnections(runtime, {
        onError: (what, error) => logger.warn(`${what} failed`, { error }),
      });
      const fn = createFunction({
        s3,
        redis: connections.redis,
        pool: connections.pool,
        buffer: runtime.buffer,
        schema: runtime.database.schema,
        logger,
        metrics,
      });
      const environment = { fn, s3, connections };
      environments.push(environment);
      return environment;
    }

    const idle: Environment[] = [];
    let countEnvironments = 0;
    async function invoke(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
      let environment = idle.pop();
      if (environment === undefined) {
        countEnvironments += 1;
        environment = await createEnvironment();
      }
      try {
        const response = await environment.fn.handler(event, context);
        options.onInvoke?.({ event, response });
        return response;
      } catch (error) {
        options.onInvoke?.({ event, error });
        throw error;
      } finally {
        idle.push(environment);
      }
    }

    let flushEnvironment: Promise<Environment> | undefined;
    const flush = async () => {
      flushEnvironment ??= createEnvironment().catch((error: unknown) => {
        flushEnvironment = undefined;
        throw error;
      });
      return (await flushEnvironment).fn.flushHandler();
    };

    results = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    results.on('error', (error) => log.warn(`results connection: ${error.message}`));
    const resultsPool = results;
    // The function runs no DDL: on AWS the migration function creates the
    // tables before any counting function runs (provision/resources/migration.ts).
    // Here the pipeline creates them before the runner starts, which also lets
    // the ops commands read the table before the first upload.
    await migrate(resultsPool, runtime.database.schema);
    const table = qualifiedTable(runtime.database.schema);
    const bucket = stack.outputs.bucket;

    let runner: Runner | undefined;
    const start = () => {
      runner ??= startRunner({
        sqs: stack.clients.sqs,
        queueUrl: stack.outputs.queueUrl,
        queueArn: stack.outputs.queueArn,
        handler: invoke,
        flushHandler: flush,
        batchSize: fnSettings.batchSize,
        batchingWindowMs: fnSettings.batchingWindowSeconds * 1000,
        functionTimeoutMs: fnSettings.timeoutSeconds * 1000,
        concurrency: fnSettings.maxConcurrency,
        flushIntervalMs: options.flushIntervalMs ?? 1_000,
        functionName: `${service}-count`,
        log: { info: (m) => log.info(m), warn: (m) => log.warn(m) },
        ...(options.visibilityTimeoutSeconds === undefined
          ? {}
          : { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds }),
      });
    };
    if (options.paused !== true) start();

    async function readFiles(files: readonly ExpectedFile[]): Promise<FileResult[]> {
      let rows: { file_name: string; line_count: string; etag: string; recorded_at: Date }[] = [];
      try {
        ({ rows } = await resultsPool.query(
          `SELECT file_name, line_count, etag, recorded_at FROM ${table}
            WHERE bucket = $1 AND file_name = ANY($2::text[])`,
          [bucket, files.map((f) => f.key)],
        ));
      } catch (error) {
        if (!isUndefinedTable(error)) throw error;
      }
      const byKey = new Map(rows.map((row) => [row.file_name, row]));
      return files.map((file) => {
        const row = byKey.get(file.key);
        if (row === undefined) return { key: file.key, expected: file.lines, ok: false };
        const recorded = Number(row.line_count);
        const sameUpload = file.etag === undefined || file.etag === row.etag;
        return {
          key: file.key,
          expected: file.lines,
          recorded,
          etag: row.etag,
          recordedAt: row.recorded_at,
          ...(file.uploadedAt === undefined
            ? {}
            : { latencyMs: row.recorded_at.getTime() - Date.parse(file.uploadedAt) }),
          ok: sameUpload && recorded === file.lines,
        };
      });
    }

    return {
      stack,
      runtime,
      get runner() {
        return runner;
      },
      get stats() {
        return runner?.stats;
      },
      get environments() {
        return countEnvironments;
      },
      metrics: () => Object.fromEntries(totals),
      start,
      readFiles,
      async waitForFiles(files, wait) {
        const started = Date.now();
        for (;;) {
          const found = await readFiles(files);
          const done = found.filter((f) => f.ok).length;
          wait.onProgress?.(done, files.length);
          const waitedMs = Date.now() - started;
          if (done === files.length || waitedMs >= wait.timeoutMs || wait.signal?.aborted) {
            return { files: found, complete: done === files.length, waitedMs };
          }
          await sleep(wait.intervalMs ?? 100, undefined, { signal: wait.signal }).catch(() => undefined);
        }
      },
      async readRecorded(since, limit = 100) {
        const { rows } = await resultsPool.query<{
          file_name: string;
          line_count: string;
          recorded_at: Date;
        }>(
          `SELECT file_name, line_count, recorded_at FROM ${table}
            WHERE bucket = $1 AND date_trunc('milliseconds', recorded_at) > $2
            ORDER BY recorded_at, file_name LIMIT $3`,
          [bucket, since ?? new Date(0), limit],
        );
        return rows.map((row) => ({
          key: row.file_name,
          lines: Number(row.line_count),
          recordedAt: row.recorded_at,
        }));
      },
      async queueDepth(queueUrl) {
        const { Attributes = {} } = await stack.clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        return {
          visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
          inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
        };
      },
      async stop() {
        if (runner !== undefined) {
          await runner.stop();
          // what is still buffered is written once more, as local/run.ts does on its way out
          await flush().catch(() => undefined);
        }
        await closeEnvironments();
        await resultsPool.end().catch(() => undefined);
        await stack.stop();
      },
    };
  } catch (error) {
    await closeEnvironments();
    await results?.end().catch(() => undefined);
    await stack.stop();
    throw error;
  }
}
