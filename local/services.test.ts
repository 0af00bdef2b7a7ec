import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { writeRecords } from '../lambda-image/flush.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { testDatabaseUrl, testRedisUrl } from '../test/support/services.ts';
import { DatabaseSource, type LocalServices, RedisSource, startLocalServices } from './services.ts';

const run = promisify(execFile);

async function ping(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

describe('PostgreSQL from PGlite over pglite-socket, through pg.Pool', () => {
  let services: LocalServices;
  let pool: pg.Pool;
  before(async () => {
    services = await startLocalServices({ redisServer: false });
    pool = new pg.Pool({ connectionString: services.databaseUrl, max: 4 });
  });
  after(async () => {
    await pool.end();
    await services.stop();
  });

  test('several connections run queries side by side', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => pool.query<{ n: number }>('SELECT $1::int * 2 AS n', [i])),
    );
    assert.deepEqual(
      results.map((r) => r.rows[0]?.n),
      Array.from({ length: 12 }, (_, i) => i * 2),
    );
    assert.ok(pool.totalCount > 1, `pool opened ${pool.totalCount} connections`);
  });

  test('a transaction on one connection is not interleaved with statements of another', async () => {
    await pool.query('CREATE TABLE isolation_check (n int)');
    const a = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query('INSERT INTO isolation_check VALUES (1)');
      // runs only once A's transaction ends
      const reading = pool.query<{ count: string }>('SELECT count(*) FROM isolation_check');
      await a.query('INSERT INTO isolation_check VALUES (2)');
      await a.query('COMMIT');
      assert.equal((await reading).rows[0]?.count, '2');
    } finally {
      a.release();
    }
  });

  test('the migration (advisory transaction lock) runs concurrently from several pools', async () => {
    const pools = Array.from(
      { length: 3 },
      () => new pg.Pool({ connectionString: services.databaseUrl, max: 2 }),
    );
    try {
      await Promise.all(pools.map((p) => migrate(p, 'linecount')));
      const lock = await pool.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(1, 2) AS locked');
      assert.equal(lock.rows[0]?.locked, true);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  test('unnest inserts and ON CONFLICT ... WHERE keeps the newer sequencer', async () => {
    await migrate(pool, 'linecount');
    const record = (key: string, lines: number, sequencer: string) => ({
      bucket: 'b',
      key,
      size: 1,
      eTag: `e${lines}`,
      sequencer,
      eventTime: new Date().toISOString(),
      eventName: 'ObjectCreated:Put',
      lines,
      bytes: lines,
    });
    assert.equal(await writeRecords(pool, 'linecount', [record('a', 1, '0A'), record('b', 2, '0A')]), 2);
    // newer (longer, right-padded comparison) wins; older is ignored
    assert.equal(await writeRecords(pool, 'linecount', [record('a', 5, '0A01'), record('b', 9, '09FF')]), 1);
    const rows = await pool.query<{ file_name: string; line_count: string }>(
      `SELECT file_name, line_count FROM ${qualifiedTable('linecount')} ORDER BY file_name`,
    );
    assert.deepEqual(
      rows.rows.map((r) => [r.file_name, Number(r.line_count)]),
      [
        ['a', 5],
        ['b', 2],
      ],
    );
  });
});

describe('choosing the services', () => {
  test('REDIS_URL and DATABASE_URL are used as given, and each choice is said in one line', async () => {
    const lines: string[] = [];
    const services = await startLocalServices({
      redisUrl: testRedisUrl,
      databaseUrl: testDatabaseUrl,
      log: (line) => lines.push(line),
    });
    await services.stop();
    assert.equal(services.redis, RedisSource.url);
    assert.equal(services.database, DatabaseSource.url);
    assert.equal(services.redisUrl, testRedisUrl);
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /^PostgreSQL: .*DATABASE_URL/);
    assert.match(lines[1] ?? '', /^Redis: .*REDIS_URL/);
  });

  test('a redis-server on the PATH is started on a free port and stopped with the services', async (t) => {
    const lines: string[] = [];
    const services = await startLocalServices({
      databaseUrl: testDatabaseUrl,
      log: (line) => lines.push(line),
    });
    if (services.redis !== RedisSource.server) {
      await services.stop();
      t.skip('no redis-server on this machine');
      return;
    }
    assert.equal(await ping(services.redisUrl), 'PONG');
    assert.match(lines[1] ?? '', /^Redis: redis-server .* no persistence/);
    await services.stop();
    await assert.rejects(ping(services.redisUrl));
  });

  test('without redis-server the in-process emulation is chosen', async () => {
    const lines: string[] = [];
    for (const redisServer of [false, 'no-such-redis-server-on-path'] as const) {
      const services = await startLocalServices({
        databaseUrl: testDatabaseUrl,
        redisServer,
        log: (line) => lines.push(line),
      });
      assert.equal(services.redis, RedisSource.emulation);
      assert.equal(await ping(services.redisUrl), 'PONG');
      await services.stop();
    }
    assert.match(lines[1] ?? '', /^Redis: in-process emulation/);
  });

  test('the embedded defaults also run as an unprivileged user', async (t) => {
    if (process.getuid?.() !== 0) {
      t.diagnostic('already running as a normal user: the suites above cover it');
      return;
    }
    const root = fileURLToPath(new URL('..', import.meta.url));
    const unprivileged = { uid: 65534, gid: 65534, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' } };
    // The checkout itself must be readable by nobody (a clone under a 0700
    // directory such as mktemp -d's is not): that is the machine, not the code.
    const readable = await run(
      process.execPath,
      [
        '-e',
        'require("node:fs").accessSync(process.argv[1])',
        join(root, 'node_modules', 'tsx', 'package.json'),
      ],
      { ...unprivileged, timeout: 10_000 },
    ).then(
      () => true,
      () => false,
    );
    if (!readable) {
      t.skip(`${root} is not readable by uid 65534; clone to a world-readable directory to run this test`);
      return;
    }
    // nobody: no home directory, no write access to the repository
    const script = `
      const { startLocalServices } = await import(${JSON.stringify(fileURLToPath(new URL('./services.ts', import.meta.url)))});
      const { default: pg } = await import('pg');
      const services = await startLocalServices({ redisServer: false });
      const pool = new pg.Pool({ connectionString: services.databaseUrl });
      const { rows } = await pool.query('SELECT current_user AS who, 40 + 2 AS answer');
      await pool.end();
      await services.stop();
      console.log(JSON.stringify({ uid: process.getuid(), ...rows[0], redis: services.redis }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      ...unprivileged,
      cwd: root,
      timeout: 60_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
    assert.deepEqual(result, { uid: 65534, who: 'postgres', answer: 42, redis: 'emulation' });
  });
});
