import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketPolicyCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketNotificationConfigurationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  PutPublicAccessBlockCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import { type Emulator, startEmulator } from './emulator.ts';

// The emulator accepts any credentials; these are its dummy keys, not secrets.
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const region = 'us-east-1';
const account = '000000000000';

let emulator: Emulator;
let s3: S3Client;
let sns: SNSClient;
let sqs: SQSClient;

before(async () => {
  emulator = await startEmulator({ port: 0 });
  const config = { endpoint: emulator.endpoint, region, credentials };
  s3 = new S3Client({ ...config, forcePathStyle: true });
  sns = new SNSClient(config);
  sqs = new SQSClient(config);
});

after(async () => {
  s3.destroy();
  sns.destroy();
  sqs.destroy();
  await emulator.stop();
});

async function s3ErrorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, `expected an S3 error, got ${String(error)}`);
    return error.name;
  }
  assert.fail('expected the call to fail');
}

// Receives until `count` messages arrived (or the deadline), deleting them.
async function receive(queueUrl: string, count: number, timeoutMs = 5_000): Promise<Message[]> {
  const messages: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (messages.length < count && Date.now() < deadline) {
    const page = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    for (const message of page.Messages ?? []) messages.push(message);
    if (page.Messages?.length) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: page.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
    }
  }
  return messages;
}

interface S3Record {
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  eventName: string;
  s3: {
    configurationId: string;
    bucket: { name: string; arn: string };
    object: { key: string; size: number; eTag: string; sequencer: string };
  };
}

// SQS body → SNS envelope → S3 event
function unwrap(message: Message): { Records?: S3Record[]; Event?: string; Bucket?: string } {
  const envelope = JSON.parse(message.Body ?? '') as { Type?: string; Message?: string };
  assert.equal(envelope.Type, 'Notification');
  return JSON.parse(envelope.Message ?? '');
}

