import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrate, tableName } from '../../lambda-image/schema.ts';
import { testDatabaseUrl, uniqueName } from '../support/services.ts';

let pool: pg.Pool;
const schemas: string[] = [];

before(() => {
  pool = new pg.Pool({ connectionString: testDatabaseUrl, max: 8 });
});

after(async () => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
});

test('the migration run by 8 concurrent callers creates the schema and table once', async () => {
  const schema = uniqueName('migrate');
  schemas.push(schema);
  const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => migrate(pool, schema)));
  assert.deepEqual(
    outcomes.filter((o) => o.status === 'rejected'),
    [],
  );
  const { rows } = await pool.query(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, tableName],
  );
  assert.deepEqual(
    rows.map((r) => r.column_name),
    [
      'bucket',
      'file_name',
      'line_count',
      'size_bytes',
      'etag',
      'version_id',
      'sequencer',
      'event_time',
      'recorded_at',
    ],
  );
});

test('the migration is idempotent and keeps existing rows', async () => {
  const schema = uniqueName('migrate');
  schemas.push(schema);
  await migrate(pool, schema);
  await pool.query(
    `INSERT INTO ${schema}.${tableName} (bucket, file_name, line_count, size_bytes, etag, sequencer, event_time)
     VALUES ('b', 'k', 1, 1, 'e', '01', now())`,
  );
  await migrate(pool, schema);
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${schema}.${tableName}`);
  assert.equal(rows[0].n, 1);
});

test('the table refuses a second row for the same bucket and file name', async () => {
  const schema = uniqueName('migrate');
  schemas.push(schema);
  await migrate(pool, schema);
  const insert = `INSERT INTO ${schema}.${tableName} (bucket, file_name, line_count, size_bytes, etag, sequencer, event_time)
                  VALUES ('b', 'k', 1, 1, 'e', '01', now())`;
  await pool.query(insert);
  await assert.rejects(pool.query(insert), { code: '23505' });
});
