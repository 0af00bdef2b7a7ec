// Benchmark: the function's write path (dedupe + buffer in Redis, then group
// commit) against one INSERT per record, on the same PostgreSQL, in one run.
//
//   node --import tsx bench/flush.ts [--records 10000] [--rounds 5] [--batch-sizes 10,100] [--invocations 1]
//
// Uses REDIS_URL / DATABASE_URL when set, else 127.0.0.1:6379 and
// postgres@127.0.0.1:5432/test. Works in its own schemas and key prefix and
// removes them at the end. --batch-sizes defaults to BATCH_SIZE (lib/config.ts,
// default 10) and 100.
//
// The records arrive as SQS batches. Each path is timed from the first record
// to the last row committed:
// - one INSERT per record: what a function without the buffer does, one upsert
//   per record in autocommit (one transaction and one WAL flush each), on the
//   instance's one connection;
// - the function: per batch, bufferRecord for every record at once (as the
//   handler's parallel batch processing calls it, so they coalesce into one
//   Redis transaction), then flushBuffer, as the handler does after each batch;
// - backlog drain: the same buffering, but the batches pile up and one flush
//   drains them FLUSH_MAX_ENTRIES rows per statement (the scheduled flush after
//   a burst, or the flush after a batch while another instance held the lock).
// Reading and counting the objects costs the same in every path and is left out.
// --invocations N runs N function instances at once, each with its own Redis
// and PostgreSQL connection, taking batches from one queue (MAX_CONCURRENCY).
// Paths alternate within each round and their order rotates between rounds;
// the report gives medians, and ratios as the median of each round's ratio.

import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { bufferKeys, bufferRecord, type CountedRecord } from '../lambda-image/buffer.ts';
import { flushBuffer } from '../lambda-image/flush.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { readWholeNumber } from '../lib/cli.ts';
import { type BufferSettings, loadFunctionSettings, loadLocalConfig } from '../lib/config.ts';
import { parseFlags } from '../lib/flags.ts';

const functionSettings = loadFunctionSettings();
const values = parseFlags(process.argv.slice(2), {
  records: { type: 'string', default: '10000' },
  rounds: { type: 'string', default: '5' },
  'batch-sizes': { type: 'string', default: `${functionSettings.batchSize},100` },
  invocations: { type: 'string', default: '1' },
});
const recordCount = readWholeNumber('records', values.records, 1);
const roundCount = readWholeNumber('rounds', values.rounds, 1);
const invocationCount = readWholeNumber('invocations', values.invocations, 1);
const batchSizes = values['batch-sizes'].split(',').map((part) => readWholeNumber('batch-sizes', part, 1));

const local = loadLocalConfig();
const databaseUrl = local.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = local.redisUrl ?? 'redis://127.0.0.1:6379';
const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
const naiveSchema = `bench_flush_naive_${tag}`;
const groupSchema = `bench_flush_group_${tag}`;
const basePrefix = `bench:flush:${tag}:`;
let runs = 0;
function freshSettings(): BufferSettings {
  runs += 1;
  return {
    keyPrefix: `${basePrefix}${runs}:`,
    dedupeTtlSeconds: 3600,
    // the deployed defaults (lib/config.ts FLUSH_MAX_ENTRIES, FLUSH_LOCK_MS, FLUSH_CLAIM_IDLE_MS)
    flushMaxEntries: 5_000,
    flushLockMs: 30_000,
    claimIdleMs: 60_000,
  };
}

function makeRecords(): CountedRecord[] {
  const eventTime = new Date().toISOString();
  return Array.from({ length: recordCount }, (_, i) => ({
    bucket: 'bench-uploads',
    key: `uploads/2025/01/file-${String(i).padStart(6, '0')}.csv`,
    size: 1000 + i,
    eTag: randomBytes(16).toString('hex'),
    sequencer: (0x0055aed6dcd90281e5n + BigInt(i)).toString(16).toUpperCase().padStart(18, '0'),
    eventTime,
    eventName: 'ObjectCreated:Put',
    lines: i % 500,
    bytes: 1000 + i,
  }));
}

