import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import pg from 'pg';
import { bufferKeys, type CountedRecord } from '../../lambda-image/buffer.ts';
import { type CommitResult, createCommitter } from '../../lambda-image/commit.ts';
import { type MigrationResult, migrateDatabase } from '../../lambda-image/migrate.ts';
import { createNotifier } from '../../lambda-image/notify.ts';
import { qualifiedQuarantineTable, qualifiedTable, rdsIamRole } from '../../lambda-image/schema.ts';
import type { BufferSettings } from '../../lib/config.ts';
import { createMigrationTarget, dropRole, type TestMigrationTarget } from '../support/migration.ts';
import { countedRecord, countedRecords, readRows, testBufferSettings } from '../support/records.ts';
import { createTestRedis, type TestRedis, testDatabaseUrl, uniqueName } from '../support/services.ts';

// The migration on the machine's PostgreSQL, and the application role it
// creates, used for real: the tests sign in AS that role (the server trusts
// loopback, so any role signs in without a password; on RDS it would sign in
// with an IAM token) and show it can do what the function does, the commit
// path end to end, and nothing else. Roles are cluster-wide: each run names
// its own and drops it at the end.

let target: TestMigrationTarget;
let cache: TestRedis;
let app: pg.Pool;
let migrated: MigrationResult;
let settings: BufferSettings;
const extraRoles: string[] = [];

function connectAs(role: string): pg.Pool {
  const url = new URL(testDatabaseUrl);
  url.username = role;
  url.password = '';
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  pool.on('error', () => undefined);
  return pool;
}

before(async () => {
  target = await createMigrationTarget('grants');
  cache = await createTestRedis('grants');
  migrated = await migrateDatabase(target.pool, { schema: target.schema, applicationUser: target.role });
  app = connectAs(target.role);
  // a table of someone else's in the same schema
  await target.pool.query(`CREATE TABLE ${target.schema}.other (secret text)`);
  await target.pool.query(`INSERT INTO ${target.schema}.other VALUES ('not for the function')`);
});

after(async () => {
  await app?.end();
  await cache?.cleanup();
  for (const role of extraRoles) await dropRole(target.pool, role);
  await target?.drop();
});

beforeEach(() => {
  settings = testBufferSettings(`${cache.prefix}${uniqueName('case')}:`);
});

// the function's commit path (append, group commit, settle), as the role
function commit(records: readonly CountedRecord[]): Promise<CommitResult[]> {
  const committer = createCommitter({
    redis: cache.redis,
    pool: app,
    settings,
    schema: target.schema,
    notifier: createNotifier(cache.redis, bufferKeys(settings).channel),
  });
  return committer.commit(
    records.map((record, i) => ({ record, messageId: `m-${i}` })),
    Date.now() + 10_000,
  );
}

async function roleRow(role: string) {
  const { rows } = await target.pool.query<{
    rolsuper: boolean;
    rolcreatedb: boolean;
    rolcreaterole: boolean;
    rolreplication: boolean;
    rolbypassrls: boolean;
    rolcanlogin: boolean;
    rolpassword: string | null;
    memberof: string[];
  }>(
    `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolpassword,
            ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = a.oid ORDER BY 1)::text[] AS memberof
       FROM pg_authid a WHERE rolname = $1`,
    [role],
  );
  return rows[0];
}

test('the migration creates the tables and a login role with no password, no attribute and no membership', async () => {
  assert.deepEqual(migrated.tables, ['line_counts', 'line_counts_quarantine']);
  assert.equal(migrated.role, target.role);
  const exists = await target.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [rdsIamRole]);
  // rds_iam exists only on RDS: here the answer says it was not granted
  assert.equal(migrated.rdsIam, exists.rowCount === 0 ? 'absent' : 'granted');
  assert.deepEqual(await roleRow(target.role), {
    rolsuper: false,
    rolcreatedb: false,
    rolcreaterole: false,
    rolreplication: false,
    rolbypassrls: false,
    rolcanlogin: true,
    rolpassword: null,
    memberof: exists.rowCount === 0 ? [] : [rdsIamRole],
  });
});

