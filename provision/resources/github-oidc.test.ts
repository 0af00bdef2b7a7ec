import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { type IamFake, installIamFake } from '../../test/fakes/iam.ts';
import { testContext, testIdentity } from '../../test/provision/context.ts';
import {
  deleteGithubProvider,
  ensureGithubProvider,
  githubProviderArn,
  type LiveProvider,
  providerDrift,
  usersOf,
} from './github-oidc.ts';
import { ensureGeneratorRole } from './role.ts';

const accountId = testIdentity.accountId;
const providerArn = `arn:aws:iam::${accountId}:oidc-provider/token.actions.githubusercontent.com`;
let iam: IamFake;

beforeEach(() => {
  iam = installIamFake({ accountId });
  resetCalls();
});
afterEach(() => iam.restore());

const stage = (name: string) => testContext('apply', { STAGE: name, GITHUB_REPOSITORY: 'ada/linecount' });
const tagsOf = () => Object.fromEntries(iam.providers.get(providerArn)?.tags ?? []);

// a provider someone made by hand, as the IAM User Guide shows
function foreignProvider(clientIds = ['sts.amazonaws.com']) {
  iam.providers.set(providerArn, {
    arn: providerArn,
    url: 'https://token.actions.githubusercontent.com',
    clientIds,
    thumbprints: [],
    tags: new Map(),
    createDate: new Date(),
  });
}

test('provider drift: the audience configure-aws-credentials asks for, and this stack’s use of ours', () => {
  const ctx = stage('dev');
  const ours: LiveProvider = {
    arn: providerArn,
    clientIds: ['sts.amazonaws.com'],
    tags: { 'managed-by': 'ada-linecount', 'used-by:ada-linecount-dev': 'ada-linecount-dev-generator' },
  };
  const cases: [string, Partial<LiveProvider>, string[]][] = [
    ['in sync', {}, []],
    ['without the sts.amazonaws.com audience', { clientIds: ['other'] }, ['ClientIDList']],
    ['ours, not yet used by this stack', { tags: { 'managed-by': 'ada-linecount' } }, ['tags']],
    ['someone else’s, never tagged', { tags: {} }, []],
  ];
  for (const [label, patch, fields] of cases) {
    assert.deepEqual(
      providerDrift(ctx, { ...ours, ...patch }).map((c) => c.field),
      fields,
      label,
    );
  }
  assert.deepEqual(usersOf(ours), ['ada-linecount-dev']);
});

test('up creates the provider, without a thumbprint, marked as ours and used by the stack; a second up changes nothing', async () => {
  const ctx = stage('dev');
  assert.deepEqual(await ensureGithubProvider(ctx), { arn: githubProviderArn(ctx) });
  assert.deepEqual(callNames(mutatingCalls()), ['iam:CreateOpenIDConnectProvider']);
  const provider = iam.providers.get(providerArn);
  assert.deepEqual(provider?.clientIds, ['sts.amazonaws.com']);
  assert.deepEqual(provider?.thumbprints, []);
  assert.deepEqual(tagsOf(), {
    'managed-by': 'ada-linecount',
    'used-by:ada-linecount-dev': 'ada-linecount-dev-generator',
  });
  resetCalls();
  await ensureGithubProvider(stage('dev'));
  assert.deepEqual(mutatingCalls(), []);
});

test('a second stack adds its use; the provider goes with the last stack that used it', async () => {
  await ensureGithubProvider(stage('dev'));
  resetCalls();
  await ensureGithubProvider(stage('prod'));
  assert.deepEqual(callNames(mutatingCalls()), ['iam:TagOpenIDConnectProvider']);
  assert.deepEqual(Object.keys(tagsOf()).sort(), [
    'managed-by',
    'used-by:ada-linecount-dev',
    'used-by:ada-linecount-prod',
  ]);
  resetCalls();
  await deleteGithubProvider(stage('dev'));
  assert.deepEqual(callNames(mutatingCalls()), ['iam:UntagOpenIDConnectProvider']);
  assert.ok(iam.providers.has(providerArn), 'prod still uses it');
  resetCalls();
  await deleteGithubProvider(stage('prod'));
  assert.deepEqual(callNames(mutatingCalls()), ['iam:DeleteOpenIDConnectProvider']);
  assert.equal(iam.providers.has(providerArn), false);
  resetCalls();
  await deleteGithubProvider(stage('prod'));
  assert.deepEqual(mutatingCalls(), []);
});

test('a provider up.ts did not create is used as it is: never tagged, changed or deleted', async () => {
  foreignProvider();
  const ctx = stage('dev');
  await ensureGithubProvider(ctx);
  await deleteGithubProvider(stage('dev'));
  assert.deepEqual(mutatingCalls(), []);
  assert.deepEqual(tagsOf(), {});
  assert.ok(iam.providers.has(providerArn));
});

test('a provider without the sts.amazonaws.com audience stops up with the command that fixes it', async () => {
  foreignProvider(['some-other-client']);
  await assert.rejects(
    ensureGithubProvider(stage('dev')),
    /cannot use iam oidc provider .*: it does not accept the audience sts\.amazonaws\.com \(an administrator adds it: aws iam add-client-id-to-open-id-connect-provider/,
  );
  assert.deepEqual(mutatingCalls(), []);
});

test('the generator role trusts only the repository’s main branch, carries the boundary and may only upload', async () => {
  const ctx = stage('dev');
  const provider = await ensureGithubProvider(ctx);
  await ensureGeneratorRole(ctx, { providerArn: provider.arn, repository: 'ada/linecount' });
  const role = iam.roles.get('ada-linecount-dev-generator');
  assert.ok(role);
  assert.equal(role.permissionsBoundary, `arn:aws:iam::${accountId}:policy/ada-linecount-boundary`);
  assert.deepEqual(JSON.parse(role.trustPolicy).Statement, [
    {
      Effect: 'Allow',
      Principal: { Federated: providerArn },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: {
        StringEquals: {
          'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
          'token.actions.githubusercontent.com:sub': 'repo:ada/linecount:ref:refs/heads/main',
        },
      },
    },
  ]);
  assert.deepEqual(JSON.parse(role.inlinePolicies.get('upload-only') ?? '{}').Statement, [
    {
      Sid: 'UploadGeneratedFiles',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:AbortMultipartUpload'],
      Resource: `arn:aws:s3:::ada-linecount-dev-${accountId}-us-east-1/uploads/*`,
    },
  ]);
});
