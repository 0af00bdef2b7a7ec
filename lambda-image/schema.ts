import pg from 'pg';
import { describeError } from '../lib/errors.ts';
import { withClient } from '../lib/pg.ts';

// The system of record: one row per file. The migration is idempotent; the
// migration function runs it (lambda-image/migrate.ts), as the master user,
// when up.ts deploys, and tests and the local stack run it directly. Any
// number may run at once.
export const tableName = 'line_counts';
// Rows PostgreSQL refused (flush.ts): kept here, durable like the counts and
// beside them, with the record and the reason, until a later commit of the
// same file supersedes them.
export const quarantineTableName = 'line_counts_quarantine';

// Arbitrary but fixed: the first key of the two-key advisory lock names this
// project's migrations, the second the schema, so two schemas migrate in parallel.
const migrationLockSpace = 0x6164_61;

// Serialises, until the transaction ends, every change this database's callers
// make to roles and their grants (ensureApplicationRole, and whatever drops a
// role: DROP OWNED BY rewrites the same pg_database row).
export async function lockRoles(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [migrationLockSpace, 'roles']);
}

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

// What the counting and flush functions do, and so all their role may do: read
// and upsert both tables (INSERT … ON CONFLICT DO UPDATE needs INSERT and
// UPDATE, and SELECT on the columns its WHERE and SET read: PostgreSQL, INSERT,
// "Privileges"). No DELETE, TRUNCATE, REFERENCES or TRIGGER; the tables have no
// sequences. The role owns nothing, so it can ALTER or DROP nothing, and it
// holds no CREATE on the schema or the database.
const applicationGrants = {
  schema: ['USAGE'],
  tables: {
    [tableName]: ['SELECT', 'INSERT', 'UPDATE'],
    [quarantineTableName]: ['SELECT', 'INSERT', 'UPDATE'],
  },
} as const;

// RDS for PostgreSQL's role whose members sign in with an IAM authentication
// token instead of a password (RDS User Guide, "Creating a database account
// using IAM authentication", PostgreSQL). It exists only on RDS.
export const rdsIamRole = 'rds_iam';

export interface ApplicationRole {
  role: string;
  schema: string;
  // granted on RDS; absent elsewhere (a local PostgreSQL), where the role
  // signs in however pg_hba.conf says
  rdsIam: 'granted' | 'absent';
}

interface RoleAttributes {
  rolsuper: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  rolcanlogin: boolean;
}

// Creates the application role if it is missing and makes its rights exactly
// applicationGrants, idempotently: a right granted by hand since (in this
// schema, on the database, or by membership of another role) is revoked. The
// role has no password at all; on RDS it is a member of rds_iam, so it can only
// sign in with a token (RDS User Guide, IAM database authentication). Run after
// migrate(), by a user that may create roles (the RDS master user has
// CREATEROLE) and owns the tables.
export async function ensureApplicationRole(
  pool: pg.Pool,
  schema: string,
  role: string,
  // tests name a stand-in: rds_iam is cluster-wide, and exists only on RDS
  iamRole: string = rdsIamRole,
): Promise<ApplicationRole> {
  const quotedRole = pg.escapeIdentifier(role);
  const quotedSchema = pg.escapeIdentifier(schema);
  return withClient(pool, async (client) => {
    try {
      await client.query('BEGIN');
      // Roles are cluster-wide, and GRANT/REVOKE rewrite shared catalog rows:
      // every role's REVOKE ... ON DATABASE rewrites the one pg_database row.
      // Concurrent runs, even for different roles and schemas, would fail on a
      // unique index or with "tuple concurrently updated", so they take turns:
      // per schema (as migrate does), then for the database's roles.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [migrationLockSpace, schema]);
      await lockRoles(client);
      const existing = await client.query<RoleAttributes>(
        `SELECT rolsuper, rolreplication, rolbypassrls, rolcreatedb, rolcreaterole, rolcanlogin
           FROM pg_roles WHERE rolname = $1`,
        [role],
      );
      const attributes = existing.rows[0];
      if (attributes === undefined) {
        // CREATE ROLE's defaults: NOSUPERUSER NOCREATEDB NOCREATEROLE
        // NOREPLICATION NOBYPASSRLS, no password
        await client.query(`CREATE ROLE ${quotedRole} LOGIN`);
      } else {
        // Only a superuser may change SUPERUSER, REPLICATION or BYPASSRLS
        // (PostgreSQL, ALTER ROLE), which the RDS master user is not: such a
        // role is refused rather than trusted with the tables.
        const elevated = (['rolsuper', 'rolreplication', 'rolbypassrls'] as const).filter(
          (attribute) => attributes[attribute],
        );
        if (elevated.length > 0) {
          throw new Error(
            `role ${role} exists with ${elevated.join(', ')}: it cannot be the functions' role; drop it (DROP ROLE ${quotedRole}) and deploy again`,
          );
        }
        // no password: one set by hand is removed (PASSWORD NULL)
        await client.query(`ALTER ROLE ${quotedRole} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD NULL`);
      }
      const memberships = await client.query<{ rolname: string }>(
        `SELECT granted.rolname FROM pg_auth_members m
           JOIN pg_roles granted ON granted.oid = m.roleid
           JOIN pg_roles member ON member.oid = m.member
          WHERE member.rolname = $1 AND granted.rolname <> $2`,
        [role, iamRole],
      );
      for (const { rolname } of memberships.rows) {
        await client.query(`REVOKE ${pg.escapeIdentifier(rolname)} FROM ${quotedRole}`);
      }
      await client.query(
        `REVOKE ALL ON DATABASE ${pg.escapeIdentifier(await currentDatabase(client))} FROM ${quotedRole}`,
      );
      await client.query(`REVOKE ALL ON SCHEMA ${quotedSchema} FROM ${quotedRole}`);
      await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${quotedSchema} FROM ${quotedRole}`);
      await client.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${quotedSchema} FROM ${quotedRole}`);
      await client.query(
        `GRANT ${applicationGrants.schema.join(', ')} ON SCHEMA ${quotedSchema} TO ${quotedRole}`,
      );
      for (const [table, privileges] of Object.entries(applicationGrants.tables)) {
        await client.query(
          `GRANT ${privileges.join(', ')} ON ${quotedSchema}.${pg.escapeIdentifier(table)} TO ${quotedRole}`,
        );
      }
      // Granted only where it exists: elsewhere the role signs in as the
      // server's pg_hba.conf says (locally: trust), and the answer says so.
      const iam = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [iamRole]);
      const rdsIam = iam.rowCount === 0 ? 'absent' : 'granted';
      if (rdsIam === 'granted') await client.query(`GRANT ${pg.escapeIdentifier(iamRole)} TO ${quotedRole}`);
      await client.query('COMMIT');
      return { role, schema, rdsIam };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw new Error(
        `cannot set up the application role ${role} in schema ${schema}: ${describeError(error)} (check that the database user may CREATEROLE and owns the tables)`,
        { cause: error },
      );
    }
  });
}

async function currentDatabase(client: pg.PoolClient): Promise<string> {
  const { rows } = await client.query<{ name: string }>('SELECT current_database() AS name');
  return rows[0]?.name ?? '';
}
