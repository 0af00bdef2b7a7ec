// Benchmark: the function's write path (buffer in Redis, then the group
// commit each invocation waits for, lambda-image/commit.ts) against one INSERT
// per record, on the same PostgreSQL, side by side in one run.
//
//   node --import tsx bench/flush.ts [--records 10000] [--rounds 5] [--batch-sizes 10] [--invocations 5] [--warmup 500] [--gather-ms 2]
//
// Uses REDIS_URL / DATABASE_URL when set, else 127.0.0.1:6379 and
// postgres@127.0.0.1:5432/test. Works in its own schemas and key prefix and
// removes them at the end. --batch-sizes defaults to BATCH_SIZE (lib/config.ts,
// default 10), --invocations to MAX_CONCURRENCY (default 5).
//
// The records arrive as SQS batches, taken by N invocations at once (the
// event source mapping's concurrency), each with its own Redis connection
// and a one-connection PostgreSQL pool, as in Lambda. Each path is timed from
// the first record to the last row committed:
// - one INSERT per record: what a function without the buffer does, one
//   upsert per record in autocommit (one transaction and one WAL flush each);
// - the function: per batch, exactly what the handler does once the objects
//   are counted: committer.commit(records), which appends them to the buffer,
//   then commits them (taking the flush lock) or waits for the invocation that
//   does, and returns only when they are in PostgreSQL. The next batch of an
//   invocation starts only after that: the invariant costs what it costs.
// Reading and counting the objects costs the same in every path and is left out.
//
// Counted for the function path: PostgreSQL transactions (every statement is
// one, in autocommit; counted at the pool, and checked against
// pg_stat_database.xact_commit, which other sessions on the server also move),
// and Redis commands and round trips per record (counted at each client: a
// round trip is a command sent while none of that client's was outstanding).
// Paths alternate within each round and their order rotates between rounds;
// the report gives medians, and ratios as the median of each round's ratio.

import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type Command, Redis } from 'ioredis';
import pg from 'pg';
import { bufferKeys, type CountedRecord } from '../lambda-image/buffer.ts';
import { type Committer, createCommitter } from '../lambda-image/commit.ts';
import { createNotifier, type Notifier } from '../lambda-image/notify.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { readWholeNumber } from '../lib/cli.ts';
import { type BufferSettings, loadFunctionSettings, loadLocalConfig, loadOpsConfig } from '../lib/config.ts';
import { parseFlags } from '../lib/flags.ts';

const functionSettings = loadFunctionSettings();
const values = parseFlags(process.argv.slice(2), {
  records: { type: 'string', default: '10000' },
  rounds: { type: 'string', default: '5' },
  'batch-sizes': { type: 'string', default: `${functionSettings.batchSize}` },
  invocations: { type: 'string', default: `${functionSettings.maxConcurrency}` },
  warmup: { type: 'string', default: '500' },
  // FLUSH_GATHER_MS, by default the deployed one
  'gather-ms': { type: 'string' },
});
const recordCount = readWholeNumber('records', values.records, 1);
const roundCount = readWholeNumber('rounds', values.rounds, 1);
const invocationCount = readWholeNumber('invocations', values.invocations, 1);
const warmupCount = readWholeNumber('warmup', values.warmup, 1);
// FLUSH_GATHER_MS as the function reads it, unless --gather-ms says otherwise
const gatherMs =
  values['gather-ms'] === undefined
    ? loadOpsConfig().buffer.flushGatherMs
    : readWholeNumber('gather-ms', values['gather-ms'], 0);
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
    flushLockMs: 1_500,
    claimIdleMs: 60_000,
    flushGatherMs: gatherMs,
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

interface Counts {
  commands: number;
  roundTrips: number;
  statements: number;
}

// One function instance: its own Redis connection (commands counted), the
// subscriber its notifier opens, and a one-connection pool (statements counted).
interface Instance {
  redis: Redis;
  pool: pg.Pool;
  countedPool: pg.Pool;
  notifier: Notifier;
  counts: Counts;
}

function countCommands(redis: Redis, counts: Counts): void {
  let outstanding = 0;
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: Command, stream?: unknown) => {
    counts.commands += 1;
    if (outstanding === 0) counts.roundTrips += 1;
    outstanding += 1;
    const done = () => {
      outstanding -= 1;
    };
    command.promise.then(done, done);
    return (send as (c: Command, s?: unknown) => unknown)(command, stream);
  }) as Redis['sendCommand'];
}

function openInstance(): Instance {
  const counts: Counts = { commands: 0, roundTrips: 0, statements: 0 };
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  countCommands(redis, counts);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  // flush.ts only calls pool.query, each an autocommit statement: one transaction each
  const countedPool = {
    query: (...args: Parameters<pg.Pool['query']>) => {
      counts.statements += 1;
      return (pool.query as (...a: unknown[]) => Promise<unknown>)(...args);
    },
  } as unknown as pg.Pool;
  return { redis, pool, countedPool, notifier: createNotifier(redis, 'unused'), counts };
}

