import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { desiredMigrationRole } from '../../provision/resources/migration.ts';
import { desiredFunctionRole, roleArn } from '../../provision/resources/role.ts';
import type { Scope } from '../support/iam/actions.ts';
import {
  assertNoFindings,
  deniedRequests,
  describeDenial,
  isAllowed,
  type PolicyDocument,
  type Principal,
} from '../support/iam/evaluate.ts';
import { boundaryDocument, rolePrincipal, stackScope } from '../support/iam/principals.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import { type FunctionRecording, recordFunctionCalls } from './scenarios/function.ts';
import { type MigrationRecording, recordMigrationCalls } from './scenarios/migration.ts';

// The functions' own calls, decided against their execution roles as up.ts
// writes them: the migration (scenarios/migration.ts) against the migration
// role (desiredMigrationRole), then the counting and flush functions
// (scenarios/function.ts) against theirs (desiredFunctionRole), on the
// database the migration prepared.

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const stage = `fn${process.pid % 1000}`;
const config = loadDeployConfig({ AWS_REGION: scope.region, STAGE: stage });
const names = stackNames(config.stack, scope);
const secret = (name: string) => `arn:aws:secretsmanager:${scope.region}:${scope.accountId}:secret:${name}`;
const cacheSecretArn = secret(`${names.cacheAuthSecret}-AbCdEf`);
// RDS names the master secret by a UUID, not by the instance
const masterSecretArn = secret('rds!db-3f1e2d4c-5b6a-4789-8abc-def012345678-GhIjKl');
const resourceId = 'db-ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const databaseUser = (id: string, user: string) =>
  `arn:aws:rds-db:${scope.region}:${scope.accountId}:dbuser:${id}/${user}`;

// the role as up.ts writes it, capped by the boundary it carries
function functionRole(): Principal {
  const ctx = { identity: scope, names, config };
  const role = desiredFunctionRole(ctx, {
    bucket: names.bucket,
    queueArn: `arn:aws:sqs:${scope.region}:${scope.accountId}:${names.queue}`,
    secretArns: [cacheSecretArn],
    database: { resourceId, user: names.dbAppUser },
    logGroups: [names.logGroup, names.flushLogGroup],
  });
  return rolePrincipal(
    `the role ${role.name} (as up.ts writes it)`,
    roleArn(ctx, role.name),
    role.policyName,
    role.policy as PolicyDocument,
    boundaryDocument(stackScope(scope, stage)),
  );
}

function migrationRole(): Principal {
  const ctx = { identity: scope, names, config };
  const role = desiredMigrationRole(ctx, masterSecretArn);
  return rolePrincipal(
    `the role ${role.name} (as up.ts writes it)`,
    roleArn(ctx, role.name),
    role.policyName,
    role.policy as PolicyDocument,
    boundaryDocument(stackScope(scope, stage)),
  );
}

