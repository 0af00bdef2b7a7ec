import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Redis } from 'ioredis';
import { createFunction, type LineCountFunction } from '../../../lambda-image/app.ts';
import { createRedis } from '../../../lambda-image/connections.ts';
import { migrate, qualifiedTable } from '../../../lambda-image/schema.ts';
import type { ExitCode } from '../../../lib/cli.ts';
import type { BufferSettings } from '../../../lib/config.ts';
import { metricNamespace } from '../../../lib/metrics.ts';
import { writeOutputs } from '../../../lib/outputs.ts';
import { type Runner, startRunner } from '../../../local/runner.ts';
import { type LocalStack, startLocalStack } from '../../../local/stack.ts';
import { type Io, readQueueDepth } from '../../../ops/common.ts';
import { CuttableProxy } from '../proxy.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testDatabaseUrl,
  testRedisUrl,
} from '../services.ts';
import { capture } from './io.ts';

// The whole local flow for the ops commands' tests: the emulated S3/SNS/SQS
// stack, the real function on the local event-source runner, the machine's
// Redis (own key prefix, reached through a cuttable proxy) and PostgreSQL
// (own schema), and the stage's outputs file in a temporary root.

export interface Flow {
  stack: LocalStack;
  db: TestSchema;
  cache: TestRedis;
  // the function's own Redis connection, through the proxy
  functionRedis: Redis;
  proxy: CuttableProxy;
  settings: BufferSettings;
  fn: LineCountFunction;
  runner: Runner;
  root: string;
  // what an operator would export to run the ops commands on this flow
  env: Record<string, string>;
  upload(key: string, body: string): Promise<string>;
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  depth(queueUrl: string): Promise<number>;
  rowFor(key: string): Promise<{ line_count: string; etag: string; sequencer: string } | undefined>;
  stop(): Promise<void>;
}

export async function startFlow(label: string): Promise<Flow> {
  const stage = `ops${label}`.slice(0, 10);
  // a 3 s function timeout allows the shortest valid visibility timeout (6 × 3 s)
  const stack = await startLocalStack({
    env: { STAGE: stage, FUNCTION_TIMEOUT_SECONDS: '3', BATCHING_WINDOW_SECONDS: '0' },
  });
  const root = await mkdtemp(join(tmpdir(), `ops-${label}-`));
  await writeOutputs(stack.outputs, root);
  const db = await createTestSchema(`ops_${label}`);
  await migrate(db.pool, db.schema);
  const cache = await createTestRedis(`ops_${label}`);
  const proxy = await new CuttableProxy('127.0.0.1', Number(new URL(testRedisUrl).port || 6379)).start();
  const functionRedis = await createRedis({ url: proxy.url('redis'), port: proxy.port, tls: false });
  functionRedis.on('error', () => undefined);
  // connected before any test cuts it, as a warm function is
  await functionRedis.ping();
  const settings: BufferSettings = {
    keyPrefix: cache.prefix,
    dedupeTtlSeconds: 3600,
    flushMaxEntries: 1000,
    flushLockMs: 5_000,
    claimIdleMs: 1_000,
    flushGatherMs: 2,
  };
  const metrics = new Metrics({ namespace: metricNamespace, serviceName: `ada-linecount-${stage}` });
  // the metrics' EMF lines would only clutter the test output
  mock.method(metrics, 'publishStoredMetrics', () => undefined);
  const fn = createFunction({
    s3: stack.clients.s3,
    redis: functionRedis,
    pool: db.pool,
    buffer: settings,
    schema: db.schema,
    logger: new Logger({ serviceName: `ada-linecount-${stage}`, logLevel: 'SILENT' }),
    metrics,
  });
  const runner = startRunner({
    sqs: stack.clients.sqs,
    queueUrl: stack.outputs.queueUrl,
    queueArn: stack.outputs.queueArn,
    handler: fn.handler,
    batchSize: 10,
    batchingWindowMs: 0,
    // a failed message comes back after a second, not after the queue's 18 s
    visibilityTimeoutSeconds: 1,
    functionTimeoutMs: 3_000,
  });
  const env = {
    STAGE: stage,
    DATABASE_URL: testDatabaseUrl,
    DB_SCHEMA: db.schema,
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: cache.prefix,
  };

  const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };
  return {
    stack,
    db,
    cache,
    functionRedis,
    proxy,
    settings,
    fn,
    runner,
    root,
    env,
    async upload(key, body) {
      const reply = await stack.clients.s3.send(
        new PutObjectCommand({ Bucket: stack.outputs.bucket, Key: key, Body: body }),
      );
      await stack.emulator.settled();
      return (reply.ETag ?? '').replace(/"/g, '');
    },
    waitFor,
    async depth(queueUrl) {
      const depth = await readQueueDepth(stack.clients.sqs, queueUrl);
      return depth.visible + depth.inFlight;
    },
    async rowFor(key) {
      const { rows } = await db.pool.query(
        `SELECT line_count, etag, sequencer FROM ${qualifiedTable(db.schema)} WHERE bucket = $1 AND file_name = $2`,
        [stack.outputs.bucket, key],
      );
      return rows[0];
    },
    async stop() {
      await runner.stop();
      functionRedis.disconnect();
      await proxy.stop();
      await stack.stop();
      await cache.cleanup();
      await db.drop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export async function run(
  command: (argv: string[], io: Io, env: Record<string, string>) => Promise<ExitCode>,
  flow: Flow,
  argv: string[],
  env: Record<string, string> = flow.env,
): Promise<{ code: ExitCode; out: string; err: string }> {
  const io = capture(flow.root);
  const code = await command(argv, io, env);
  return { code, out: io.stdout(), err: io.stderr() };
}
