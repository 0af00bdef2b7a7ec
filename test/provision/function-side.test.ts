import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { Action } from '../../lib/reconcile.ts';
import { ensureEventSource } from '../../provision/resources/event-source.ts';
import {
  deleteFunction,
  desiredCountFunction,
  desiredFlushFunction,
  ensureFunction,
  type FunctionInputs,
} from '../../provision/resources/function.ts';
import { deleteLogGroup, ensureLogGroup } from '../../provision/resources/log-group.ts';
import { deleteRepository, ensureRepository } from '../../provision/resources/repository.ts';
import { deleteRole, ensureFunctionRole, ensureSchedulerRole } from '../../provision/resources/role.ts';
import { ensureSchedule } from '../../provision/resources/schedule.ts';
import { callNames, mutatingCalls, resetCalls } from '../fakes/calls.ts';
import { type EcrFake, installEcrFake } from '../fakes/ecr.ts';
import { type IamFake, installIamFake } from '../fakes/iam.ts';
import { installLambdaFake, type LambdaFake } from '../fakes/lambda.ts';
import { installLogsFake, type LogsFake } from '../fakes/logs.ts';
import { installSchedulerFake, type SchedulerFake } from '../fakes/scheduler.ts';
import { testContext, testIdentity } from './context.ts';

// both functions, as up makes them
async function ensureFunctions(ctx: ReturnType<typeof testContext>, inputs: FunctionInputs): Promise<void> {
  await ensureFunction(ctx, desiredCountFunction(ctx, inputs));
  await ensureFunction(ctx, desiredFlushFunction(ctx, inputs));
}

const accountId = testIdentity.accountId;
let iam: IamFake;
let ecr: EcrFake;
let lambda: LambdaFake;
let logs: LogsFake;
let scheduler: SchedulerFake;

const roleExists = (roleArn: string) => [...iam.roles.values()].some((r) => r.arn === roleArn);

function install(lambdaOptions: { roleNotReadyTimes?: number; imageExists?: (uri: string) => boolean } = {}) {
  iam = installIamFake({ accountId });
  ecr = installEcrFake({ accountId });
  lambda = installLambdaFake({ accountId, roleExists, ...lambdaOptions });
  logs = installLogsFake({ accountId });
  scheduler = installSchedulerFake({ accountId, roleExists });
  resetCalls();
}

function uninstall() {
  for (const fake of [iam, ecr, lambda, logs, scheduler]) fake.restore();
}

beforeEach(() => install());
afterEach(() => uninstall());

