import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NotificationConfiguration, QueueConfiguration, TopicConfiguration } from '@aws-sdk/client-s3';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { desiredNotification, mergeNotification, notificationDrift } from './notification.ts';

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
