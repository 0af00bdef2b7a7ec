// Benchmark: the function's write path (dedupe + buffer in Redis, then group
// commit) against one INSERT per record, on the same PostgreSQL, in one run.
//
//   node --import tsx bench/flush.ts [--records 10000] [--writers 1]
//
// Uses REDIS_URL / DATABASE_URL when set, else 127.0.0.1:6379 and
// postgres@127.0.0.1:5432/test. Works in its own schemas and key prefix and
// removes them at the end.
//
// - naive: what a function without the buffer does: one upsert per record, each
//   its own statement in autocommit (so one transaction, one WAL flush, each).
// - group commit: bufferRecord for every record (WATCH/MULTI/EXEC to Redis),
//   then flushBuffer, which writes FLUSH_MAX_ENTRIES rows per statement.
// --writers N splits the records over N concurrent writers, each with its own
// Redis and PostgreSQL connection, as N concurrent function instances would
// (MAX_CONCURRENCY defaults to 5); the flush is one flusher either way.

import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { bufferKeys, bufferRecord, type CountedRecord } from '../lambda-image/buffer.ts';
import { flushBuffer } from '../lambda-image/flush.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { type BufferSettings, loadLocalConfig } from '../lib/config.ts';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '10000' }, writers: { type: 'string', default: '1' } },
});
const recordCount = Number(values.records);
const writerCount = Number(values.writers);
if (!Number.isInteger(recordCount) || recordCount < 1 || !Number.isInteger(writerCount) || writerCount < 1) {
  throw new Error(
    `--records ${values.records} and --writers ${values.writers} must be positive whole numbers`,
  );
}

const local = loadLocalConfig();
const databaseUrl = local.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = local.redisUrl ?? 'redis://127.0.0.1:6379';
const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
const naiveSchema = `bench_flush_naive_${tag}`;
const groupSchema = `bench_flush_group_${tag}`;
const settings: BufferSettings = {
  keyPrefix: `bench:flush:${tag}:`,
  dedupeTtlSeconds: 3600,
  // the deployed default (lib/config.ts FLUSH_MAX_ENTRIES)
  flushMaxEntries: 5_000,
  flushLockMs: 30_000,
  claimIdleMs: 60_000,
};

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

async function countRows(pool: pg.Pool, schema: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${qualifiedTable(schema)}`);
  return rows[0].n;
}

async function removeKeys(redis: Redis): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${settings.keyPrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

// writer w takes records w, w + N, w + 2N, ...
function share<T>(items: readonly T[], writer: number): T[] {
  return items.filter((_, i) => i % writerCount === writer);
}
const writers = Array.from({ length: writerCount }, (_, w) => w);

const pool = new pg.Pool({ connectionString: databaseUrl, max: writerCount });
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const writerRedis = writers.map((w) => (w === 0 ? redis : new Redis(redisUrl, { maxRetriesPerRequest: 1 })));
try {
  await Promise.all(writerRedis.map((r) => r.ping()));
  await migrate(pool, naiveSchema);
  await migrate(pool, groupSchema);
  const records = makeRecords();
  const rate = (rows: number, ms: number) => Math.round(rows / (ms / 1000));

  // naive: one statement, one commit per record
  const client = await pool.connect();
  const sql = naiveInsert(naiveSchema);
  let started = performance.now();
  try {
    for (const r of records) {
      await client.query(sql, [
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
  } finally {
    client.release();
  }
  const naiveMs = performance.now() - started;

  // group commit: buffer every record, then flush
  started = performance.now();
  for (const record of records) {
    if ((await bufferRecord(redis, settings, record)) !== 'buffered') throw new Error('unexpected duplicate');
  }
  const bufferedAt = performance.now();
  let flushed = 0;
  let statements = 0;
  for (;;) {
    const result = await flushBuffer(redis, pool, settings, groupSchema);
    if (result.skipped) throw new Error('the flush lock is held by someone else');
    flushed += result.rows;
    statements += Math.ceil(result.entries / settings.flushMaxEntries);
    if (result.entries === 0 || flushed >= recordCount) break;
  }
  const finishedAt = performance.now();
  const bufferMs = bufferedAt - started;
  const flushMs = finishedAt - bufferedAt;
  const groupMs = finishedAt - started;

  const [naiveRows, groupRows] = [await countRows(pool, naiveSchema), await countRows(pool, groupSchema)];
  if (naiveRows !== recordCount || groupRows !== recordCount) {
    throw new Error(`row counts differ: naive ${naiveRows}, group ${groupRows}, expected ${recordCount}`);
  }
  if ((await redis.xlen(bufferKeys(settings).stream)) !== 0) throw new Error('the buffer was not drained');

  const { rows: versionRows } = await pool.query(
    `SELECT current_setting('server_version') AS version, current_setting('synchronous_commit') AS sync,
            current_setting('fsync') AS fsync`,
  );
  const info = await redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const server = versionRows[0];
  const cpu = cpus();
  const lines = [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`,
    `PostgreSQL ${server.version} (synchronous_commit=${server.sync}, fsync=${server.fsync}), Redis ${redisVersion}, both on 127.0.0.1`,
    `records: ${recordCount}, writers: ${writerCount}, FLUSH_MAX_ENTRIES: ${settings.flushMaxEntries}`,
    '',
    '| path | what is timed | time | rows/s |',
    '| --- | --- | ---: | ---: |',
    `| one INSERT per record (autocommit) | ${recordCount} statements, ${recordCount} commits | ${naiveMs.toFixed(0)} ms | ${rate(recordCount, naiveMs)} |`,
    `| buffer + group commit, end to end | ${recordCount} bufferRecord + flush | ${groupMs.toFixed(0)} ms | ${rate(recordCount, groupMs)} |`,
    `| of which: bufferRecord (Redis) | ${recordCount} WATCH/MULTI/EXEC | ${bufferMs.toFixed(0)} ms | ${rate(recordCount, bufferMs)} |`,
    `| of which: flushBuffer (PostgreSQL) | ${statements} statements, ${statements} commits | ${flushMs.toFixed(0)} ms | ${rate(recordCount, flushMs)} |`,
    '',
    `end-to-end ratio (naive time / group commit time): ${(naiveMs / groupMs).toFixed(1)}×`,
    `database write ratio (naive time / flush time): ${(naiveMs / flushMs).toFixed(1)}×`,
  ];
  console.log(lines.join('\n'));
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS ${naiveSchema} CASCADE`).catch(() => undefined);
  await pool.query(`DROP SCHEMA IF EXISTS ${groupSchema} CASCADE`).catch(() => undefined);
  await removeKeys(redis).catch(() => undefined);
  for (const connection of writerRedis) connection.disconnect();
  await pool.end();
}
