import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { answerSnsErrorsAsDocumented } from '../../test/fakes/sns.ts';
import { testContext } from '../../test/provision/context.ts';
import { useEmulator } from '../../test/support/emulator-context.ts';
import { deleteTopic, desiredTopic, ensureTopic, type LiveTopic, topicDrift } from './topic.ts';

const config = loadDeployConfig({ AWS_REGION: 'us-east-1' });
const identity = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };
const ctx = { config, identity, names: stackNames(config.stack, identity) };
const bucketArn = 'arn:aws:s3:::ada-linecount-dev-123456789012-us-east-1';
const desired = desiredTopic(ctx, { bucketArn });

test('the topic policy lets only this bucket in this account publish', () => {
  const [statement] = desired.policy.Statement;
  assert.deepEqual(statement?.Principal, { Service: 's3.amazonaws.com' });
  assert.equal(statement?.Action, 'SNS:Publish');
  assert.equal(statement?.Resource, desired.arn);
  assert.deepEqual(statement?.Condition, {
    ArnLike: { 'aws:SourceArn': bucketArn },
    StringEquals: { 'aws:SourceAccount': '123456789012' },
  });
  assert.equal(desired.arn, 'arn:aws:sns:us-east-1:123456789012:ada-linecount-dev-uploads');
});

const cases: { name: string; actual: Partial<LiveTopic>; fields: string[] }[] = [
  { name: 'in sync', actual: {}, fields: [] },
  {
    name: 'default policy of a topic created elsewhere',
    actual: { policy: { Version: '2008-10-17' } },
    fields: ['Policy'],
  },
  { name: 'no policy attribute', actual: { policy: undefined }, fields: ['Policy'] },
  { name: 'tags missing', actual: { tags: {} }, fields: ['tags'] },
  { name: 'extra foreign tag', actual: { tags: { ...desired.tags, team: 'ops' } }, fields: [] },
];

for (const c of cases) {
  test(`topic drift: ${c.name}`, () => {
    const actual: LiveTopic = {
      arn: desired.arn,
      policy: JSON.parse(JSON.stringify(desired.policy)),
      tags: { ...desired.tags },
      ...c.actual,
    };
    assert.deepEqual(
      topicDrift(desired, actual).map((f) => f.field),
      c.fields,
    );
  });
}

// The topic on the emulator, whose SNS answers each call on a missing topic
// with the error SNS documents for that call (test/fakes/sns.ts):
// GetTopicAttributes NotFound, ListTagsForResource ResourceNotFound.

const onEmulator = useEmulator();

function emulatorContext(stage: string) {
  const ctx = onEmulator(stage, ['sns']);
  answerSnsErrorsAsDocumented(ctx.clients.sns);
  return ctx;
}

test('a missing topic is found absent whichever of its reads SNS answers first', async () => {
  const ctx = emulatorContext('tmissing');
  await deleteTopic(ctx);
  assert.deepEqual(
    ctx.changes.map((c) => `${c.action} ${c.kind}`),
    ['absent topic'],
  );
});

test('a fresh ensure creates the topic, a second finds it in sync, and a second delete finds it gone', async () => {
  const ctx = emulatorContext('tcycle');
  const inputs = { bucketArn: `arn:aws:s3:::${ctx.names.bucket}` };
  const { arn } = await ensureTopic(ctx, inputs);
  assert.deepEqual(await ensureTopic(ctx, inputs), { arn });
  await deleteTopic(ctx);
  await deleteTopic(ctx);
  assert.deepEqual(
    ctx.changes.map((c) => `${c.action} ${c.kind}`),
    ['create topic', 'unchanged topic', 'delete topic', 'absent topic'],
  );
});
