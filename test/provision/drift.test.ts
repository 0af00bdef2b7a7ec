import assert from 'node:assert/strict';
import { test } from 'node:test';
import { samePolicy } from '../../provision/policy.ts';
import {
  type DesiredEventSource,
  eventSourceDrift,
  type LiveEventSource,
} from '../../provision/resources/event-source.ts';
import {
  desiredCountFunction,
  desiredFlushFunction,
  functionCodeDrift,
  functionConfigurationDrift,
  functionDrift,
  type LiveFunction,
} from '../../provision/resources/function.ts';
import { desiredLogGroup, logGroupDrift } from '../../provision/resources/log-group.ts';
import {
  desiredRepository,
  type LiveRepository,
  repositoryDrift,
} from '../../provision/resources/repository.ts';
import {
  desiredFunctionRole,
  desiredSchedulerRole,
  type LiveRole,
  roleDrift,
} from '../../provision/resources/role.ts';
import { desiredSchedule, type LiveSchedule, scheduleDrift } from '../../provision/resources/schedule.ts';
import { testContext } from './context.ts';

const ctx = testContext();
const fields = (changes: { field: string }[]) => changes.map((c) => c.field);

test('policies equal up to key order, one-element lists and IAM URL encoding compare equal', () => {
  const desired = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: 'arn:aws:s3:::b/uploads/*' }],
  };
  const cases: [string, unknown, boolean][] = [
    ['same object', structuredClone(desired), true],
    [
      'reordered keys, bare string action',
      {
        Statement: [{ Resource: 'arn:aws:s3:::b/uploads/*', Action: 's3:GetObject', Effect: 'Allow' }],
        Version: '2012-10-17',
      },
      true,
    ],
    ['URL-encoded JSON as IAM returns it', encodeURIComponent(JSON.stringify(desired)), true],
    ['pretty-printed JSON as ECR returns it', JSON.stringify(desired, null, 2), true],
    [
      'wider resource',
      { ...desired, Statement: [{ ...desired.Statement[0], Resource: 'arn:aws:s3:::b/*' }] },
      false,
    ],
    [
      'extra action',
      { ...desired, Statement: [{ ...desired.Statement[0], Action: ['s3:GetObject', 's3:PutObject'] }] },
      false,
    ],
    ['absent', null, false],
  ];
  for (const [label, actual, same] of cases) assert.equal(samePolicy(desired, actual), same, label);
});

test('repository drift reports scanning, mutability, policies and missing tags, and nothing when in sync', () => {
  const desired = desiredRepository(ctx);
  const inSync: LiveRepository = {
    name: desired.name,
    arn: 'arn',
    uri: 'uri',
    imageTagMutability: desired.imageTagMutability,
    scanOnPush: true,
    encryptionType: 'AES256',
    lifecyclePolicy: JSON.parse(JSON.stringify(desired.lifecyclePolicy)),
    repositoryPolicy: JSON.parse(JSON.stringify(desired.repositoryPolicy)),
    tags: { ...desired.tags, owner: 'someone' },
  };
  const keepFive = {
    rules: [
      {
        ...(desired.lifecyclePolicy as { rules: object[] }).rules[0],
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 5 },
      },
    ],
  };
  const cases: [string, Partial<LiveRepository>, string[]][] = [
    ['in sync (a foreign tag is left alone)', {}, []],
    ['scan on push off', { scanOnPush: false }, ['scanOnPush']],
    ['mutable tags', { imageTagMutability: 'MUTABLE' }, ['imageTagMutability']],
    ['keeps another number of images', { lifecyclePolicy: keepFive }, ['lifecyclePolicy']],
    ['no lifecycle policy', { lifecyclePolicy: undefined }, ['lifecyclePolicy']],
    ['no repository policy', { repositoryPolicy: undefined }, ['repositoryPolicy']],
    ['stage tag missing', { tags: { app: desired.tags.app as string } }, ['tags']],
  ];
  for (const [label, patch, expected] of cases) {
    assert.deepEqual(fields(repositoryDrift(desired, { ...inSync, ...patch })), expected, label);
  }
});