function batchesOf<T>(items: readonly T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

// The same upsert the flush runs, one row at a time.
function naiveInsert(schema: string): string {
  return `
    INSERT INTO ${qualifiedTable(schema)} AS stored
      (bucket, file_name, line_count, size_bytes, etag, version_id, sequencer, event_time)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (bucket, file_name) DO UPDATE SET
      line_count = excluded.line_count, size_bytes = excluded.size_bytes, etag = excluded.etag,
      version_id = excluded.version_id, sequencer = excluded.sequencer, event_time = excluded.event_time,
      recorded_at = now()
    WHERE rpad(upper(stored.sequencer), greatest(length(stored.sequencer), length(excluded.sequencer)), '0') COLLATE "C"
        < rpad(upper(excluded.sequencer), greatest(length(stored.sequencer), length(excluded.sequencer)), '0') COLLATE "C"`;
}

// One function instance: its own Redis connection and a one-connection pool
// (lambda-image/connections.ts), whose statements are timed.
interface Instance {
  redis: Redis;
  pool: pg.Pool;
  timedPool: pg.Pool;
  databaseMs: number;
  statements: number;
}

function openInstance(): Instance {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const instance: Instance = {
    redis: new Redis(redisUrl, { maxRetriesPerRequest: 1 }),
    pool,
    timedPool: pool,
    databaseMs: 0,
    statements: 0,
  };
  // flush.ts only calls pool.query: time exactly the statements the database runs
  instance.timedPool = {
    query: async (...args: Parameters<pg.Pool['query']>) => {
      const started = performance.now();
      try {
        return await (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
      } finally {
        instance.databaseMs += performance.now() - started;
        instance.statements += 1;
      }
    },
  } as unknown as pg.Pool;
  return instance;
}

interface Measurement {
  ms: number;
  bufferMs: number;
  flushMs: number;
  databaseMs: number;
  statements: number;
}

// Each instance takes the next batch until none are left, as the event source
// mapping hands batches to MAX_CONCURRENCY instances.
async function eachBatch<T>(batches: readonly T[], work: (instance: Instance, batch: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    instances.map(async (instance) => {
      while (next < batches.length) {
        const batch = batches[next++] as T;
        await work(instance, batch);
      }
    }),
  );
}

function resetTiming(): void {
  for (const instance of instances) {
    instance.databaseMs = 0;
    instance.statements = 0;
  }
}

function collect(ms: number, bufferMs: number, flushMs: number): Measurement {
  return {
    ms,
    bufferMs,
    flushMs,
    databaseMs: instances.reduce((sum, i) => sum + i.databaseMs, 0),
    statements: instances.reduce((sum, i) => sum + i.statements, 0),
  };
}

async function runNaive(records: readonly CountedRecord[], batchSize: number): Promise<Measurement> {
  await admin.query(`TRUNCATE ${qualifiedTable(naiveSchema)}`);
  const sql = naiveInsert(naiveSchema);
  const started = performance.now();
  await eachBatch(batchesOf(records, batchSize), async (instance, batch) => {
    for (const r of batch) {
      await instance.pool.query(sql, [
        r.bucket,
        r.key,
        r.lines,
        r.bytes,
        r.eTag,
        r.versionId ?? null,
        r.sequencer,
        r.eventTime,
      ]);
    }
  });
  const ms = performance.now() - started;
  await expectRows(naiveSchema, 'one INSERT per record', records.length);
  return { ms, bufferMs: 0, flushMs: ms, databaseMs: ms, statements: records.length };
}

async function runFunction(
  records: readonly CountedRecord[],
  batchSize: number,
  drain: boolean,
): Promise<Measurement> {
  await admin.query(`TRUNCATE ${qualifiedTable(groupSchema)}`);
  const settings = freshSettings();
  resetTiming();
  let bufferMs = 0;
  let flushMs = 0;
  const started = performance.now();
  await eachBatch(batchesOf(records, batchSize), async (instance, batch) => {
    const t0 = performance.now();
    const outcomes = await Promise.all(batch.map((r) => bufferRecord(instance.redis, settings, r)));
    if (outcomes.some((o) => o !== 'buffered')) throw new Error('a fresh record was reported as a duplicate');
    const t1 = performance.now();
    bufferMs += t1 - t0;
    if (drain) return;
    // skipped when another instance holds the lock: its flush, or the next, takes these entries
    await flushBuffer(instance.redis, instance.timedPool, settings, groupSchema);
    flushMs += performance.now() - t1;
  });
  if (drain || invocationCount > 1) {
    // the scheduled flush (or the last instance's next flush) takes what is left
    const first = instances[0] as Instance;
    for (;;) {
      const t0 = performance.now();
      const result = await flushBuffer(first.redis, first.timedPool, settings, groupSchema);
      flushMs += performance.now() - t0;
      if (result.skipped) throw new Error('the flush lock is still held after every instance finished');
      if (result.entries === 0) break;
    }
  }
  const ms = performance.now() - started;
  await expectRows(groupSchema, 'buffer + group commit', records.length);
  if ((await instances[0]?.redis.xlen(bufferKeys(settings).stream)) !== 0) {
    throw new Error('the buffer was not drained');
  }
  return collect(ms, bufferMs, flushMs);
}

async function expectRows(schema: string, path: string, expected: number): Promise<void> {
  const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${qualifiedTable(schema)}`);
  if (rows[0].n !== expected) throw new Error(`${path} wrote ${rows[0].n} rows, expected ${expected}`);
}

async function removeKeys(redis: Redis): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${basePrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const rate = (ms: number) => Math.round(recordCount / (ms / 1000));
const format = (n: number) => n.toLocaleString('en-US');

interface Variant {
  name: string;
  batchSize: number;
  run(records: readonly CountedRecord[]): Promise<Measurement>;
  naive?: boolean;
}

const variants: Variant[] = [
  // the naive path does not depend on the batch size: one statement per record either way
  {
    name: 'one INSERT per record (autocommit)',
    batchSize: batchSizes[0] ?? 10,
    naive: true,
    run: (r) => runNaive(r, batchSizes[0] ?? 10),
  },
  ...batchSizes.flatMap((size) => [
    {
      name: `function, batch ${size}: coalesced buffer + flush after each batch`,
      batchSize: size,
      run: (r: readonly CountedRecord[]) => runFunction(r, size, false),
    },
    {
      name: `backlog, batch ${size}: coalesced buffer, then one draining flush`,
      batchSize: size,
      run: (r: readonly CountedRecord[]) => runFunction(r, size, true),
    },
  ]),
];

const admin = new pg.Pool({ connectionString: databaseUrl, max: 1 });
const instances = Array.from({ length: invocationCount }, openInstance);
const loadBefore = loadavg();
try {
  await Promise.all(instances.map((i) => i.redis.ping()));
  await migrate(admin, naiveSchema);
  await migrate(admin, groupSchema);
  const records = makeRecords();
  const results = new Map<Variant, Measurement[]>(variants.map((v) => [v, []]));
  // one untimed warm-up of every path (connections, plans, JIT)
  for (const variant of variants) await variant.run(records.slice(0, Math.min(500, recordCount)));
  for (let round = 0; round < roundCount; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
    for (const variant of order) {
      const measurement = await variant.run(records);
      results.get(variant)?.push(measurement);
      console.error(
        `round ${round + 1}/${roundCount}: ${variant.name}: ${measurement.ms.toFixed(0)} ms (${format(rate(measurement.ms))} rows/s)`,
      );
    }
  }
  const loadAfter = loadavg();

  const naive = results.get(variants[0] as Variant) ?? [];
  const { rows: versionRows } = await admin.query(
    `SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync,
            current_setting('fsync') AS fsync`,
  );
  const info = await instances[0]?.redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info ?? '')?.[1] ?? 'unknown';
  const server = versionRows[0];
  const cpu = cpus();
  const lines = [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
    `load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
    `PostgreSQL ${server.version} (synchronous_commit=${server.sync}, fsync=${server.fsync}), Redis ${redisVersion}, both on 127.0.0.1`,
    `records: ${recordCount}, rounds: ${roundCount}, invocations: ${invocationCount}, FLUSH_MAX_ENTRIES: 5000`,
    '',
    '| path | rows/s (median) | time (median) | of which buffering | of which flushing | statements | ratio, end to end | ratio, database only |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const variant of variants) {
    const measured = results.get(variant) ?? [];
    const ms = median(measured.map((m) => m.ms));
    const endToEnd = variant.naive ? 1 : median(measured.map((m, i) => (naive[i]?.ms ?? Number.NaN) / m.ms));
    const database = variant.naive
      ? 1
      : median(measured.map((m, i) => (naive[i]?.ms ?? Number.NaN) / m.databaseMs));
    lines.push(
      `| ${variant.name} | ${format(rate(ms))} | ${format(Math.round(ms))} ms | ${format(Math.round(median(measured.map((m) => m.bufferMs))))} ms | ${format(Math.round(median(measured.map((m) => m.flushMs))))} ms | ${format(median(measured.map((m) => m.statements)))} | ${endToEnd.toFixed(1)}× | ${database.toFixed(1)}× |`,
    );
  }
  lines.push(
    '',
    'ratio, end to end: the INSERT path time / this path time, per round, median.',
    'ratio, database only: the INSERT path time (all of it statements) / the time this path spent in its PostgreSQL statements.',
    ...(invocationCount > 1
      ? [
          `buffering and flushing times are summed over the ${invocationCount} instances, which overlap: they add up to more than the wall time.`,
        ]
      : []),
  );
  console.log(lines.join('\n'));
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${naiveSchema} CASCADE`).catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${groupSchema} CASCADE`).catch(() => undefined);
  if (instances[0]) await removeKeys(instances[0].redis).catch(() => undefined);
  for (const instance of instances) {
    instance.redis.disconnect();
    await instance.pool.end();
  }
  await admin.end();
}
