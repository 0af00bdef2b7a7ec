import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredSubscription, subscriptionDrift } from './subscription.ts';

const desired = desiredSubscription({
  topicArn: 'arn:aws:sns:us-east-1:1:t',
  queueArn: 'arn:aws:sqs:us-east-1:1:q',
});

test('the subscription keeps the SNS envelope (raw delivery off)', () => {
  assert.equal(desired.attributes.RawMessageDelivery, 'false');
});

const cases: { name: string; attributes: Record<string, string>; drift: unknown[] }[] = [
  { name: 'raw delivery off is in sync', attributes: { RawMessageDelivery: 'false' }, drift: [] },
  { name: 'absent attribute means off (the SNS default)', attributes: {}, drift: [] },
  {
    name: 'raw delivery turned on out of band',
    attributes: { RawMessageDelivery: 'true' },
    drift: [{ field: 'RawMessageDelivery', from: 'true', to: 'false' }],
  },
];

for (const c of cases) {
  test(`subscription drift: ${c.name}`, () => {
    assert.deepEqual(subscriptionDrift(desired, { arn: 'arn:sub', attributes: c.attributes }), c.drift);
  });
}
