import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type pg from 'pg';
import type { MigrationConfig } from '../lib/config.ts';
import { createPool } from './connections.ts';
import {
  type ApplicationRole,
  ensureApplicationRole,
  migrate,
  quarantineTableName,
  tableName,
} from './schema.ts';

// The one-shot migration: the same image as the counting and flush functions,
// run as a third function (index.migrateHandler) that provision/up.ts invokes
// once the functions exist. It alone may read the RDS master user secret. It
// creates the tables and the application role the other two sign in as, with
// exactly the rights they use, so neither ever holds DDL rights or the master
// password. It runs again whenever its image or configuration changes.

export interface MigrationResult extends ApplicationRole {
  tables: string[];
}

export async function migrateDatabase(
  pool: pg.Pool,
  target: { schema: string; applicationUser: string; iamRole?: string },
): Promise<MigrationResult> {
  await migrate(pool, target.schema);
  const role = await ensureApplicationRole(pool, target.schema, target.applicationUser, target.iamRole);
  return { ...role, tables: [tableName, quarantineTableName] };
}

interface MigrationDeps {
  // needed when the database is given by host and master secret
  secrets?: SecretsManagerClient | undefined;
  onError?: ((what: string, error: unknown) => void) | undefined;
}

// One invocation, one connection pool, closed before the answer: the
// migration runs once per deployment, so nothing is kept warm for it.
export async function runMigration(
  config: MigrationConfig,
  deps: MigrationDeps = {},
): Promise<MigrationResult> {
  const pool = await createPool({ ...config.database, poolMax: 1 }, deps);
  try {
    return await migrateDatabase(pool, {
      schema: config.database.schema,
      applicationUser: config.applicationUser,
    });
  } finally {
    await pool.end();
  }
}
