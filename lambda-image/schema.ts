import pg from 'pg';
import { describeError } from '../lib/errors.ts';
import { withClient } from '../lib/pg.ts';

// The system of record: one row per file. The migration is idempotent and runs
// once per cold start; many functions may cold-start at the same moment.
export const tableName = 'line_counts';
// Rows PostgreSQL refused (flush.ts): kept here, durable like the counts and
// beside them, with the record and the reason, until a later commit of the
// same file supersedes them.
export const quarantineTableName = 'line_counts_quarantine';

// Arbitrary but fixed: the first key of the two-key advisory lock names this
// project's migrations, the second the schema, so two schemas migrate in parallel.
const migrationLockSpace = 0x6164_61;

export function qualifiedTable(schema: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(tableName)}`;
}

export function qualifiedQuarantineTable(schema: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(quarantineTableName)}`;
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
      // One row per refused event. identity and record are JSON, in which any
      // character (U+0000 too) is escaped, so every refused record can be kept;
      // bucket and file_name are NULL when text cannot hold them.
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${qualifiedQuarantineTable(schema)} (
          identity       text        PRIMARY KEY,
          bucket         text,
          file_name      text,
          sequencer      text        NOT NULL,
          record         text        NOT NULL,
          error_code     text,
          error          text        NOT NULL,
          message_id     text,
          attempts       integer     NOT NULL DEFAULT 1,
          first_refused  timestamptz NOT NULL DEFAULT now(),
          last_refused   timestamptz NOT NULL DEFAULT now()
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
