import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  type NotificationConfiguration,
  PutBucketNotificationConfigurationCommand,
  type QueueConfiguration,
  type TopicConfiguration,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, SetTopicAttributesCommand } from '@aws-sdk/client-sns';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { recordEmulatorCalls } from '../../test/fakes/calls.ts';
import { type CollectingLog, testContext } from '../../test/provision/context.ts';
import { emulatorScope, useEmulator } from '../../test/support/emulator-context.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import {
  deleteNotification,
  desiredNotification,
  ensureNotification,
  mergeNotification,
  notificationDrift,
} from './notification.ts';
import { desiredTopic } from './topic.ts';

const config = loadDeployConfig({ AWS_REGION: 'us-east-1' });
const identity = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };
const ctx = { config, identity, names: stackNames(config.stack, identity) };
const topicArn = 'arn:aws:sns:us-east-1:123456789012:ada-linecount-dev-uploads';
const ours = desiredNotification(ctx, { topicArn });
const foreignTopic: TopicConfiguration = {
  Id: 'audit',
  TopicArn: 'arn:aws:sns:us-east-1:1:audit',
  Events: ['s3:ObjectRemoved:*'],
};
const foreignQueue: QueueConfiguration = {
  Id: 'thumbs',
  QueueArn: 'arn:aws:sqs:us-east-1:1:thumbs',
  Events: ['s3:ObjectCreated:Put'],
};

test('our entry sends every ObjectCreated event under uploads/ to the topic', () => {
  assert.deepEqual(ours.Events, ['s3:ObjectCreated:*']);
  assert.deepEqual(ours.Filter?.Key?.FilterRules, [{ Name: 'prefix', Value: 'uploads/' }]);
  assert.equal(ours.Id, 'ada-linecount-dev-uploads');
});

const driftCases: { name: string; actual: NotificationConfiguration; drift: boolean }[] = [
  { name: 'empty configuration', actual: {}, drift: true },
  {
    name: 'only foreign entries',
    actual: { TopicConfigurations: [foreignTopic], QueueConfigurations: [foreignQueue] },
    drift: true,
  },
  { name: 'ours present', actual: { TopicConfigurations: [foreignTopic, ours] }, drift: false },
  {
    name: 'ours echoed with Prefix capitalised',
    actual: {
      TopicConfigurations: [
        { ...ours, Filter: { Key: { FilterRules: [{ Name: 'Prefix' as never, Value: 'uploads/' }] } } },
      ],
    },
    drift: false,
  },
  {
    name: 'ours pointing at another topic',
    actual: { TopicConfigurations: [{ ...ours, TopicArn: 'arn:aws:sns:us-east-1:1:x' }] },
    drift: true,
  },
  {
    name: 'ours without the prefix filter',
    actual: { TopicConfigurations: [{ ...ours, Filter: undefined }] },
    drift: true,
  },
  {
    name: 'ours narrowed to Put only',
    actual: { TopicConfigurations: [{ ...ours, Events: ['s3:ObjectCreated:Put'] }] },
    drift: true,
  },
];

for (const c of driftCases) {
  test(`notification drift: ${c.name}`, () => {
    assert.equal(notificationDrift(ours, c.actual).length > 0, c.drift);
  });
}

test('merging keeps foreign entries and replaces ours by Id', () => {
  const stale = { ...ours, TopicArn: 'arn:aws:sns:us-east-1:1:old' };
  const merged = mergeNotification(
    {
      TopicConfigurations: [foreignTopic, stale],
      QueueConfigurations: [foreignQueue],
      EventBridgeConfiguration: {},
    },
    ours,
    ours.Id ?? '',
  );
  assert.deepEqual(merged, {
    TopicConfigurations: [foreignTopic, ours],
    QueueConfigurations: [foreignQueue],
    EventBridgeConfiguration: {},
  });
});

test('merging without ours removes only ours', () => {
  const merged = mergeNotification({ TopicConfigurations: [foreignTopic, ours] }, undefined, ours.Id ?? '');
  assert.deepEqual(merged, { TopicConfigurations: [foreignTopic] });
  assert.deepEqual(mergeNotification({ TopicConfigurations: [ours] }, undefined, ours.Id ?? ''), {});
});

