import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
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
import { type FunctionRecording, recordFunctionCalls } from './scenarios/function.ts';

// The counting and flush functions' own calls (scenarios/function.ts), decided
// against their execution role as up.ts writes it (desiredFunctionRole).

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const stage = `fn${process.pid % 1000}`;
const config = loadDeployConfig({ AWS_REGION: scope.region, STAGE: stage });
const names = stackNames(config.stack, scope);
const secret = (name: string) => `arn:aws:secretsmanager:${scope.region}:${scope.accountId}:secret:${name}`;
const secretArns = {
  cache: secret(`${names.cacheAuthSecret}-AbCdEf`),
  // RDS names the master secret by a UUID, not by the instance
  database: secret('rds!db-3f1e2d4c-5b6a-4789-8abc-def012345678-GhIjKl'),
};

// the role as up.ts writes it, capped by the boundary it carries
function functionRole(): Principal {
  const ctx = { identity: scope, names, config };
  const role = desiredFunctionRole(ctx, {
    bucket: names.bucket,
    queueArn: `arn:aws:sqs:${scope.region}:${scope.accountId}:${names.queue}`,
    secretArns: [secretArns.cache, secretArns.database],
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

describe('the function role', () => {
  let recording: FunctionRecording;

  before(async () => {
    recording = await recordFunctionCalls({ scope, stage, secretArns });
  });

  test('every call of the functions maps to IAM', () => {
    assertNoFindings(recording.unmapped, 'calls that do not map to IAM');
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

  test('the cold start reads both connection secrets, and the role allows exactly those', async () => {
    const reads = recording.requests
      .filter((r) => r.authorization.action === 'secretsmanager:GetSecretValue')
      .map((r) => r.authorization.resource)
      .sort();
    assert.deepEqual(reads, [secretArns.cache, secretArns.database].sort());
    const other = `arn:aws:secretsmanager:${scope.region}:${scope.accountId}:secret:someone-else-MnOpQr`;
    assert.equal(await isAllowed(functionRole(), 'secretsmanager:GetSecretValue', other), false);
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
