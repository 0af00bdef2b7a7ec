import pg from 'pg';
import { lockRoles } from '../../lambda-image/schema.ts';
import { withClient } from '../../lib/pg.ts';
import { testDatabaseUrl, uniqueName } from './services.ts';

// A place for the migration to run in tests: a schema of the test PostgreSQL
// and an application role of the test's own. Roles are cluster-wide, unlike
// schemas, so each test run names its own and drops it afterwards.

// Where the migration runs instead of the deployed database: a test schema of
// the test PostgreSQL, and a role name of the test's own.
export interface MigrationTarget {
  url: string;
  schema: string;
  role: string;
}

export interface TestMigrationTarget extends MigrationTarget {
  // a superuser connection, as the tests' own
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createMigrationTarget(
  label: string,
  url = testDatabaseUrl,
): Promise<TestMigrationTarget> {
  const schema = uniqueName(label);
  const role = uniqueName(`${label}_app`);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  await pool.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  return {
    url,
    schema,
    role,
    pool,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await dropRole(pool, role);
      await pool.end();
    },
  };
}

// What the role still holds in this database (grants on the database itself)
// goes first: PostgreSQL refuses to drop a role something depends on.
export async function dropRole(pool: pg.Pool, role: string): Promise<void> {
  const { rowCount } = await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (rowCount === 0) return;
  await withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      await lockRoles(client);
      await client.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
      await client.query(`DROP ROLE ${pg.escapeIdentifier(role)}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}
