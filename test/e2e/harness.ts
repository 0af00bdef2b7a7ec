import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { type ManifestEntry, uploadGeneratedFile } from '../../generator/generate.ts';
import { createRunId, NameStyle } from '../../generator/names.ts';
import { type FilePlan, planFile } from '../../generator/plan.ts';
import { parseMessageBody, type UploadEvent } from '../../lambda-image/events.ts';
import { type Env } from '../../lib/config.ts';
import {
  type Invocation,
  type LocalPipeline,
  type PipelineOptions,
  startLocalPipeline,
} from '../../local/pipeline.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testDatabaseUrl,
  testRedisUrl,
} from '../support/services.ts';

// One end-to-end rig per test file: the emulated stack on a free port, the
// real runner and the real function (local/pipeline.ts, as the demo wires
// them) on the machine's Redis and PostgreSQL, in this file's own key prefix
// and schema.

// Short timings through configuration, so retries happen within a test:
// FUNCTION_TIMEOUT_SECONDS=10 keeps the queue's visibility timeout at
// 6 × 10 + 1 = 61 s, and the runner enforces it. An invocation waits for its
// commit for 80 % of what is left of it, and a busy 2-core machine running
// several test files must not make a healthy commit miss that (a failed
// message would come back later and count as a duplicate); tests that need
// redeliveries pass the runner's visibilityTimeoutSeconds. A 1 s idle time
// lets a flush reclaim entries that a failed flush of another environment
// left pending. The flush lock keeps its deployed lease.
const e2eSettings = {
  STAGE: 'e2e',
  FUNCTION_TIMEOUT_SECONDS: '10',
  BATCHING_WINDOW_SECONDS: '1',
  FLUSH_CLAIM_IDLE_MS: '1000',
} as const;

export interface Rig {
  pipeline: LocalPipeline;
  db: TestSchema;
  cache: TestRedis;
  invocations: Invocation[];
  stop(): Promise<void>;
}

export interface RigOptions extends Omit<Partial<PipelineOptions>, 'env' | 'onInvoke'> {
  label: string;
  env?: Env;
  // the function's DATABASE_URL (a proxy in the outage test); the schema is
  // created and dropped directly
  databaseUrl?: string;
}

export async function startRig(options: RigOptions): Promise<Rig> {
  const db = await createTestSchema(options.label);
  const cache = await createTestRedis(options.label);
  const invocations: Invocation[] = [];
  try {
    const pipeline = await startLocalPipeline({
      ...options,
      env: {
        ...e2eSettings,
        REDIS_URL: testRedisUrl,
        DATABASE_URL: options.databaseUrl ?? testDatabaseUrl,
        DB_SCHEMA: db.schema,
        REDIS_KEY_PREFIX: cache.prefix,
        ...options.env,
      },
      onInvoke: (invocation) => invocations.push(invocation),
    });
    return {
      pipeline,
      db,
      cache,
      invocations,
      async stop() {
        await pipeline.stop();
        await cache.cleanup();
        await db.drop();
      },
    };
  } catch (error) {
    await cache.cleanup();
    await db.drop();
    throw error;
  }
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  // a bound, not a measure: generous, since a loaded machine stretches every step
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

// Waits until every file is recorded with its manifest count and fails naming
// the ones that are not.
export async function expectRecorded(
  pipeline: LocalPipeline,
  entries: readonly ManifestEntry[],
  timeoutMs = 60_000,
): Promise<void> {
  const result = await pipeline.waitForFiles(entries, { timeoutMs, intervalMs: 200 });
  const problems = result.files
    .filter((f) => !f.ok)
    .map((f) => `${f.key}: expected ${f.expected}, recorded ${f.recorded ?? 'nothing'}`);
  assert.deepEqual(problems, [], `${problems.length} of ${entries.length} files not recorded correctly`);
}

export async function countRows(db: TestSchema): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${db.schema}.line_counts`);
  return Number(rows[0]?.n ?? 0);
}

// A generated file with a chosen key and size, planned as the generator plans
// its files (so its line count is known before it is written).
export function planNamed(key: string, lines: number, seed: number, finalNewline = true): FilePlan {
  const base = planFile(
    {
      prefix: 'uploads/',
      count: 1,
      minLines: lines,
      maxLines: lines,
      seed,
      names: NameStyle.simple,
      runId: createRunId(),
    },
    0,
  );
  return { ...base, key, lines, finalNewline: lines === 0 ? true : finalNewline };
}

export async function uploadPlan(rig: Rig, plan: FilePlan): Promise<ManifestEntry> {
  return uploadGeneratedFile({
    s3: rig.pipeline.stack.clients.s3,
    bucket: rig.pipeline.stack.outputs.bucket,
    plan,
  });
}

// Every record the function saw, with what it answered for it.
export function handledRecords(invocations: readonly Invocation[]) {
  const handled: { record: SQSRecord; failed: boolean; response?: SQSBatchResponse }[] = [];
  for (const { event, response, error } of invocations) {
    const failures = new Set(response?.batchItemFailures.map((f) => f.itemIdentifier) ?? []);
    for (const record of event.Records) {
      handled.push({
        record,
        failed: error !== undefined || failures.has(record.messageId),
        ...(response === undefined ? {} : { response }),
      });
    }
  }
  return handled;
}

// Counts every row the function writes (insert or actual update) from now on:
// an upsert that changes nothing (a duplicate, or an older event) fires no
// UPDATE trigger, so a file written more than once was counted twice.
export async function watchWrites(
  db: TestSchema,
): Promise<{ doubled(): Promise<string[]>; total(): Promise<number> }> {
  const table = `${db.schema}.line_counts`;
  await db.pool.query(`CREATE TABLE ${db.schema}.row_writes (file_name text NOT NULL, op text NOT NULL)`);
  await db.pool.query(`
    CREATE FUNCTION ${db.schema}.note_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${db.schema}.row_writes VALUES (NEW.file_name, TG_OP);
      RETURN NEW;
    END $$`);
  await db.pool.query(
    `CREATE TRIGGER note_write AFTER INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${db.schema}.note_write()`,
  );
  return {
    async doubled() {
      const { rows } = await db.pool.query<{ file_name: string }>(
        `SELECT file_name FROM ${db.schema}.row_writes GROUP BY file_name HAVING count(*) > 1 ORDER BY 1`,
      );
      return rows.map((r) => r.file_name);
    },
    async total() {
      const { rows } = await db.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${db.schema}.row_writes`,
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}

// The upload a handled SQS record announces (its first ObjectCreated record).
export function uploadOf(record: SQSRecord): UploadEvent | undefined {
  try {
    const message = parseMessageBody(record.body);
    return message.kind === 'uploads' ? message.uploads[0] : undefined;
  } catch {
    return undefined;
  }
}