// On the emulator, which validates destinations as S3 does: it refuses a
// topic whose policy does not let this bucket publish.

const onEmulator = useEmulator();

async function stack(stage: string) {
  const ctx = onEmulator(stage, ['s3', 'sns']);
  const bucket = ctx.names.bucket;
  await ctx.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const { TopicArn = '' } = await ctx.clients.sns.send(new CreateTopicCommand({ Name: ctx.names.topic }));
  const setPolicy = () =>
    ctx.clients.sns.send(
      new SetTopicAttributesCommand({
        TopicArn,
        AttributeName: 'Policy',
        AttributeValue: JSON.stringify(desiredTopic(ctx, { bucketArn: `arn:aws:s3:::${bucket}` }).policy),
      }),
    );
  return { ctx, bucket, topicArn: TopicArn, setPolicy, log: ctx.log as CollectingLog };
}

const quickly = { timeoutMs: 5_000, intervalMs: 50, maxIntervalMs: 100 };

test('the notification is saved once S3 can validate the topic policy that was just set', async () => {
  const { ctx, bucket, topicArn, setPolicy, log } = await stack('nvalid');
  // the policy takes effect only once S3 has refused the first save
  let effect: Promise<unknown> | undefined;
  const progress = log.progress;
  log.progress = (message) => {
    progress(message);
    effect ??= setPolicy();
  };
  await ensureNotification(ctx, { bucket, topicArn }, { retry: quickly });
  await effect;
  assert.ok(
    log.lines.some((line) => line.startsWith('progress: S3 cannot validate')),
    'S3 refused the first save',
  );
  const saved = await ctx.clients.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  assert.deepEqual(
    saved.TopicConfigurations?.map((t) => [t.Id, t.TopicArn]),
    [[`${ctx.names.base}-uploads`, topicArn]],
  );
});

test('a configuration S3 can never accept fails at once, with the step and what to check', async () => {
  const { ctx, bucket, topicArn, setPolicy } = await stack('noverlap');
  await setPolicy();
  // someone else's entry for the same events under the same prefix: S3 refuses the overlap
  await ctx.clients.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        TopicConfigurations: [
          {
            Id: 'audit',
            TopicArn: topicArn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'uploads/' }] } },
          },
        ],
      },
    }),
  );
  const started = Date.now();
  await assert.rejects(
    ensureNotification(ctx, { bucket, topicArn }, { retry: quickly }),
    /cannot write the notification configuration of .*InvalidArgument.*foreign entries must not overlap/,
  );
  assert.ok(Date.now() - started < quickly.timeoutMs / 2, 'not retried');
});

test('delete removes our entry alone, and a second delete finds it absent', async () => {
  const { ctx, bucket, topicArn, setPolicy } = await stack('ndelete');
  await setPolicy();
  await ensureNotification(ctx, { bucket, topicArn }, { retry: quickly });
  const saved = await ctx.clients.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  const audit: TopicConfiguration = {
    Id: 'audit',
    TopicArn: topicArn,
    Events: ['s3:ObjectCreated:*'],
    Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'audit/' }] } },
  };
  await ctx.clients.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: { TopicConfigurations: [...(saved.TopicConfigurations ?? []), audit] },
    }),
  );
  await deleteNotification(ctx);
  await deleteNotification(ctx);
  const after = await ctx.clients.s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  assert.deepEqual(
    after.TopicConfigurations?.map((t) => t.Id),
    ['audit'],
  );
  assert.deepEqual(
    ctx.changes.map((c) => `${c.action} ${c.kind}`),
    ['create bucket notification', 'delete bucket notification', 'absent bucket notification'],
  );
});

test('a refused save names the step, the IAM action and what S3 validates', async () => {
  const { ctx, bucket, topicArn, setPolicy } = await stack('ndenied');
  await setPolicy();
  recordEmulatorCalls(ctx.clients);
  await rejectsWithoutAction(
    emulatorScope,
    's3:PutBucketNotification',
    () => ensureNotification(ctx, { bucket, topicArn }, { retry: quickly }),
    /^cannot write the notification configuration of \S+: AccessDenied: .*\(check s3:PutBucketNotification permission; S3 validates destinations/,
  );
});