interface Measurement {
  ms: number;
  transactions: number;
  serverTransactions: number;
  commands: number;
  roundTrips: number;
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

function totals(): Counts {
  return instances.reduce(
    (sum, { counts }) => ({
      commands: sum.commands + counts.commands,
      roundTrips: sum.roundTrips + counts.roundTrips,
      statements: sum.statements + counts.statements,
    }),
    { commands: 0, roundTrips: 0, statements: 0 },
  );
}

async function serverCommits(): Promise<number> {
  const { rows } = await admin.query(
    'SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0].n);
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
  return { ms, transactions: records.length, serverTransactions: Number.NaN, commands: 0, roundTrips: 0 };
}

async function runFunction(records: readonly CountedRecord[], batchSize: number): Promise<Measurement> {
  await admin.query(`TRUNCATE ${qualifiedTable(groupSchema)}`);
  const settings = freshSettings();
  const committers = new Map<Instance, Committer>(
    instances.map((instance) => [
      instance,
      createCommitter({
        redis: instance.redis,
        pool: instance.countedPool,
        settings,
        schema: groupSchema,
        notifier: (instance.notifier = createNotifier(instance.redis, bufferKeys(settings).channel)),
      }),
    ]),
  );
  // the subscriptions are made before the clock starts, as a warm environment has them
  await Promise.all(instances.map((instance) => instance.notifier.wait(instance.notifier.generation, 50)));
  const before = totals();
  const commitsBefore = await serverCommits();
  const started = performance.now();
  await eachBatch(batchesOf(records, batchSize), async (instance, batch) => {
    const results = await committers.get(instance)?.commit(
      batch.map((record, i) => ({ record, messageId: `m-${i}` })),
      Date.now() + 60_000,
    );
    const failed = results?.find((r) => r.status !== 'committed');
    if (failed !== undefined) throw new Error(`a record was not committed: ${JSON.stringify(failed)}`);
  });
  const ms = performance.now() - started;
  const commitsAfter = await serverCommits();
  const after = totals();
  for (const instance of instances) instance.notifier.close();
  await expectRows(groupSchema, 'buffer + group commit', records.length);
  if ((await instances[0]?.redis.xlen(bufferKeys(settings).stream)) !== 0) {
    throw new Error('the buffer was not drained');
  }
  return {
    ms,
    transactions: after.statements - before.statements,
    // minus the one this query's own snapshot of the counter cost
    serverTransactions: commitsAfter - commitsBefore - 1,
    commands: after.commands - before.commands,
    roundTrips: after.roundTrips - before.roundTrips,
  };
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
  run(records: readonly CountedRecord[]): Promise<Measurement>;
  naive?: boolean;
}

const variants: Variant[] = [
  // the naive path does not depend on the batch size: one statement per record either way
  {
    name: `one INSERT per record, ${invocationCount} connections`,
    naive: true,
    run: (r) => runNaive(r, batchSizes[0] ?? 10),
  },
  ...batchSizes.map((size) => ({
    name: `function, batch ${size}, ${invocationCount} invocations: buffer + commit wait`,
    run: (r: readonly CountedRecord[]) => runFunction(r, size),
  })),
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
  for (const variant of variants) await variant.run(records.slice(0, Math.min(warmupCount, recordCount)));
  for (let round = 0; round < roundCount; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant);
    for (const variant of order) {
      const measurement = await variant.run(records);
      results.get(variant)?.push(measurement);
      console.error(
        `round ${round + 1}/${roundCount}: ${variant.name}: ${measurement.ms.toFixed(0)} ms (${format(rate(measurement.ms))} rows/s, ${measurement.transactions} transactions)`,
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
  const perThousand = (n: number) => ((n * 1000) / recordCount).toFixed(1);
  const perRecord = (n: number) => (n / recordCount).toFixed(2);
  const lines = [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
    `load average (1/5/15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
    `PostgreSQL ${server.version} (synchronous_commit=${server.sync}, fsync=${server.fsync}), Redis ${redisVersion}, both on 127.0.0.1`,
    `records: ${recordCount}, rounds: ${roundCount}, invocations: ${invocationCount}, FLUSH_MAX_ENTRIES: 5000, FLUSH_LOCK_MS: 1500, FLUSH_GATHER_MS: ${gatherMs}`,
    '',
    '| path | rows/s (median) | time (median) | ratio | PostgreSQL transactions per 1,000 files (pool; server) | Redis commands per record | Redis round trips per record |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const variant of variants) {
    const measured = results.get(variant) ?? [];
    const ms = median(measured.map((m) => m.ms));
    const ratio = variant.naive ? 1 : median(measured.map((m, i) => (naive[i]?.ms ?? Number.NaN) / m.ms));
    const transactions = median(measured.map((m) => m.transactions));
    const server = median(measured.map((m) => m.serverTransactions));
    lines.push(
      `| ${variant.name} | ${format(rate(ms))} | ${format(Math.round(ms))} ms | ${ratio.toFixed(1)}× | ${perThousand(transactions)}${Number.isNaN(server) ? '' : `; ${perThousand(server)}`} | ${variant.naive ? '–' : perRecord(median(measured.map((m) => m.commands)))} | ${variant.naive ? '–' : perRecord(median(measured.map((m) => m.roundTrips)))} |`,
    );
  }
  lines.push(
    '',
    'ratio: the INSERT path time / this path time, per round, median.',
    'transactions: statements sent by the pools (each one autocommit transaction); after ";" the server-wide pg_stat_database.xact_commit delta over the run, which counts other sessions too.',
    'Redis commands include MULTI/EXEC and the commands queued inside; round trips count, per client, a command sent while none of its commands was outstanding.',
  );
  console.log(lines.join('\n'));
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${naiveSchema} CASCADE`).catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${groupSchema} CASCADE`).catch(() => undefined);
  if (instances[0]) await removeKeys(instances[0].redis).catch(() => undefined);
  for (const instance of instances) {
    instance.notifier.close();
    instance.redis.disconnect();
    await instance.pool.end();
  }
  await admin.end();
}