test('as the application role, the commit path records, keeps the newer event, and quarantines what PostgreSQL refuses', async () => {
  const newer = countedRecord({ key: 'uploads/role/kept.txt', sequencer: '0055AED6DCD90281F0', lines: 7 });
  const records = [...countedRecords(3, 'role'), newer];
  const results = await commit(records);
  assert.deepEqual(
    results.map((r) => r.status),
    ['committed', 'committed', 'committed', 'committed'],
  );
  // an older event of the same file: the upsert's WHERE keeps the newer count
  const older = await commit([{ ...newer, sequencer: '0055AED6DCD90281E0', lines: 1 }]);
  assert.equal(older[0]?.status === 'failed', false, JSON.stringify(older));
  const rows = await readRows(app, target.schema);
  assert.equal(rows.find((r) => r.file_name === newer.key)?.line_count, '7');
  assert.equal(rows.filter((r) => r.file_name.startsWith('uploads/role')).length, 4);

  // refused: a key text cannot hold, and a time PostgreSQL cannot parse; the
  // second refusal of the same event updates its quarantine row
  const refused = [
    countedRecord({ key: 'uploads/role/nul\u0000.txt' }),
    countedRecord({ key: 'uploads/role/bad-time.txt', eventTime: 'not a time' }),
  ];
  assert.deepEqual(
    (await commit(refused)).map((r) => r.status),
    ['quarantined', 'quarantined'],
  );
  settings = testBufferSettings(`${cache.prefix}${uniqueName('again')}:`);
  assert.deepEqual(
    (await commit(refused)).map((r) => r.status),
    ['quarantined', 'quarantined'],
  );
  const { rows: quarantined } = await app.query<{ attempts: number }>(
    `SELECT attempts FROM ${qualifiedQuarantineTable(target.schema)} ORDER BY identity`,
  );
  assert.deepEqual(
    quarantined.map((r) => r.attempts),
    [2, 2],
  );
});

