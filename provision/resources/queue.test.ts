import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { recordEmulatorCalls } from '../../test/fakes/calls.ts';
import { testContext } from '../../test/provision/context.ts';
import { emulatorScope, useEmulator } from '../../test/support/emulator-context.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import {
  deleteDeadLetterQueue,
  deleteQueue,
  desiredDeadLetterQueue,
  desiredQueue,
  ensureDeadLetterQueue,
  ensureQueue,
  type QueueState,
  queueDrift,
} from './queue.ts';

const config = loadDeployConfig({
  AWS_REGION: 'us-east-1',
  FUNCTION_TIMEOUT_SECONDS: '30',
  BATCHING_WINDOW_SECONDS: '5',
});
const identity = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };
const ctx = { config, identity, names: stackNames(config.stack, identity) };
const topicArn = 'arn:aws:sns:us-east-1:123456789012:ada-linecount-dev-uploads';
const dlq = desiredDeadLetterQueue(ctx);
const queue = desiredQueue(ctx, { dlqArn: dlq.arn, topicArn });

// the same policy with every object's keys in reverse order, as a service might echo it
function reordered(json: string): string {
  const reverse = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(reverse)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .reverse()
              .map(([k, v]) => [k, reverse(v)]),
          )
        : value;
  return JSON.stringify(reverse(JSON.parse(json)));
}

function state(attributes: Record<string, string>, tags = { ...queue.tags }): QueueState {
  return { url: 'http://q', arn: queue.arn, attributes, tags };
}

test('the queue hides a message for 6 × timeout + window and redrives to the DLQ', () => {
  assert.equal(queue.attributes.VisibilityTimeout, String(6 * 30 + 5));
  assert.deepEqual(JSON.parse(queue.attributes.RedrivePolicy ?? ''), {
    deadLetterTargetArn: dlq.arn,
    maxReceiveCount: 5,
  });
  assert.equal(queue.attributes.SqsManagedSseEnabled, 'true');
  assert.ok(Number(dlq.attributes.MessageRetentionPeriod) > Number(queue.attributes.MessageRetentionPeriod));
});

test('the queue policy lets only this topic send', () => {
  const policy = JSON.parse(queue.attributes.Policy ?? '');
  assert.equal(policy.Statement.length, 1);
  assert.deepEqual(policy.Statement[0].Principal, { Service: 'sns.amazonaws.com' });
  assert.equal(policy.Statement[0].Action, 'sqs:SendMessage');
  assert.equal(policy.Statement[0].Resource, queue.arn);
  assert.deepEqual(policy.Statement[0].Condition, { ArnEquals: { 'aws:SourceArn': topicArn } });
});

const cases: {
  name: string;
  attributes: Record<string, string | undefined>;
  tags?: Record<string, string>;
  fields: string[];
}[] = [
  { name: 'in sync', attributes: {}, fields: [] },
  {
    name: 'visibility lowered out of band',
    attributes: { VisibilityTimeout: '30' },
    fields: ['VisibilityTimeout'],
  },
  {
    name: 'retention changed',
    attributes: { MessageRetentionPeriod: '60' },
    fields: ['MessageRetentionPeriod'],
  },
  {
    name: 'redrive with maxReceiveCount as a string is in sync',
    attributes: { RedrivePolicy: JSON.stringify({ maxReceiveCount: '5', deadLetterTargetArn: dlq.arn }) },
    fields: [],
  },
  {
    name: 'redrive to another DLQ',
    attributes: {
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: 'arn:aws:sqs:us-east-1:1:other',
        maxReceiveCount: 5,
      }),
    },
    fields: ['RedrivePolicy'],
  },
  { name: 'redrive removed', attributes: { RedrivePolicy: undefined }, fields: ['RedrivePolicy'] },
  {
    name: 'encryption turned off',
    attributes: { SqsManagedSseEnabled: 'false' },
    fields: ['SqsManagedSseEnabled'],
  },
  {
    name: 'policy re-serialised with other key order is in sync',
    attributes: { Policy: reordered(queue.attributes.Policy ?? '') },
    fields: [],
  },
  {
    name: 'policy opened to everyone',
    attributes: { Policy: '{"Statement":[{"Effect":"Allow","Principal":"*"}]}' },
    fields: ['Policy'],
  },
  { name: 'a tag missing', attributes: {}, tags: { app: 'ada-linecount' }, fields: ['tags'] },
];

for (const c of cases) {
  test(`queue drift: ${c.name}`, () => {
    const merged = { ...queue.attributes, ApproximateNumberOfMessages: '3', ...c.attributes };
    const attributes = Object.fromEntries(
      Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    const actual = state(attributes, c.tags);
    assert.deepEqual(
      queueDrift(queue, actual).map((f) => f.field),
      c.fields,
    );
  });
}

test('dead-letter queue drift reports its retention', () => {
  const drift = queueDrift(dlq, state({ ...dlq.attributes, MessageRetentionPeriod: '345600' }, dlq.tags));
  assert.deepEqual(drift, [
    { field: 'MessageRetentionPeriod', from: '345600', to: String(config.fn.dlqRetentionSeconds) },
  ]);
});

// The queues on the emulator, as a deployer that may lack an action.

const onEmulator = useEmulator();

test('the queue and its dead-letter queue are created and deleted under their own kinds; a refused read names its IAM actions', async () => {
  const ctx = onEmulator('qcycle', ['sqs']);
  recordEmulatorCalls(ctx.clients);
  const dlq = await ensureDeadLetterQueue(ctx);
  const created = await ensureQueue(ctx, { dlqArn: dlq.arn, topicArn });
  assert.match(created.url, /\/000000000000\/ada-linecount-qcycle-uploads$/);
  await rejectsWithoutAction(
    emulatorScope,
    'sqs:ListQueueTags',
    () => ensureQueue(ctx, { dlqArn: dlq.arn, topicArn }),
    /^cannot read queue ada-linecount-qcycle-uploads: AccessDenied: .*\(check sqs:GetQueueUrl, sqs:GetQueueAttributes and sqs:ListQueueTags permissions\)$/,
  );
  await deleteQueue(ctx);
  await deleteDeadLetterQueue(ctx);
  await deleteDeadLetterQueue(ctx);
  assert.deepEqual(
    ctx.changes.map((c) => `${c.action} ${c.kind}`),
    [
      'create dead-letter queue',
      'create queue',
      'delete queue',
      'delete dead-letter queue',
      'absent dead-letter queue',
    ],
  );
});