test('the repository policy lets only Lambda pull, and only for this account and region', () => {
  const statement = desiredRepository(ctx).repositoryPolicy.Statement[0];
  assert.deepEqual(statement?.Principal, { Service: 'lambda.amazonaws.com' });
  assert.deepEqual(statement?.Action, ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
  assert.deepEqual(statement?.Condition, {
    StringLike: { 'aws:sourceArn': 'arn:aws:lambda:us-east-1:123456789012:function:*' },
  });
});

test('log group drift reports retention and missing tags only', () => {
  const desired = desiredLogGroup(ctx, '/aws/lambda/x');
  const live = {
    name: desired.name,
    arn: 'arn',
    retentionInDays: desired.retentionInDays,
    tags: { ...desired.tags },
  };
  assert.deepEqual(logGroupDrift(desired, live), []);
  assert.deepEqual(logGroupDrift(desired, { ...live, retentionInDays: undefined }), [
    { field: 'retentionInDays', from: undefined, to: 30 },
  ]);
  assert.deepEqual(fields(logGroupDrift(desired, { ...live, tags: { extra: 'x' } })), ['tags']);
});

const roleInputs = {
  bucket: 'bkt',
  queueArn: 'arn:aws:sqs:us-east-1:123456789012:q',
  secretArns: [
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:b',
    'arn:aws:secretsmanager:us-east-1:123456789012:secret:a',
  ],
  database: { resourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY', user: 'linecount_app' },
  logGroups: ['/aws/lambda/f', '/aws/lambda/g'],
};

test('the function role grants each permission on its own resource only', () => {
  const role = desiredFunctionRole(ctx, roleInputs);
  const bySid = Object.fromEntries(role.policy.Statement.map((s) => [s.Sid, s]));
  assert.equal(bySid.ReadUploads?.Resource, 'arn:aws:s3:::bkt/uploads/*');
  assert.equal(bySid.ConsumeQueue?.Resource, roleInputs.queueArn);
  assert.deepEqual(bySid.ReadConnectionSecrets?.Resource, [...roleInputs.secretArns].sort());
  // one database user of one instance, by its DbiResourceId
  assert.equal(
    bySid.ConnectToDatabase?.Resource,
    'arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY/linecount_app',
  );
  assert.deepEqual(bySid.WriteLogs?.Resource, [
    'arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*',
    'arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/g:*',
  ]);
  // the only "*": the VPC Describe calls have no resource-level permissions
  const wildcards = role.policy.Statement.filter((s) => s.Resource === '*');
  assert.deepEqual(
    wildcards.map((s) => s.Action),
    [['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets']],
  );
  assert.deepEqual(role.trustPolicy.Statement[0]?.Condition, {
    StringEquals: { 'aws:SourceAccount': '123456789012' },
  });
});

test('role drift compares the trust and inline documents as IAM returns them', () => {
  const desired = desiredSchedulerRole(ctx, {
    functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:f',
  });
  const live: LiveRole = {
    name: desired.name,
    arn: 'arn',
    trustPolicy: decodeURIComponent(encodeURIComponent(JSON.stringify(desired.trustPolicy))),
    policy: encodeURIComponent(JSON.stringify(desired.policy)),
    permissionsBoundary: 'arn:aws:iam::123456789012:policy/ada-linecount-boundary',
    tags: { ...desired.tags },
  };
  assert.deepEqual(roleDrift(desired, live), []);
  const { Condition: _dropped, ...unconditioned } = desired.trustPolicy.Statement[0] as unknown as Record<
    string,
    unknown
  >;
  const cases: [string, Partial<LiveRole>, string[]][] = [
    [
      'trust without the source-account guard',
      { trustPolicy: { ...desired.trustPolicy, Statement: [unconditioned] } },
      ['trustPolicy'],
    ],
    ['inline policy missing', { policy: undefined }, ['policy:invoke-flush']],
    [
      'inline policy on every function',
      { policy: { ...desired.policy, Statement: [{ ...desired.policy.Statement[0], Resource: '*' }] } },
      ['policy:invoke-flush'],
    ],
    ['untagged', { tags: {} }, ['tags']],
    ['without the permissions boundary', { permissionsBoundary: undefined }, ['permissionsBoundary']],
    [
      'with another boundary',
      { permissionsBoundary: 'arn:aws:iam::123456789012:policy/wide-open' },
      ['permissionsBoundary'],
    ],
  ];
  for (const [label, patch, expected] of cases)
    assert.deepEqual(fields(roleDrift(desired, { ...live, ...patch })), expected, label);
});

const functionInputs = {
  roleArn: 'arn:aws:iam::123456789012:role/r',
  imageUri: `123456789012.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:${'a'.repeat(64)}`,
  subnetIds: ['subnet-b', 'subnet-a'],
  securityGroupId: 'sg-1',
  environment: { STAGE: 'dev' },
};

function liveFrom(desired: ReturnType<typeof desiredCountFunction>): LiveFunction {
  return {
    name: desired.name,
    arn: 'arn',
    imageUri: desired.imageUri,
    architecture: desired.architecture,
    role: desired.role,
    timeout: desired.timeout,
    memorySize: desired.memorySize,
    environment: { ...desired.environment },
    subnetIds: ['subnet-a', 'subnet-b'],
    securityGroupIds: ['sg-1'],
    logGroup: desired.logGroup,
    logFormat: 'Text',
    command: [...desired.command],
    state: 'Active',
    lastUpdateStatus: 'Successful',
    tags: { ...desired.tags },
  };
}

test('function drift splits configuration from code and ignores subnet order', () => {
  const desired = desiredCountFunction(ctx, functionInputs);
  const live = liveFrom(desired);
  assert.deepEqual(functionDrift(desired, live), []);
  const cases: [string, Partial<LiveFunction>, string[], string[]][] = [
    ['memory', { memorySize: 128 }, ['memorySize'], []],
    [
      'timeout and environment',
      { timeout: 3, environment: { STAGE: 'dev', SECRET: 'x' } },
      ['timeout', 'environment'],
      [],
    ],
    ['left the VPC', { subnetIds: [], securityGroupIds: [] }, ['subnetIds', 'securityGroupIds'], []],
    ['logs elsewhere', { logGroup: '/aws/lambda/other' }, ['logGroup'], []],
    ['a command override on the counting function', { command: ['index.flushHandler'] }, ['command'], []],
    ['another image', { imageUri: functionInputs.imageUri.replace('aaaa', 'bbbb') }, [], ['imageUri']],
    ['another architecture', { architecture: 'x86_64' }, [], ['architecture']],
  ];
  for (const [label, patch, configuration, code] of cases) {
    const actual = { ...live, ...patch };
    assert.deepEqual(fields(functionConfigurationDrift(desired, actual)), configuration, label);
    assert.deepEqual(fields(functionCodeDrift(desired, actual)), code, label);
  }
});

test('the flush function is the same image with the flush entry point', () => {
  const count = desiredCountFunction(ctx, functionInputs);
  const flush = desiredFlushFunction(ctx, functionInputs);
  assert.equal(flush.imageUri, count.imageUri);
  assert.deepEqual(count.command, []);
  assert.deepEqual(flush.command, ['index.flushHandler']);
  assert.notEqual(flush.name, count.name);
  assert.equal(flush.logGroup, `/aws/lambda/${flush.name}`);
});

test('event source drift covers batching, partial failures, concurrency and the enabled state', () => {
  const desired: DesiredEventSource = {
    functionName: 'f',
    queueArn: 'q',
    batchSize: 10,
    maximumBatchingWindowInSeconds: 5,
    functionResponseTypes: ['ReportBatchItemFailures'],
    maximumConcurrency: 5,
    enabled: true,
    tags: { app: 'a' },
  };
  const live: LiveEventSource = {
    uuid: 'u',
    arn: 'arn',
    batchSize: 10,
    maximumBatchingWindowInSeconds: 5,
    functionResponseTypes: ['ReportBatchItemFailures'],
    maximumConcurrency: 5,
    enabled: true,
    state: 'Enabled',
    tags: { app: 'a' },
  };
  const cases: [string, Partial<LiveEventSource>, string[]][] = [
    ['in sync', {}, []],
    ['batch size', { batchSize: 100 }, ['batchSize']],
    ['partial batch responses off', { functionResponseTypes: [] }, ['functionResponseTypes']],
    ['no concurrency cap', { maximumConcurrency: undefined }, ['maximumConcurrency']],
    ['disabled', { enabled: false, state: 'Disabled' }, ['enabled']],
    ['untagged', { tags: {} }, ['tags']],
  ];
  for (const [label, patch, expected] of cases)
    assert.deepEqual(fields(eventSourceDrift(desired, { ...live, ...patch })), expected, label);
});

test('schedule drift covers the rate, the window, the target, the role and the retry policy', () => {
  const desired = desiredSchedule(ctx, { functionArn: 'fn', roleArn: 'role' });
  const { name, ...rest } = desired;
  const live: LiveSchedule = { ...rest, name, arn: 'arn' };
  const cases: [string, Partial<LiveSchedule>, string[]][] = [
    ['in sync', {}, []],
    ['every five minutes', { scheduleExpression: 'rate(5 minutes)' }, ['scheduleExpression']],
    ['flexible window', { flexibleTimeWindow: 'FLEXIBLE' }, ['flexibleTimeWindow']],
    ['another target and role', { targetArn: 'x', roleArn: 'y' }, ['targetArn', 'roleArn']],
    ['disabled', { state: 'DISABLED' }, ['state']],
    ['retries', { maximumRetryAttempts: 185 }, ['maximumRetryAttempts']],
  ];
  for (const [label, patch, expected] of cases)
    assert.deepEqual(fields(scheduleDrift(desired, { ...live, ...patch })), expected, label);
});