describe('the function and migration roles', () => {
  let database: TestMigrationTarget;
  let migration: MigrationRecording;
  let recording: FunctionRecording;

  before(async () => {
    database = await createMigrationTarget(`iam_fn_${stage}`);
    migration = await recordMigrationCalls({ scope, stage, masterSecretArn, target: database });
    recording = await recordFunctionCalls({
      scope,
      stage,
      cacheSecretArn,
      database: { target: database, resourceId },
    });
  });

  after(async () => {
    await database?.drop();
  });

  test('every call of the functions and of the migration maps to IAM', () => {
    assertNoFindings([...migration.unmapped, ...recording.unmapped], 'calls that do not map to IAM');
  });

  test('the role as up.ts writes it allows every request of the functions', async () => {
    const denied = await deniedRequests(functionRole(), recording.requests);
    assertNoFindings(denied.map(describeDenial), 'requests the function role denies');
  });

  test('reading an upload by its version is s3:GetObjectVersion, and the role allows it', async () => {
    const byVersion = recording.requests.filter((r) => r.authorization.action === 's3:GetObjectVersion');
    assert.ok(byVersion.length > 0, 'the versioned upload was read by version');
    const resource = `arn:aws:s3:::${names.bucket}/${names.uploadsPrefix}versioned.csv`;
    assert.ok(byVersion.some((r) => r.authorization.resource === resource));
    assert.ok(await isAllowed(functionRole(), 's3:GetObjectVersion', resource));
  });

  test('a deleted upload answers 404 because the role may list the bucket', async () => {
    const listing = recording.requests.find((r) => r.authorization.action === 's3:ListBucket');
    assert.ok(listing, 'the deleted upload’s GetObject needed s3:ListBucket');
    assert.equal(listing.authorization.resource, `arn:aws:s3:::${names.bucket}`);
    assert.ok(await isAllowed(functionRole(), 's3:ListBucket', listing.authorization.resource));
  });

  test('the cold start reads the cache token only, and the role cannot read the database master secret', async () => {
    const reads = recording.requests
      .filter((r) => r.authorization.action === 'secretsmanager:GetSecretValue')
      .map((r) => r.authorization.resource);
    assert.deepEqual([...new Set(reads)], [cacheSecretArn]);
    assert.equal(await isAllowed(functionRole(), 'secretsmanager:GetSecretValue', masterSecretArn), false);
    const other = `arn:aws:secretsmanager:${scope.region}:${scope.accountId}:secret:someone-else-MnOpQr`;
    assert.equal(await isAllowed(functionRole(), 'secretsmanager:GetSecretValue', other), false);
  });

  test('every database connection is rds-db:connect as linecount_app on the stack’s instance, and only that is allowed', async () => {
    const connects = recording.requests.filter((r) => r.authorization.action === 'rds-db:connect');
    assert.ok(connects.length > 0, 'the functions signed in to PostgreSQL with IAM tokens');
    assert.deepEqual(
      [...new Set(connects.map((r) => r.authorization.resource))],
      [databaseUser(resourceId, names.dbAppUser)],
    );
    const role = functionRole();
    assert.equal(await isAllowed(role, 'rds-db:connect', databaseUser(resourceId, names.dbUser)), false);
    assert.equal(await isAllowed(role, 'rds-db:connect', databaseUser(resourceId, 'postgres')), false);
    assert.equal(
      await isAllowed(role, 'rds-db:connect', databaseUser('db-ANOTHERINSTANCEXXXXXXXXXXX', names.dbAppUser)),
      false,
    );
  });

  test('the migration reads the master secret, and its role allows exactly that of the stack’s secrets', async () => {
    const denied = await deniedRequests(migrationRole(), migration.requests);
    assertNoFindings(denied.map(describeDenial), 'requests the migration role denies');
    const reads = migration.requests
      .filter((r) => r.authorization.action === 'secretsmanager:GetSecretValue')
      .map((r) => r.authorization.resource);
    assert.deepEqual([...new Set(reads)], [masterSecretArn]);
    assert.equal(migration.result.tables.length, 2);
    const role = migrationRole();
    assert.equal(await isAllowed(role, 'secretsmanager:GetSecretValue', cacheSecretArn), false);
    assert.equal(await isAllowed(role, 'rds-db:connect', databaseUser(resourceId, names.dbAppUser)), false);
    assert.equal(
      await isAllowed(role, 's3:GetObject', `arn:aws:s3:::${names.bucket}/${names.uploadsPrefix}a.csv`),
      false,
    );
    assert.equal(
      await isAllowed(
        role,
        'sqs:ReceiveMessage',
        `arn:aws:sqs:${scope.region}:${scope.accountId}:${names.queue}`,
      ),
      false,
    );
  });

  test('the role reads nothing outside uploads/ and writes nowhere', async () => {
    const role = functionRole();
    const object = (key: string) => `arn:aws:s3:::${names.bucket}/${key}`;
    for (const action of ['s3:GetObject', 's3:GetObjectVersion']) {
      assert.equal(await isAllowed(role, action, object('private/notes.txt')), false, action);
      assert.equal(await isAllowed(role, action, `arn:aws:s3:::payroll-prod/uploads/a.csv`), false, action);
    }
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion']) {
      assert.equal(await isAllowed(role, action, object(`${names.uploadsPrefix}a.csv`)), false, action);
    }
  });
});
