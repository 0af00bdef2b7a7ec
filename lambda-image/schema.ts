import pg from 'pg';
import { describeError } from '../lib/errors.ts';
import { withClient } from '../lib/pg.ts';

// The system of record: one row per file. The migration is idempotent and runs
// once per cold start; many functions may cold-start at the same moment.
export const tableName = 'line_counts';

// Arbitrary but fixed: the first key of the two-key advisory lock names this
// project's migrations, the second the schema, so two schemas migrate in parallel.
const migrationLockSpace = 0x6164_61;

export function qualifiedTable(schema: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(tableName)}`;
}

export async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  const quotedSchema = pg.escapeIdentifier(schema);
  await withClient(pool, async (client) => {
    try {
      await client.query('BEGIN');
      // CREATE ... IF NOT EXISTS is not safe under concurrency: two sessions can
      // both see "absent" and one fails on the catalog's unique index. A
      // transaction-scoped advisory lock serialises the callers and is released
      // by COMMIT/ROLLBACK even if this process dies.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [migrationLockSpace, schema]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quotedSchema}`);
      // sequencer is kept exactly as S3 sent it; the flush compares sequencers
      // of different lengths by right-padding in SQL (see flush.ts).
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${qualifiedTable(schema)} (
          bucket      text        NOT NULL,
          file_name   text        NOT NULL,
          line_count  bigint      NOT NULL CHECK (line_count >= 0),
          size_bytes  bigint      NOT NULL CHECK (size_bytes >= 0),
          etag        text        NOT NULL,
          version_id  text,
          sequencer   text        NOT NULL,
          event_time  timestamptz NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT ${pg.escapeIdentifier(`${tableName}_bucket_file_name_key`)} UNIQUE (bucket, file_name)
        )`);
      await client.query('COMMIT');
    } catch (error) {
      // the client is destroyed after a failure, which also ends the transaction
      await client.query('ROLLBACK').catch(() => undefined);
      throw new Error(
        `cannot migrate schema ${schema}: ${describeError(error)} (check that the database user may CREATE in the database)`,
        { cause: error },
      );
    }
  });
}
