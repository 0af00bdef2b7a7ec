import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CuttableProxy } from '../test/support/proxy.ts';
import { testDatabaseUrl } from '../test/support/services.ts';
import { withClient } from './pg.ts';

const target = new URL(testDatabaseUrl);

test('a connection lost while checked out fails the work instead of crashing the process', async () => {
  const proxy = await new CuttableProxy(target.hostname, Number(target.port || 5432)).start();
  const pool = new pg.Pool({
    connectionString: `postgres://${target.username || 'postgres'}@127.0.0.1:${proxy.port}${target.pathname}`,
    max: 1,
  });
  pool.on('error', () => undefined);
  try {
    await assert.rejects(
      withClient(pool, async (client) => {
        await client.query('SELECT 1');
        proxy.cutConnections();
        // the client sees the socket close before its next query: without a
        // listener this 'error' event would be uncaught
        await sleep(50);
        await client.query('SELECT 1');
      }),
    );
    proxy.restore();
    // the broken client was destroyed, so the pool hands out a working one
    const answer = await withClient(pool, (client) => client.query<{ n: number }>('SELECT 2 AS n'));
    assert.equal(answer.rows[0]?.n, 2);
    assert.equal(pool.totalCount, 1);
  } finally {
    await pool.end();
    await proxy.stop();
  }
});