const digest = `sha256:${'1'.repeat(64)}`;
const inputsFor = (roleArn: string, imageUri: string) => ({
  roleArn,
  imageUri,
  subnetIds: ['subnet-1', 'subnet-2'],
  securityGroupId: 'sg-function',
  environment: { APP: 'ada-linecount', STAGE: 'dev' },
});
const roleInputs = {
  bucket: 'bucket',
  queueArn: `arn:aws:sqs:us-east-1:${accountId}:ada-linecount-dev-uploads`,
  secretArns: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:a-1'],
  database: { resourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY', user: 'linecount_app' },
  logGroups: ['/aws/lambda/ada-linecount-dev-count'],
};

test('the repository is created with its policies once, and a second ensure changes nothing', async () => {
  const ctx = testContext();
  const first = await ensureRepository(ctx);
  assert.equal(first.uri, `${accountId}.dkr.ecr.us-east-1.amazonaws.com/ada-linecount-dev`);
  assert.deepEqual(callNames(mutatingCalls()), [
    'ecr:CreateRepository',
    'ecr:PutLifecyclePolicy',
    'ecr:SetRepositoryPolicy',
  ]);
  const repository = ecr.repositories.get('ada-linecount-dev');
  assert.equal(repository?.imageTagMutability, 'IMMUTABLE');
  assert.equal(repository?.scanOnPush, true);
  assert.equal(repository?.tags.get('managed-by'), 'ada-linecount');
  resetCalls();
  await ensureRepository(testContext());
  assert.deepEqual(mutatingCalls(), []);
});

test('deleting the repository removes its images too, and a second delete calls nothing', async () => {
  const ctx = testContext();
  await ensureRepository(ctx);
  ecr.pushImage('ada-linecount-dev', digest, 'v1');
  resetCalls();
  await deleteRepository(ctx);
  assert.deepEqual(callNames(mutatingCalls()), ['ecr:DeleteRepository']);
  assert.equal(ecr.repositories.size, 0);
  resetCalls();
  await deleteRepository(ctx);
  assert.deepEqual(mutatingCalls(), []);
});

test('a log group gets its retention, and a changed retention is the only update', async () => {
  await ensureLogGroup(testContext(), '/aws/lambda/ada-linecount-dev-count');
  assert.equal(logs.groups.get('/aws/lambda/ada-linecount-dev-count')?.retentionInDays, 30);
  resetCalls();
  const ctx = testContext('apply', { LOG_RETENTION_DAYS: '7' });
  await ensureLogGroup(ctx, '/aws/lambda/ada-linecount-dev-count');
  assert.deepEqual(callNames(mutatingCalls()), ['logs:PutRetentionPolicy']);
  assert.equal(ctx.changes[0]?.action, Action.update);
  resetCalls();
  await deleteLogGroup(ctx, '/aws/lambda/ada-linecount-dev-count');
  await deleteLogGroup(ctx, '/aws/lambda/ada-linecount-dev-count');
  assert.deepEqual(callNames(mutatingCalls()), ['logs:DeleteLogGroup']);
});

test('an inline policy edited out of band is put back, and nothing else is touched', async () => {
  await ensureFunctionRole(testContext(), roleInputs);
  const role = iam.roles.get('ada-linecount-dev-function');
  assert.ok(role);
  role.inlinePolicies.set(
    'least-privilege',
    JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
  );
  resetCalls();
  await ensureFunctionRole(testContext(), roleInputs);
  assert.deepEqual(callNames(mutatingCalls()), ['iam:PutRolePolicy']);
  resetCalls();
  await ensureFunctionRole(testContext(), roleInputs);
  assert.deepEqual(mutatingCalls(), []);
});

test('a role is deleted after its inline policy, and a second delete calls nothing', async () => {
  const ctx = testContext();
  await ensureSchedulerRole(ctx, { functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:f' });
  resetCalls();
  await deleteRole(ctx, 'ada-linecount-dev-scheduler');
  assert.deepEqual(callNames(mutatingCalls()), ['iam:DeleteRolePolicy', 'iam:DeleteRole']);
  resetCalls();
  await deleteRole(ctx, 'ada-linecount-dev-scheduler');
  assert.deepEqual(mutatingCalls(), []);
});

test('CreateFunction is retried while IAM says the new role cannot be assumed yet', async () => {
  uninstall();
  install({ roleNotReadyTimes: 1 });
  const ctx = testContext();
  const role = await ensureFunctionRole(ctx, roleInputs);
  const repository = await ensureRepository(ctx);
  resetCalls();
  await ensureFunction(ctx, desiredCountFunction(ctx, inputsFor(role.arn, `${repository.uri}@${digest}`)));
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:CreateFunction', 'lambda:CreateFunction']);
  assert.equal(lambda.functions.get('ada-linecount-dev-count')?.configuration.MemorySize, 512);
  assert.ok((ctx.log as unknown as { lines: string[] }).lines.some((l) => l.includes('assumable by Lambda')));
});

test('a function that Lambda refuses for another reason fails at once with what to check', async () => {
  uninstall();
  install({ imageExists: (uri) => ecr.repositories.has(uri.split('/').pop()?.split('@')[0] ?? '') });
  const ctx = testContext();
  const role = await ensureFunctionRole(ctx, roleInputs);
  resetCalls();
  const started = Date.now();
  await assert.rejects(
    ensureFunction(ctx, desiredCountFunction(ctx, inputsFor(role.arn, `nowhere/missing@${digest}`))),
    /cannot create lambda function ada-linecount-dev-count: InvalidParameterValueException: Source image .* does not exist.*check/,
  );
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:CreateFunction']);
  assert.ok(Date.now() - started < 1_000, 'not retried');
});

test('changing the memory updates the configuration only; a new image updates the code only', async () => {
  const ctx = testContext();
  const role = await ensureFunctionRole(ctx, roleInputs);
  const image = `${accountId}.dkr.ecr.us-east-1.amazonaws.com/ada-linecount-dev@${digest}`;
  await ensureFunctions(ctx, inputsFor(role.arn, image));
  assert.deepEqual(
    lambda.functions.get('ada-linecount-dev-flush')?.configuration.ImageConfigResponse?.ImageConfig?.Command,
    ['index.flushHandler'],
  );
  resetCalls();
  await ensureFunctions(testContext(), inputsFor(role.arn, image));
  assert.deepEqual(mutatingCalls(), []);

  resetCalls();
  await ensureFunctions(testContext('apply', { FUNCTION_MEMORY_MB: '1024' }), inputsFor(role.arn, image));
  assert.deepEqual(callNames(mutatingCalls()), [
    'lambda:UpdateFunctionConfiguration',
    'lambda:UpdateFunctionConfiguration',
  ]);
  assert.equal(lambda.functions.get('ada-linecount-dev-count')?.configuration.MemorySize, 1024);

  resetCalls();
  const newImage = image.replace('1111', '2222');
  await ensureFunctions(testContext('apply', { FUNCTION_MEMORY_MB: '1024' }), inputsFor(role.arn, newImage));
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:UpdateFunctionCode', 'lambda:UpdateFunctionCode']);
  assert.equal(lambda.functions.get('ada-linecount-dev-count')?.imageUri, newImage);

  resetCalls();
  await deleteFunction(ctx, 'ada-linecount-dev-flush');
  await deleteFunction(ctx, 'ada-linecount-dev-flush');
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:DeleteFunction']);
});

test('the SQS mapping reports batch failures, and a changed batch size is updated in place', async () => {
  const ctx = testContext();
  const role = await ensureFunctionRole(ctx, roleInputs);
  await ensureFunctions(ctx, inputsFor(role.arn, `r@${digest}`));
  resetCalls();
  const inputs = { functionName: 'ada-linecount-dev-count', queueArn: roleInputs.queueArn };
  await ensureEventSource(ctx, inputs);
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:CreateEventSourceMapping']);
  const [mapping] = lambda.mappings.values();
  assert.deepEqual(mapping?.FunctionResponseTypes, ['ReportBatchItemFailures']);
  assert.equal(mapping?.ScalingConfig?.MaximumConcurrency, 5);
  resetCalls();
  await ensureEventSource(testContext(), inputs);
  assert.deepEqual(mutatingCalls(), []);
  await ensureEventSource(testContext('apply', { BATCH_SIZE: '50' }), inputs);
  assert.deepEqual(callNames(mutatingCalls()), ['lambda:UpdateEventSourceMapping']);
  assert.equal(lambda.mappings.get(mapping?.UUID ?? '')?.BatchSize, 50);
});

test('the schedule calls the flush function every minute with its own role', async () => {
  const ctx = testContext();
  const functionArn = `arn:aws:lambda:us-east-1:${accountId}:function:ada-linecount-dev-flush`;
  const role = await ensureSchedulerRole(ctx, { functionArn });
  resetCalls();
  await ensureSchedule(ctx, { functionArn, roleArn: role.arn });
  assert.deepEqual(callNames(mutatingCalls()), ['scheduler:CreateSchedule']);
  const schedule = scheduler.schedules.get('default/ada-linecount-dev-flush');
  assert.equal(schedule?.ScheduleExpression, 'rate(1 minute)');
  assert.equal(schedule?.FlexibleTimeWindow?.Mode, 'OFF');
  assert.equal(schedule?.Target?.RoleArn, role.arn);
  resetCalls();
  await ensureSchedule(testContext(), { functionArn, roleArn: role.arn });
  assert.deepEqual(mutatingCalls(), []);
});

test('in plan mode nothing is created and every resource is reported as a create', async () => {
  const ctx = testContext('plan');
  await ensureRepository(ctx);
  await ensureLogGroup(ctx, ctx.names.logGroup);
  const role = await ensureFunctionRole(ctx, roleInputs);
  await ensureFunctions(ctx, inputsFor(role.arn, `r@${digest}`));
  await ensureEventSource(ctx, { functionName: ctx.names.function, queueArn: roleInputs.queueArn });
  assert.deepEqual(mutatingCalls(), []);
  assert.deepEqual(
    ctx.changes.map((c) => `${c.action} ${c.kind}`),
    [
      'create ecr repository',
      'create log group',
      'create iam role',
      'create lambda function',
      'create lambda function',
      'create event source mapping',
    ],
  );
});