test('the application role can do nothing else: no DDL, no other table, no TRUNCATE or DELETE, no roles', async () => {
  const s = target.schema;
  const refused = [
    `CREATE TABLE ${s}.extra (a int)`,
    `CREATE TABLE public.${uniqueName('extra')} (a int)`,
    `CREATE SCHEMA ${uniqueName('extra')}`,
    `CREATE INDEX ON ${s}.line_counts (etag)`,
    `CREATE FUNCTION ${s}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
    `CREATE VIEW ${s}.v AS SELECT 1`,
    `DROP TABLE ${s}.line_counts`,
    `DROP TABLE ${s}.line_counts_quarantine`,
    `ALTER TABLE ${s}.line_counts ADD COLUMN extra int`,
    `ALTER TABLE ${s}.line_counts_quarantine DROP COLUMN error`,
    `TRUNCATE ${s}.line_counts`,
    `TRUNCATE ${s}.line_counts_quarantine`,
    `DELETE FROM ${s}.line_counts`,
    `DELETE FROM ${s}.line_counts_quarantine`,
    `SELECT * FROM ${s}.other`,
    `INSERT INTO ${s}.other VALUES ('x')`,
    `UPDATE ${s}.other SET secret = 'x'`,
    `CREATE ROLE ${uniqueName('intruder')}`,
    `ALTER ROLE ${target.role} CREATEDB`,
    `SELECT pg_read_file('PG_VERSION')`,
  ];
  const allowed: string[] = [];
  for (const sql of refused) {
    const outcome = await app.query(sql).then(
      () => 'allowed',
      (error: { code?: string }) => error.code,
    );
    // 42501 insufficient_privilege (PostgreSQL Appendix A): also "must be owner of table"
    if (outcome !== '42501') allowed.push(`${sql} → ${outcome}`);
  }
  assert.deepEqual(allowed, []);
  // what it may do, it may still do
  await app.query(`SELECT count(*) FROM ${qualifiedTable(s)}`);
});

test('migrating again takes back what was granted by hand since, and any password set', async () => {
  const s = target.schema;
  const role = pg.escapeIdentifier(target.role);
  await target.pool.query(`GRANT DELETE, TRUNCATE ON ${s}.line_counts TO ${role}`);
  await target.pool.query(`GRANT SELECT ON ${s}.other TO ${role}`);
  await target.pool.query(`GRANT CREATE ON SCHEMA ${s} TO ${role}`);
  await target.pool.query(`GRANT pg_read_all_data TO ${role}`);
  await target.pool.query(`ALTER ROLE ${role} CREATEDB CREATEROLE PASSWORD 'set-by-hand'`);
  assert.equal((await app.query(`SELECT count(*)::int AS n FROM ${s}.other`)).rows[0].n, 1);

  await migrateDatabase(target.pool, { schema: s, applicationUser: target.role });
  const row = await roleRow(target.role);
  assert.equal(row?.rolcreatedb, false);
  assert.equal(row?.rolcreaterole, false);
  assert.equal(row?.rolpassword, null);
  assert.ok(!row?.memberof.includes('pg_read_all_data'), String(row?.memberof));
  const { rows } = await target.pool.query(
    `SELECT has_table_privilege($1, $2, 'DELETE') AS del, has_table_privilege($1, $2, 'TRUNCATE') AS trunc,
            has_table_privilege($1, $3, 'SELECT') AS other, has_schema_privilege($1, $4, 'CREATE') AS create`,
    [target.role, `${s}.line_counts`, `${s}.other`, s],
  );
  assert.deepEqual(rows[0], { del: false, trunc: false, other: false, create: false });
  await assert.rejects(app.query(`SELECT * FROM ${s}.other`), { code: '42501' });
  assert.deepEqual(
    (await commit([countedRecord({ key: 'uploads/role/after.txt' })])).map((r) => r.status),
    ['committed'],
  );
});

test('the IAM sign-in role is granted where it exists, kept on the next run, and reported absent where it does not', async () => {
  // rds_iam exists only on RDS and roles are cluster-wide: a stand-in of this run's own
  const standIn = uniqueName('rds_iam_standin');
  extraRoles.push(standIn);
  const absent = await migrateDatabase(target.pool, {
    schema: target.schema,
    applicationUser: target.role,
    iamRole: standIn,
  });
  assert.equal(absent.rdsIam, 'absent');
  await target.pool.query(`CREATE ROLE ${pg.escapeIdentifier(standIn)} NOLOGIN`);
  for (let run = 0; run < 2; run++) {
    const granted = await migrateDatabase(target.pool, {
      schema: target.schema,
      applicationUser: target.role,
      iamRole: standIn,
    });
    assert.equal(granted.rdsIam, 'granted');
    assert.ok((await roleRow(target.role))?.memberof.includes(standIn));
  }
});

test('a role of that name with SUPERUSER is refused, not trusted with the tables', async () => {
  const elevated = uniqueName('elevated');
  extraRoles.push(elevated);
  await target.pool.query(`CREATE ROLE ${pg.escapeIdentifier(elevated)} SUPERUSER LOGIN`);
  await assert.rejects(
    migrateDatabase(target.pool, { schema: target.schema, applicationUser: elevated }),
    /cannot set up the application role .* exists with rolsuper: it cannot be the functions' role/,
  );
  const { rows } = await target.pool.query(`SELECT has_table_privilege($1, $2, 'INSERT') AS insert`, [
    elevated,
    `${target.schema}.line_counts`,
  ]);
  // a superuser passes every check; what matters is that nothing was granted to it
  const granted = await target.pool.query(
    `SELECT count(*)::int AS n FROM information_schema.role_table_grants WHERE grantee = $1`,
    [elevated],
  );
  assert.equal(rows[0].insert, true);
  assert.equal(granted.rows[0].n, 0);
});

test('six migrations at once, for a new schema and a new role, all succeed', async () => {
  const fresh = await createMigrationTarget('grants_race');
  try {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        migrateDatabase(fresh.pool, { schema: fresh.schema, applicationUser: fresh.role }),
      ),
    );
    assert.deepEqual(
      outcomes.filter((o) => o.status === 'rejected'),
      [],
    );
  } finally {
    await fresh.drop();
  }
});
