import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testContext } from '../test/provision/context.ts';
import { contextsOf, principalOf, resourcesOf, stackArns } from './preflight.ts';

test('a session is simulated as its role; users as themselves; the root user and federated users not at all', () => {
  const cases: [string, string | undefined][] = [
    [
      'arn:aws:sts::123456789012:assumed-role/ada-linecount-deploy-dev/GitHubActions',
      'arn:aws:iam::123456789012:role/ada-linecount-deploy-dev',
    ],
    ['arn:aws-cn:sts::123456789012:assumed-role/deploy/s', 'arn:aws-cn:iam::123456789012:role/deploy'],
    ['arn:aws:iam::123456789012:user/ops/deployer', 'arn:aws:iam::123456789012:user/ops/deployer'],
    ['arn:aws:iam::123456789012:root', undefined],
    ['arn:aws:sts::123456789012:federated-user/alice', undefined],
    ['not an arn', undefined],
  ];
  for (const [caller, expected] of cases) assert.equal(principalOf(caller), expected, caller);
});

test('a statement is checked on the stack’s own ARNs that its patterns match, else on the pattern', () => {
  const ctx = testContext('plan', { STAGE: 'dev' });
  const arns = stackArns(ctx);
  const account = ctx.identity.accountId;
  assert.deepEqual(
    resourcesOf(
      {
        Effect: 'Allow',
        Action: 'iam:GetRole',
        Resource: `arn:aws:iam::${account}:role/ada-linecount-dev-*`,
      },
      arns,
    ),
    [
      `arn:aws:iam::${account}:role/ada-linecount-dev-function`,
      `arn:aws:iam::${account}:role/ada-linecount-dev-migrate`,
      `arn:aws:iam::${account}:role/ada-linecount-dev-scheduler`,
      `arn:aws:iam::${account}:role/ada-linecount-dev-generator`,
    ],
  );
  assert.deepEqual(
    resourcesOf(
      { Effect: 'Allow', Action: 'ec2:CreateVpc', Resource: `arn:aws:ec2:us-east-1:${account}:vpc/*` },
      arns,
    ),
    [`arn:aws:ec2:us-east-1:${account}:vpc/*`],
  );
  // "*" is the resource of actions that take none, never every ARN of the stack
  assert.deepEqual(resourcesOf({ Effect: 'Allow', Action: 'ec2:DescribeVpcs', Resource: '*' }, arns), ['*']);
});

test('the request context is what up sends: its tags, its boundary, its function, one value per request', () => {
  const ctx = testContext('plan', { STAGE: 'dev' });
  const account = ctx.identity.accountId;
  const principal = `arn:aws:iam::${account}:role/deploy`;
  const contexts = contextsOf(
    {
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: '*',
      Condition: {
        StringEquals: { 'iam:PassedToService': ['lambda.amazonaws.com', 'scheduler.amazonaws.com'] },
        ArnLike: { 'lambda:FunctionArn': 'arn:aws:lambda:us-east-1:*:function:ada-linecount-dev-*' },
      },
    },
    ctx,
    principal,
  );
  assert.deepEqual(
    contexts.map((entries) => Object.fromEntries(entries.map((e) => [e.ContextKeyName, e.ContextKeyValues]))),
    ['lambda.amazonaws.com', 'scheduler.amazonaws.com'].map((service) => ({
      'iam:PassedToService': [service],
      'lambda:FunctionArn': [`arn:aws:lambda:us-east-1:${account}:function:ada-linecount-dev-count`],
    })),
  );
  const [tagged] = contextsOf(
    {
      Effect: 'Allow',
      Action: 'iam:CreateRole',
      Resource: '*',
      Condition: {
        StringEquals: {
          'aws:RequestTag/stage': 'STAGE',
          'iam:PermissionsBoundary': 'arn:aws:iam::ACCOUNT:policy/APP-boundary',
        },
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['used-by:ada-linecount-dev'] },
      },
    },
    ctx,
    principal,
  );
  assert.deepEqual(tagged, [
    { ContextKeyName: 'aws:RequestTag/stage', ContextKeyValues: ['dev'], ContextKeyType: 'string' },
    {
      ContextKeyName: 'iam:PermissionsBoundary',
      ContextKeyValues: [`arn:aws:iam::${account}:policy/ada-linecount-boundary`],
      ContextKeyType: 'string',
    },
    {
      ContextKeyName: 'aws:TagKeys',
      ContextKeyValues: ['used-by:ada-linecount-dev'],
      ContextKeyType: 'stringList',
    },
  ]);
});