async function createPipeline(name: string, prefix = 'uploads/') {
  const bucket = `${name}-bucket`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-queue` }));
  const queueUrl = queue.QueueUrl ?? '';
  const queueArn = `arn:aws:sqs:${region}:${account}:${name}-queue`;
  const topicArn = `arn:aws:sns:${region}:${account}:${name}-topic`;
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: 'SNS:Publish',
        Resource: topicArn,
        Condition: { ArnLike: { 'aws:SourceArn': `arn:aws:s3:::${bucket}` } },
      },
    ],
  });
  await sns.send(new CreateTopicCommand({ Name: `${name}-topic`, Attributes: { Policy: policy } }));
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn }));
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        TopicConfigurations: [
          {
            Id: 'ours',
            TopicArn: topicArn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: prefix }] } },
          },
        ],
      },
    }),
  );
  return { bucket, queueUrl, queueArn, topicArn };
}

describe('bucket sub-resources', () => {
  const bucket = 'subresources';
  before(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  test('a new bucket reports the AWS defaults: public access blocked, ACLs off, SSE-S3, unversioned', async () => {
    const block = await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }));
    assert.deepEqual(block.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    });
    const ownership = await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }));
    assert.equal(ownership.OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'BucketOwnerEnforced');
    const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
    assert.equal(
      encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault
        ?.SSEAlgorithm,
      'AES256',
    );
    assert.equal((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status, undefined);
  });

  test('unset policy, lifecycle and tags answer with the S3 error codes', async () => {
    assert.equal(
      await s3ErrorCode(s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))),
      'NoSuchBucketPolicy',
    );
    assert.equal(
      await s3ErrorCode(s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))),
      'NoSuchLifecycleConfiguration',
    );
    assert.equal(await s3ErrorCode(s3.send(new GetBucketTaggingCommand({ Bucket: bucket }))), 'NoSuchTagSet');
    assert.equal(
      await s3ErrorCode(s3.send(new GetBucketPolicyCommand({ Bucket: 'no-such-bucket' }))),
      'NoSuchBucket',
    );
  });

  test('what is put is what is got back', async () => {
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: false,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true,
        },
      }),
    );
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*' }] });
    await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: policy }));
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'r1',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              NoncurrentVersionExpiration: { NoncurrentDays: 30 },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            },
          ],
        },
      }),
    );
    await s3.send(
      new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'app', Value: 'x' }] } }),
    );

    const block = await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }));
    assert.equal(block.PublicAccessBlockConfiguration?.IgnorePublicAcls, false);
    assert.equal((await s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy, policy);
    assert.equal((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status, 'Enabled');
    const lifecycle = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
    assert.equal(lifecycle.Rules?.[0]?.NoncurrentVersionExpiration?.NoncurrentDays, 30);
    assert.equal(lifecycle.Rules?.[0]?.AbortIncompleteMultipartUpload?.DaysAfterInitiation, 7);
    const tags = await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }));
    assert.deepEqual(tags.TagSet, [{ Key: 'app', Value: 'x' }]);
  });

  test('deleting the policy removes the policy, not the bucket', async () => {
    await s3.send(
      new PutBucketPolicyCommand({ Bucket: bucket, Policy: '{"Version":"2012-10-17","Statement":[]}' }),
    );
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    assert.equal(
      await s3ErrorCode(s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))),
      'NoSuchBucketPolicy',
    );
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  });

  test('an object-level sub-resource is refused instead of overwriting the object', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'kept.txt', Body: 'original' }));
    const code = await s3ErrorCode(
      s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'kept.txt', Tagging: { TagSet: [] } })),
    );
    assert.equal(code, 'NotImplemented');
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'kept' }));
    assert.equal(versions.Versions?.[0]?.Size, 'original'.length);
  });

  test('ListObjectVersions pages through every object as its null version', async () => {
    const name = 'versions';
    await s3.send(new CreateBucketCommand({ Bucket: name }));
    for (const key of ['a', 'b', 'c'])
      await s3.send(new PutObjectCommand({ Bucket: name, Key: key, Body: key }));
    const first = await s3.send(new ListObjectVersionsCommand({ Bucket: name, MaxKeys: 2 }));
    assert.deepEqual(
      first.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest]),
      [
        ['a', 'null', true],
        ['b', 'null', true],
      ],
    );
    assert.equal(first.IsTruncated, true);
    const second = await s3.send(
      new ListObjectVersionsCommand({ Bucket: name, MaxKeys: 2, KeyMarker: first.NextKeyMarker }),
    );
    assert.deepEqual(
      second.Versions?.map((v) => v.Key),
      ['c'],
    );
    assert.equal(second.IsTruncated, false);
  });
});

describe('queue attributes', () => {
  test('a queue reports SqsManagedSseEnabled as AWS does, and what was set', async () => {
    const plain = await sqs.send(new CreateQueueCommand({ QueueName: 'sse-default' }));
    const off = await sqs.send(
      new CreateQueueCommand({ QueueName: 'sse-off', Attributes: { SqsManagedSseEnabled: 'false' } }),
    );
    const read = async (url?: string) =>
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes
        ?.SqsManagedSseEnabled;
    assert.equal(await read(plain.QueueUrl), 'true');
    assert.equal(await read(off.QueueUrl), 'false');
  });
});

describe('bucket notifications', () => {
  test('saving a notification sends an s3:TestEvent through the topic to the queue', async () => {
    const { bucket, queueUrl } = await createPipeline('testevent');
    const [message] = await receive(queueUrl, 1);
    assert.ok(message);
    const event = unwrap(message);
    assert.equal(event.Event, 's3:TestEvent');
    assert.equal(event.Bucket, bucket);
    assert.equal(event.Records, undefined);
  });

  test('the saved configuration is returned by GetBucketNotificationConfiguration', async () => {
    const { bucket, topicArn } = await createPipeline('readback');
    const config = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
    assert.equal(config.TopicConfigurations?.length, 1);
    assert.equal(config.TopicConfigurations?.[0]?.Id, 'ours');
    assert.equal(config.TopicConfigurations?.[0]?.TopicArn, topicArn);
    assert.deepEqual(config.TopicConfigurations?.[0]?.Events, ['s3:ObjectCreated:*']);
    assert.deepEqual(config.TopicConfigurations?.[0]?.Filter?.Key?.FilterRules, [
      { Name: 'prefix', Value: 'uploads/' },
    ]);
  });

  test('a destination whose policy does not let the bucket publish is refused', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'refused' }));
    await sns.send(new CreateTopicCommand({ Name: 'no-policy' }));
    const code = await s3ErrorCode(
      s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: 'refused',
          NotificationConfiguration: {
            TopicConfigurations: [
              { TopicArn: `arn:aws:sns:${region}:${account}:no-policy`, Events: ['s3:ObjectCreated:*'] },
            ],
          },
        }),
      ),
    );
    assert.equal(code, 'InvalidArgument');
  });

  test('a key with spaces, plus, accents and slashes arrives form-URL-encoded through SNS and SQS', async () => {
    const { bucket, queueUrl } = await createPipeline('encoding');
    await receive(queueUrl, 1);
    const key = 'uploads/2024 março/Cliente A+B (final) ação.txt';
    const body = 'one\ntwo\n';
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const [message] = await receive(queueUrl, 1);
    assert.ok(message);
    const record = unwrap(message).Records?.[0];
    assert.ok(record);
    assert.equal(record.eventVersion, '2.1');
    assert.equal(record.eventSource, 'aws:s3');
    assert.equal(record.awsRegion, region);
    assert.equal(record.eventName, 'ObjectCreated:Put');
    assert.ok(!Number.isNaN(Date.parse(record.eventTime)));
    assert.equal(record.s3.configurationId, 'ours');
    assert.equal(record.s3.bucket.name, bucket);
    assert.equal(record.s3.bucket.arn, `arn:aws:s3:::${bucket}`);
    assert.equal(
      record.s3.object.key,
      'uploads/2024+mar%C3%A7o/Cliente+A%2BB+%28final%29+a%C3%A7%C3%A3o.txt',
    );
    assert.equal(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' ')), key);
    assert.equal(record.s3.object.size, Buffer.byteLength(body));
    assert.equal(record.s3.object.eTag, put.ETag?.replace(/"/g, ''));
    assert.match(record.s3.object.sequencer, /^[0-9A-F]{18}$/);
  });

  test('a multipart upload over 5 MiB arrives as ObjectCreated:CompleteMultipartUpload', async () => {
    const { bucket, queueUrl } = await createPipeline('multipart');
    await receive(queueUrl, 1);
    const size = 6 * 1024 * 1024 + 17;
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'uploads/big.txt', Body: Buffer.alloc(size, 'a\n') },
      partSize: 5 * 1024 * 1024,
    });
    const result = await upload.done();
    const [message] = await receive(queueUrl, 1);
    assert.ok(message);
    const record = unwrap(message).Records?.[0];
    assert.equal(record?.eventName, 'ObjectCreated:CompleteMultipartUpload');
    assert.equal(record?.s3.object.size, size);
    assert.equal(record?.s3.object.eTag, result.ETag?.replace(/"/g, ''));
    assert.match(record?.s3.object.eTag ?? '', /-2$/);
  });

  test('a copy arrives as ObjectCreated:Copy with the copy size', async () => {
    const { bucket, queueUrl } = await createPipeline('copy');
    await receive(queueUrl, 1);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'staging/source.txt', Body: 'abc' }));
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'uploads/copied file.txt',
        CopySource: `${bucket}/${encodeURIComponent('staging/source.txt')}`,
      }),
    );
    const messages = await receive(queueUrl, 1);
    assert.equal(messages.length, 1, 'the source outside uploads/ must not be notified');
    const record = unwrap(messages[0] as Message).Records?.[0];
    assert.equal(record?.eventName, 'ObjectCreated:Copy');
    assert.equal(record?.s3.object.key, 'uploads/copied+file.txt');
    assert.equal(record?.s3.object.size, 3);
  });

  test('the prefix filter leaves other keys unnotified', async () => {
    const { bucket, queueUrl } = await createPipeline('filter');
    await receive(queueUrl, 1);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/a.txt', Body: 'x' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'uploadsX/b.txt', Body: 'x' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'uploads/c.txt', Body: 'x' }));
    const messages = await receive(queueUrl, 2, 2_500);
    assert.deepEqual(
      messages.map((m) => unwrap(m).Records?.[0]?.s3.object.key),
      ['uploads/c.txt'],
    );
  });

  test('a queue destination receives the raw S3 event, and suffix rules apply', async () => {
    const bucket = 'direct-bucket';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const queueArn = `arn:aws:sqs:${region}:${account}:direct-queue`;
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'direct-queue',
        Attributes: {
          Policy: JSON.stringify({
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: 's3.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: queueArn,
              },
            ],
          }),
        },
      }),
    );
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              Id: 'csv-only',
              QueueArn: queueArn,
              Events: ['s3:ObjectCreated:Put'],
              Filter: { Key: { FilterRules: [{ Name: 'suffix', Value: '.csv' }] } },
            },
          ],
        },
      }),
    );
    const [test] = await receive(queue.QueueUrl ?? '', 1);
    assert.equal(JSON.parse(test?.Body ?? '').Event, 's3:TestEvent');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a.txt', Body: 'x' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'b.csv', Body: 'x' }));
    const messages = await receive(queue.QueueUrl ?? '', 2, 2_500);
    assert.deepEqual(
      messages.map((m) => JSON.parse(m.Body ?? '').Records[0].s3.object.key),
      ['b.csv'],
    );
  });

  test('sequencers increase for successive writes of one key', async () => {
    const { bucket, queueUrl } = await createPipeline('sequencer');
    await receive(queueUrl, 1);
    const bodies = ['v0', 'v1', 'v2', 'v3', 'v4'];
    for (const body of bodies) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'uploads/same.txt', Body: body }));
    }
    const records = (await receive(queueUrl, bodies.length)).map((m) => unwrap(m).Records?.[0]?.s3.object);
    assert.equal(records.length, bodies.length);
    // ordered by sequencer, the events follow the order of the writes
    const bySequencer = [...records].sort((a, b) => ((a?.sequencer ?? '') < (b?.sequencer ?? '') ? -1 : 1));
    assert.deepEqual(
      bySequencer.map((r) => r?.eTag),
      bodies.map((body) => createHash('md5').update(body).digest('hex')),
    );
    assert.equal(new Set(records.map((r) => r?.sequencer)).size, bodies.length);
  });

  // boto3 uploads an empty file with no body and no Content-Type header, and
  // so does `aws s3 cp` for an empty file with an unknown extension; this was
  // HTTP 500 while the same upload with any Content-Type worked.
  test('an empty PUT without Content-Type stores an empty object and announces it', async () => {
    const { bucket, queueUrl } = await createPipeline('empty-put');
    await receive(queueUrl, 1);
    const response = await new Promise<{ status: number | undefined; etag: string | undefined }>(
      (resolve, reject) => {
        const put = request(
          `${emulator.endpoint}/${bucket}/uploads/empty.dat`,
          { method: 'PUT', headers: { 'content-length': '0' } },
          (reply) => {
            reply.resume();
            reply.on('end', () => resolve({ status: reply.statusCode, etag: reply.headers.etag }));
          },
        );
        put.on('error', reject);
        put.end();
      },
    );
    const emptyMd5 = createHash('md5').update('').digest('hex');
    assert.deepEqual(response, { status: 200, etag: `"${emptyMd5}"` });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'uploads/empty.dat' }));
    assert.equal(head.ContentLength, 0);
    const [event] = await receive(queueUrl, 1);
    assert.ok(event);
    assert.deepEqual(unwrap(event).Records?.[0]?.s3.object, {
      key: 'uploads/empty.dat',
      size: 0,
      eTag: emptyMd5,
      sequencer: unwrap(event).Records?.[0]?.s3.object.sequencer,
    });
  });
});
