import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { desiredTopic, type TopicState, topicDrift } from './topic.ts';

const config = loadDeployConfig({ AWS_REGION: 'us-east-1' });
const identity = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };
const ctx = { config, identity, names: stackNames(config.stack, identity) };
const bucketArn = 'arn:aws:s3:::ada-linecount-dev-123456789012-us-east-1';
const desired = desiredTopic(ctx, { bucketArn });

test('the topic policy lets only this bucket in this account publish', () => {
  const [statement] = JSON.parse(desired.attributes.Policy).Statement;
  assert.deepEqual(statement.Principal, { Service: 's3.amazonaws.com' });
  assert.equal(statement.Action, 'SNS:Publish');
  assert.equal(statement.Resource, desired.arn);
  assert.deepEqual(statement.Condition, {
    ArnLike: { 'aws:SourceArn': bucketArn },
    StringEquals: { 'aws:SourceAccount': '123456789012' },
  });
  assert.equal(desired.arn, 'arn:aws:sns:us-east-1:123456789012:ada-linecount-dev-uploads');
});

const cases: { name: string; actual: Partial<TopicState>; fields: string[] }[] = [
  { name: 'in sync', actual: {}, fields: [] },
  {
    name: 'default policy of a topic created elsewhere',
    actual: { attributes: { Policy: '{"Version":"2008-10-17"}' } },
    fields: ['Policy'],
  },
  { name: 'no policy attribute', actual: { attributes: {} }, fields: ['Policy'] },
  { name: 'tags missing', actual: { tags: {} }, fields: ['tags'] },
  { name: 'extra foreign tag', actual: { tags: { ...desired.tags, team: 'ops' } }, fields: [] },
];

for (const c of cases) {
  test(`topic drift: ${c.name}`, () => {
    const actual: TopicState = {
      arn: desired.arn,
      attributes: { Owner: '123456789012', Policy: desired.attributes.Policy },
      tags: { ...desired.tags },
      ...c.actual,
    };
    assert.deepEqual(
      topicDrift(desired, actual).map((f) => f.field),
      c.fields,
    );
  });
}
