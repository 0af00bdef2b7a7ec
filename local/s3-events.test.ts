import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Destination,
  encodeEventKey,
  findOverlap,
  matchesEvent,
  NotificationConfigError,
  parseNotificationConfiguration,
  policyAllowsS3,
  renderNotificationConfiguration,
  Sequencer,
  selectDestinations,
} from './s3-events.ts';

const keyCases: [string, string][] = [
  ['uploads/plain.txt', 'uploads/plain.txt'],
  ['uploads/with space.txt', 'uploads/with+space.txt'],
  ['uploads/a+b.txt', 'uploads/a%2Bb.txt'],
  ['uploads/ação ç.txt', 'uploads/a%C3%A7%C3%A3o+%C3%A7.txt'],
  ['uploads/(1)=x,y:z;&@$', 'uploads/%281%29%3Dx%2Cy%3Az%3B%26%40%24'],
  ['uploads/a-b_c.d*e~f', 'uploads/a-b_c.d*e%7Ef'],
  ['uploads/100%.txt', 'uploads/100%25.txt'],
];

for (const [key, encoded] of keyCases) {
  test(`event key ${JSON.stringify(key)} is form-URL-encoded as ${encoded}`, () => {
    assert.equal(encodeEventKey(key), encoded);
    assert.equal(decodeURIComponent(encoded.replace(/\+/g, ' ')), key);
  });
}

test('ObjectCreated:* covers every creation variant, a specific event only itself', () => {
  assert.ok(matchesEvent(['s3:ObjectCreated:*'], 'ObjectCreated:CompleteMultipartUpload'));
  assert.ok(matchesEvent(['s3:ObjectCreated:Put'], 'ObjectCreated:Put'));
  assert.ok(!matchesEvent(['s3:ObjectCreated:Put'], 'ObjectCreated:Copy'));
  assert.ok(!matchesEvent(['s3:ObjectRemoved:*'], 'ObjectCreated:Put'));
});

const configXml = `<?xml version="1.0" encoding="UTF-8"?>
<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <TopicConfiguration><Id>ours</Id><Topic>arn:aws:sns:us-east-1:1:t</Topic><Event>s3:ObjectCreated:*</Event>
    <Filter><S3Key><FilterRule><Name>Prefix</Name><Value>uploads/</Value></FilterRule><FilterRule><Name>suffix</Name><Value>.txt</Value></FilterRule></S3Key></Filter>
  </TopicConfiguration>
  <QueueConfiguration><Id>theirs</Id><Queue>arn:aws:sqs:us-east-1:1:q</Queue><Event>s3:ObjectRemoved:*</Event></QueueConfiguration>
</NotificationConfiguration>`;

test('a notification configuration parses, renders and parses back the same', () => {
  const parsed = parseNotificationConfiguration(configXml);
  assert.deepEqual(parsed.destinations, [
    {
      id: 'ours',
      type: 'topic',
      arn: 'arn:aws:sns:us-east-1:1:t',
      events: ['s3:ObjectCreated:*'],
      filterRules: [
        { name: 'prefix', value: 'uploads/' },
        { name: 'suffix', value: '.txt' },
      ],
    },
    {
      id: 'theirs',
      type: 'queue',
      arn: 'arn:aws:sqs:us-east-1:1:q',
      events: ['s3:ObjectRemoved:*'],
      filterRules: [],
    },
  ]);
  assert.deepEqual(parseNotificationConfiguration(renderNotificationConfiguration(parsed)), parsed);
});

test('an empty configuration clears every destination', () => {
  const empty = parseNotificationConfiguration(
    '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>',
  );
  assert.deepEqual(empty.destinations, []);
});

test('malformed configurations are refused with the S3 error code', () => {
  assert.throws(
    () => parseNotificationConfiguration('<Nope/>'),
    (e) => e instanceof NotificationConfigError && e.code === 'MalformedXML',
  );
  assert.throws(
    () =>
      parseNotificationConfiguration(
        '<NotificationConfiguration><TopicConfiguration><Topic>arn</Topic></TopicConfiguration></NotificationConfiguration>',
      ),
    (e) => e instanceof NotificationConfigError && e.code === 'InvalidArgument',
  );
});

test('destinations are selected by event and by prefix and suffix on the encoded key', () => {
  const settings = parseNotificationConfiguration(configXml);
  assert.deepEqual(
    selectDestinations(settings, 'ObjectCreated:Put', encodeEventKey('uploads/a b.txt')).map((d) => d.id),
    ['ours'],
  );
  assert.deepEqual(selectDestinations(settings, 'ObjectCreated:Put', encodeEventKey('uploads/a.csv')), []);
  assert.deepEqual(selectDestinations(settings, 'ObjectCreated:Put', encodeEventKey('other/a.txt')), []);
  assert.deepEqual(selectDestinations(undefined, 'ObjectCreated:Put', 'uploads/a.txt'), []);
});

test('overlapping entries for the same event are detected, disjoint prefixes are not', () => {
  const entry = (id: string, prefix: string, events = ['s3:ObjectCreated:*']): Destination => ({
    id,
    type: 'queue',
    arn: `arn:aws:sqs:us-east-1:1:${id}`,
    events,
    filterRules: [{ name: 'prefix', value: prefix }],
  });
  assert.deepEqual(findOverlap([entry('a', 'uploads/'), entry('b', 'uploads/x/')]), ['a', 'b']);
  assert.equal(findOverlap([entry('a', 'uploads/'), entry('b', 'exports/')]), undefined);
  assert.equal(
    findOverlap([entry('a', 'uploads/'), entry('b', 'uploads/', ['s3:ObjectRemoved:*'])]),
    undefined,
  );
  assert.deepEqual(findOverlap([entry('a', 'uploads/', ['s3:ObjectCreated:Put']), entry('b', '')]), [
    'a',
    'b',
  ]);
});

const bucketArn = 'arn:aws:s3:::my-bucket';
const allow = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    Statement: [
      { Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' }, Action: 'SNS:Publish', ...extra },
    ],
  });
const policyCases: [string, string | undefined, boolean][] = [
  ['no policy', undefined, false],
  ['the S3 principal may publish', allow(), true],
  ['scoped to this bucket', allow({ Condition: { ArnLike: { 'aws:SourceArn': bucketArn } } }), true],
  [
    'scoped with a wildcard',
    allow({ Condition: { ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::my-*' } } }),
    true,
  ],
  [
    'scoped to another bucket',
    allow({ Condition: { ArnEquals: { 'aws:SourceArn': 'arn:aws:s3:::other' } } }),
    false,
  ],
  ['another action', allow({ Action: 'SNS:Subscribe' }), false],
  ['a deny only', JSON.stringify({ Statement: [{ Effect: 'Deny', Principal: '*', Action: '*' }] }), false],
];
for (const [name, policy, allowed] of policyCases) {
  test(`destination policy: ${name} → ${allowed ? 'valid' : 'refused'}`, () => {
    assert.equal(policyAllowsS3(policy, 'sns:Publish', bucketArn), allowed);
  });
}

test('sequencers are uppercase hex and strictly increase, even within one millisecond', () => {
  const sequencer = new Sequencer();
  const values = Array.from({ length: 1000 }, () => sequencer.next());
  for (const value of values) assert.match(value, /^[0-9A-F]{18}$/);
  for (let i = 1; i < values.length; i++) assert.ok((values[i] as string) > (values[i - 1] as string));
});
