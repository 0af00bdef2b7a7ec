import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testContext } from '../../test/provision/context.ts';
import { desiredMigrationFunction, desiredMigrationRole, migrationFingerprint } from './migration.ts';
import { desiredFunctionRole } from './role.ts';

const ctx = testContext('apply', { STAGE: 'dev' });
const masterSecretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1234-AbCdEf';
const inputs = {
  roleArn: 'arn:aws:iam::123456789012:role/ada-linecount-dev-migrate',
  imageUri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/ada-linecount-dev@sha256:${'1'.repeat(64)}`,
  subnetIds: ['subnet-b', 'subnet-a'],
  securityGroupId: 'sg-function',
  database: { host: 'db.example', port: 5432, name: 'linecount', secretArn: masterSecretArn },
};

test('the migration role reads the master secret and nothing else of the stack’s', () => {
  const role = desiredMigrationRole(ctx, masterSecretArn);
  assert.equal(role.name, 'ada-linecount-dev-migrate');
  const bySid = Object.fromEntries(role.policy.Statement.map((s) => [s.Sid, s]));
  assert.deepEqual(Object.keys(bySid).sort(), [
    'CreateVpcNetworkInterfaces',
    'DescribeVpcNetworkInterfaces',
    'ManageVpcNetworkInterfaces',
    'ReadMasterSecret',
    'WriteLogs',
  ]);
  assert.deepEqual(bySid.ReadMasterSecret, {
    Sid: 'ReadMasterSecret',
    Effect: 'Allow',
    Action: 'secretsmanager:GetSecretValue',
    Resource: masterSecretArn,
  });
  assert.deepEqual(bySid.WriteLogs?.Resource, [
    'arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/ada-linecount-dev-migrate:*',
  ]);
  assert.deepEqual(role.trustPolicy.Statement[0]?.Principal, { Service: 'lambda.amazonaws.com' });
});

test('the migration role carries the permissions boundary, like every role up creates', () => {
  const role = desiredMigrationRole(ctx, masterSecretArn);
  assert.equal(role.permissionsBoundary, 'arn:aws:iam::123456789012:policy/ada-linecount-boundary');
});

test('the function role no longer names the master secret; it may sign in to the database as one user', () => {
  const role = desiredFunctionRole(ctx, {
    bucket: 'b',
    queueArn: 'arn:aws:sqs:us-east-1:123456789012:q',
    secretArns: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:ada-linecount-dev/cache-auth-AbCdEf'],
    database: { resourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXYZ', user: 'linecount_app' },
    logGroups: ['/aws/lambda/ada-linecount-dev-count'],
  });
  assert.ok(!JSON.stringify(role.policy).includes(masterSecretArn));
  assert.ok(!JSON.stringify(role.policy).includes('rds!'));
});

test('the migration function runs the same image with its own entry point, role and settings', () => {
  const fn = desiredMigrationFunction(ctx, inputs);
  assert.equal(fn.name, 'ada-linecount-dev-migrate');
  assert.deepEqual(fn.command, ['index.migrateHandler']);
  assert.equal(fn.logGroup, '/aws/lambda/ada-linecount-dev-migrate');
  assert.deepEqual(fn.subnetIds, ['subnet-a', 'subnet-b']);
  assert.deepEqual(fn.environment, {
    APP: 'ada-linecount',
    STAGE: 'dev',
    DB_HOST: 'db.example',
    DB_PORT: '5432',
    DB_NAME: 'linecount',
    DB_SECRET_ARN: masterSecretArn,
    DB_CA_FILE: '/var/task/rds-global-bundle.pem',
    DB_APP_USER: 'linecount_app',
  });
});

test('the migration runs again for a new image or configuration, not for a new memory size or role', () => {
  const fingerprint = migrationFingerprint(desiredMigrationFunction(ctx, inputs));
  const same = (changed: typeof inputs) =>
    migrationFingerprint(desiredMigrationFunction(ctx, changed)) === fingerprint;
  assert.equal(same({ ...inputs }), true);
  assert.equal(same({ ...inputs, roleArn: 'arn:aws:iam::123456789012:role/other' }), true);
  assert.equal(same({ ...inputs, subnetIds: ['subnet-c'] }), true);
  assert.equal(same({ ...inputs, imageUri: inputs.imageUri.replace(/1{64}$/, '2'.repeat(64)) }), false);
  assert.equal(same({ ...inputs, database: { ...inputs.database, host: 'db2.example' } }), false);
  assert.equal(
    same({ ...inputs, database: { ...inputs.database, secretArn: `${masterSecretArn}x` } }),
    false,
  );
  const bigger = desiredMigrationFunction(
    testContext('apply', { STAGE: 'dev', FUNCTION_MEMORY_MB: '2048' }),
    inputs,
  );
  assert.equal(migrationFingerprint(bigger), fingerprint);
  assert.equal(bigger.memorySize, 256);
});
