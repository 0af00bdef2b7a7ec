import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { type IamFake, installIamFake } from '../../test/fakes/iam.ts';
import { type CollectingLog, testContext, testIdentity } from '../../test/provision/context.ts';
import {
  boundaryArn,
  boundaryDrift,
  desiredBoundary,
  ensureBoundary,
  maxPolicyVersions,
  requireBoundary,
} from './boundary.ts';

const accountId = testIdentity.accountId;
let iam: IamFake;

beforeEach(() => {
  // an account where nobody has run provision/bootstrap.ts yet
  iam = installIamFake({ accountId, boundaryApps: [] });
  resetCalls();
});
afterEach(() => iam.restore());

const defaultArn = `arn:aws:iam::${accountId}:policy/ada-linecount-boundary`;
// what someone who widened the boundary left
const allowEverything = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

test('the boundary is <APP>-boundary unless PERMISSIONS_BOUNDARY names another, by name or ARN', () => {
  assert.equal(boundaryArn(testContext()), defaultArn);
  assert.equal(
    boundaryArn(testContext('apply', { APP: 'payroll' })),
    `arn:aws:iam::${accountId}:policy/payroll-boundary`,
  );
  assert.equal(
    boundaryArn(testContext('apply', { PERMISSIONS_BOUNDARY: 'org-boundary' })),
    `arn:aws:iam::${accountId}:policy/org-boundary`,
  );
  const shared = 'arn:aws:iam::999999999999:policy/security/org-boundary';
  assert.equal(boundaryArn(testContext('apply', { PERMISSIONS_BOUNDARY: shared })), shared);
});

test('the boundary is docs/boundary-policy.json for this account and app, in every region and stage', () => {
  const document = desiredBoundary(testContext('apply', { APP: 'payroll' }));
  const resources = document.Statement.flatMap((s) => [s.Resource ?? []].flat());
  assert.ok(resources.includes(`arn:aws:sqs:*:${accountId}:payroll-*`));
  assert.ok(resources.includes('arn:aws:s3:::payroll-*/uploads/*'));
  assert.ok(
    resources.every((r) => !/APP|ACCOUNT|REGION|STAGE/.test(r)),
    resources.join(' '),
  );
});

test('boundary drift compares the document as IAM returns it', () => {
  const desired = desiredBoundary(testContext());
  const actual = {
    arn: defaultArn,
    defaultVersionId: 'v1',
    document: encodeURIComponent(JSON.stringify(desired)),
  };
  assert.deepEqual(boundaryDrift(desired, { ...actual, document: desired }), []);
  assert.deepEqual(
    boundaryDrift(desired, { ...actual, document: allowEverything }).map((c) => c.field),
    ['document'],
  );
});

test('bootstrap creates the boundary once; a second run changes nothing', async () => {
  await ensureBoundary(testContext());
  assert.deepEqual(callNames(mutatingCalls()), ['iam:CreatePolicy']);
  assert.deepEqual(iam.policyDocument(defaultArn), desiredBoundary(testContext()));
  resetCalls();
  const again = testContext();
  await ensureBoundary(again);
  assert.deepEqual(mutatingCalls(), []);
  assert.equal(again.changes[0]?.action, 'unchanged');
});

test('a boundary someone widened is put back as a new default version, the oldest going when five are kept', async () => {
  await ensureBoundary(testContext());
  const policy = iam.policies.get(defaultArn);
  assert.ok(policy);
  for (let i = 0; i < maxPolicyVersions - 1; i++) {
    for (const version of policy.versions) version.isDefault = false;
    policy.versions.push({
      versionId: `v${policy.nextVersion++}`,
      document: JSON.stringify(allowEverything),
      isDefault: true,
      createDate: new Date(Date.now() + i),
    });
  }
  resetCalls();
  await ensureBoundary(testContext());
  assert.deepEqual(callNames(mutatingCalls()), ['iam:DeletePolicyVersion', 'iam:CreatePolicyVersion']);
  assert.ok(!policy.versions.some((v) => v.versionId === 'v1'), 'the oldest version went');
  assert.deepEqual(iam.policyDocument(defaultArn), desiredBoundary(testContext()));
});

test('up needs the boundary: a plan warns and goes on, a run stops before its first change and says who makes it', async () => {
  const plan = testContext('plan');
  assert.deepEqual(await requireBoundary(plan), { arn: defaultArn });
  assert.match(
    (plan.log as CollectingLog).lines.join('\n'),
    /^warning: the permissions boundary .*ada-linecount-boundary does not exist: an administrator creates it once per account and app: AWS_REGION=us-east-1 APP=ada-linecount npx tsx provision\/bootstrap\.ts/m,
  );
  await assert.rejects(
    requireBoundary(testContext()),
    /^AwsStepError: cannot find the permissions boundary arn:aws:iam::123456789012:policy\/ada-linecount-boundary: it does not exist \(an administrator creates it/,
  );
  assert.deepEqual(mutatingCalls(), []);
});

test('up reports a boundary that differs from docs/boundary-policy.json, and changes nothing', async () => {
  await ensureBoundary(testContext());
  const policy = iam.policies.get(defaultArn);
  const version = policy?.versions[0];
  assert.ok(version);
  version.document = JSON.stringify({ Version: '2012-10-17', Statement: [] });
  resetCalls();
  const ctx = testContext();
  await requireBoundary(ctx);
  assert.deepEqual(mutatingCalls(), []);
  assert.ok(
    (ctx.log as CollectingLog).lines.some((l) => l.includes('differs from docs/boundary-policy.json')),
  );
});
