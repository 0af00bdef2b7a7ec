import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compareSequencers,
  decodeS3Key,
  eventIdentity,
  MalformedMessageError,
  parseMessageBody,
  type UploadEvent,
} from './events.ts';

interface RecordOptions {
  eventName?: string;
  key?: string;
  size?: unknown;
  eTag?: unknown;
  sequencer?: unknown;
  versionId?: unknown;
  eventTime?: unknown;
  bucket?: unknown;
}

// The shape S3 documents under "Event message structure" (eventVersion 2.1).
function s3Record(options: RecordOptions = {}) {
  const object: Record<string, unknown> = {
    key: options.key ?? 'uploads/a.txt',
    size: 'size' in options ? options.size : 42,
    eTag: 'eTag' in options ? options.eTag : '0123456789abcdef0123456789abcdef',
    sequencer: 'sequencer' in options ? options.sequencer : '0055AED6DCD90281E5',
  };
  if ('versionId' in options) object.versionId = options.versionId;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-east-1',
    eventTime: 'eventTime' in options ? options.eventTime : '2025-01-15T10:20:30.123Z',
    eventName: options.eventName ?? 'ObjectCreated:Put',
    userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
    requestParameters: { sourceIPAddress: '203.0.113.7' },
    responseElements: {
      'x-amz-request-id': 'C3D13FE58DE4C810',
      'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD',
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'ada-uploads',
      bucket:
        'bucket' in options
          ? options.bucket
          : {
              name: 'ada-bucket',
              ownerIdentity: { principalId: 'A3NL1KOZZKExample' },
              arn: 'arn:aws:s3:::ada-bucket',
            },
      object,
    },
  };
}

function rawEvent(...records: unknown[]): string {
  return JSON.stringify({ Records: records });
}

// SNS → SQS without raw message delivery: the S3 event is a JSON string in Message.
function snsEnvelope(message: string): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: 'arn:aws:sns:us-east-1:123456789012:ada-uploads',
    Subject: 'Amazon S3 Notification',
    Message: message,
    Timestamp: '2025-01-15T10:20:31.000Z',
    SignatureVersion: '1',
    Signature: 'EXAMPLE',
    SigningCertURL: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem',
    UnsubscribeURL: 'https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe',
  });
}

const testEvent = JSON.stringify({
  Service: 'Amazon S3',
  Event: 's3:TestEvent',
  Time: '2025-01-15T10:00:00.000Z',
  Bucket: 'ada-bucket',
  RequestId: '5582815E1AEA5ADF',
  HostId: '8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE',
});

function uploadsOf(body: string): UploadEvent[] {
  const parsed = parseMessageBody(body);
  assert.equal(parsed.kind, 'uploads');
  return parsed.kind === 'uploads' ? parsed.uploads : [];
}

function assertMalformed(body: string, pattern: RegExp): void {
  assert.throws(
    () => parseMessageBody(body),
    (error: unknown) => {
      assert.ok(
        error instanceof MalformedMessageError,
        `expected MalformedMessageError, got ${String(error)}`,
      );
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('parseMessageBody', () => {
  test('a raw S3 event yields one upload with every field', () => {
    assert.deepEqual(uploadsOf(rawEvent(s3Record())), [
      {
        bucket: 'ada-bucket',
        key: 'uploads/a.txt',
        size: 42,
        eTag: '0123456789abcdef0123456789abcdef',
        sequencer: '0055AED6DCD90281E5',
        eventTime: '2025-01-15T10:20:30.123Z',
        eventName: 'ObjectCreated:Put',
      },
    ]);
  });

  test('an SNS envelope yields the same upload as the raw event inside it', () => {
    const raw = rawEvent(s3Record());
    assert.deepEqual(uploadsOf(snsEnvelope(raw)), uploadsOf(raw));
  });

  test('the issue key arrives form-encoded and is yielded decoded', () => {
    const [upload] = uploadsOf(
      snsEnvelope(rawEvent(s3Record({ key: 'relat%C3%B3rios/jan+2025/a%2Bb+%C3%A7.txt' }))),
    );
    assert.equal(upload?.key, 'relatórios/jan 2025/a+b ç.txt');
  });

  test('s3:TestEvent raw is acknowledged as a test', () => {
    assert.deepEqual(parseMessageBody(testEvent), { kind: 'test' });
  });

  test('s3:TestEvent inside an SNS envelope is acknowledged as a test', () => {
    assert.deepEqual(parseMessageBody(snsEnvelope(testEvent)), { kind: 'test' });
  });

  test('every ObjectCreated kind counts: Put, Post, Copy, CompleteMultipartUpload', () => {
    const names = [
      'ObjectCreated:Put',
      'ObjectCreated:Post',
      'ObjectCreated:Copy',
      'ObjectCreated:CompleteMultipartUpload',
    ];
    const uploads = uploadsOf(rawEvent(...names.map((eventName) => s3Record({ eventName }))));
    assert.deepEqual(
      uploads.map((u) => u.eventName),
      names,
    );
  });

  test('a multipart eTag (with a part-count suffix) is kept as is', () => {
    const [upload] = uploadsOf(
      rawEvent(
        s3Record({
          eventName: 'ObjectCreated:CompleteMultipartUpload',
          eTag: 'd41d8cd98f00b204e9800998ecf8427e-12',
        }),
      ),
    );
    assert.equal(upload?.eTag, 'd41d8cd98f00b204e9800998ecf8427e-12');
  });

  test('a quoted eTag is unquoted', () => {
    const [upload] = uploadsOf(rawEvent(s3Record({ eTag: '"abc123"' })));
    assert.equal(upload?.eTag, 'abc123');
  });

  test('versionId is carried when present and absent when the bucket is unversioned', () => {
    const [versioned] = uploadsOf(rawEvent(s3Record({ versionId: '096fKKXTRTtl3on89fVO.nfljtsv6qko' })));
    assert.equal(versioned?.versionId, '096fKKXTRTtl3on89fVO.nfljtsv6qko');
    const [plain] = uploadsOf(rawEvent(s3Record()));
    assert.equal(plain !== undefined && 'versionId' in plain, false);
  });

  test('events other than ObjectCreated are not uploads and are reported as ignored', () => {
    const parsed = parseMessageBody(
      rawEvent(
        {
          eventSource: 'aws:s3',
          eventName: 'ObjectRemoved:Delete',
          eventTime: '2025-01-15T10:20:30.123Z',
          s3: {},
        },
        s3Record(),
      ),
    );
    assert.equal(parsed.kind, 'uploads');
    assert.ok(parsed.kind === 'uploads');
    assert.equal(parsed.uploads.length, 1);
    assert.deepEqual(parsed.ignored, ['ObjectRemoved:Delete']);
  });

  test('a zero-byte upload is valid', () => {
    const [upload] = uploadsOf(rawEvent(s3Record({ size: 0 })));
    assert.equal(upload?.size, 0);
  });

  describe('malformed bodies fail with a message saying what is wrong', () => {
    const cases: [string, string, RegExp][] = [
      ['not JSON', 'hello', /SQS message body is not JSON/],
      ['empty body', '', /SQS message body is not JSON/],
      ['JSON array', '[1,2]', /SQS message body is JSON but not an object/],
      ['JSON string', '"x"', /not an object/],
      ['unknown object', '{"foo":1}', /neither "Records" nor an SNS "Type" \(keys: foo\)/],
      ['Records not an array', '{"Records":{}}', /^Records is not an array/],
      ['record not an object', rawEvent(7), /Records\[0\] is not an object/],
      [
        'record without eventName',
        rawEvent({ s3: {} }),
        /Records\[0\]\.eventName is not a non-empty string \(missing\)/,
      ],
      [
        'foreign eventSource',
        rawEvent({ ...s3Record(), eventSource: 'aws:sqs' }),
        /Records\[0\]\.eventSource is "aws:sqs", expected "aws:s3"/,
      ],
      [
        'SNS type other than Notification',
        JSON.stringify({ Type: 'SubscriptionConfirmation' }),
        /SNS envelope Type is "SubscriptionConfirmation", expected "Notification"/,
      ],
      [
        'SNS Message not a string',
        JSON.stringify({ Type: 'Notification', Message: { Records: [] } }),
        /Message is not a string/,
      ],
      ['SNS Message not JSON', snsEnvelope('not json'), /SNS envelope Message is not JSON/],
      [
        'SNS Message without Records',
        snsEnvelope('{"a":1}'),
        /SNS envelope Message has no "Records" \(keys: a\)/,
      ],
      [
        'SNS Message with bad record',
        snsEnvelope(rawEvent(s3Record({ size: -1 }))),
        /Message\.Records\[0\]\.s3\.object\.size/,
      ],
      ['missing bucket', rawEvent(s3Record({ bucket: undefined })), /s3\.bucket is not an object/],
      [
        'empty bucket name',
        rawEvent(s3Record({ bucket: { name: '' } })),
        /s3\.bucket\.name is not a non-empty string/,
      ],
      ['empty key', rawEvent(s3Record({ key: '' })), /s3\.object\.key is not a non-empty string/],
      [
        'bad key encoding',
        rawEvent(s3Record({ key: 'a%E0%A4%A' })),
        /object key "a%E0%A4%A" is not valid URL encoding/,
      ],
      [
        'size as string',
        rawEvent(s3Record({ size: '42' })),
        /s3\.object\.size is not a non-negative integer \(got "42"\)/,
      ],
      ['fractional size', rawEvent(s3Record({ size: 1.5 })), /s3\.object\.size/],
      [
        'missing size',
        rawEvent(s3Record({ size: undefined })),
        /s3\.object\.size is not a non-negative integer \(missing\)/,
      ],
      ['missing eTag', rawEvent(s3Record({ eTag: undefined })), /s3\.object\.eTag/],
      ['empty eTag', rawEvent(s3Record({ eTag: '""' })), /s3\.object\.eTag/],
      [
        'sequencer not hex',
        rawEvent(s3Record({ sequencer: 'XYZ' })),
        /s3\.object\.sequencer is not a hexadecimal string/,
      ],
      ['missing sequencer', rawEvent(s3Record({ sequencer: undefined })), /s3\.object\.sequencer/],
      ['versionId not a string', rawEvent(s3Record({ versionId: 5 })), /s3\.object\.versionId/],
      [
        'eventTime not a time',
        rawEvent(s3Record({ eventTime: 'yesterday' })),
        /eventTime is not an ISO-8601 time/,
      ],
      [
        'second record bad',
        rawEvent(s3Record(), s3Record({ sequencer: 12 })),
        /Records\[1\]\.s3\.object\.sequencer/,
      ],
    ];
    for (const [name, body, pattern] of cases) {
      test(name, () => assertMalformed(body, pattern));
    }
  });
});

describe('decodeS3Key', () => {
  test('plus is a space, %2B is a plus, UTF-8 percent escapes decode', () => {
    assert.equal(decodeS3Key('relat%C3%B3rios/jan+2025/a%2Bb+%C3%A7.txt'), 'relatórios/jan 2025/a+b ç.txt');
  });

  test('a key without escapes is unchanged', () => {
    assert.equal(decodeS3Key('uploads/2025/report_01.csv'), 'uploads/2025/report_01.csv');
  });
});

describe('compareSequencers', () => {
  test('equal-length sequencers compare as hex', () => {
    assert.ok(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E6') < 0);
    assert.ok(compareSequencers('0055AED6DCD90281F0', '0055AED6DCD90281E6') > 0);
    assert.equal(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E5'), 0);
  });

  test('the shorter one is right-padded with zeros, not compared by length', () => {
    // As numbers 0xA < 0x0B, but S3 pads on the right: "A" becomes "A0", which is after "0B".
    assert.ok(compareSequencers('A', '0B') > 0);
    assert.ok(compareSequencers('0B', 'A') < 0);
    // A longer sequencer that only adds zeros is the same event position.
    assert.equal(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E50000'), 0);
    // A longer sequencer that adds non-zero digits is newer.
    assert.ok(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E50001') < 0);
    // A shorter sequencer with a larger prefix is newer than a longer one.
    assert.ok(compareSequencers('0055AED6DCD90281F', '0055AED6DCD90281E5FFFF') > 0);
  });

  test('case does not change the order', () => {
    assert.equal(compareSequencers('00ab', '00AB'), 0);
    assert.ok(compareSequencers('00ab', '00AC') < 0);
  });

  test('sorting by it puts events in sequencer order', () => {
    const shuffled = ['0055AED6DCD90281E6', '0055AED6DCD90281E5', '0055AED6DCD90281E5000001', '0055AED6DCD9'];
    assert.deepEqual(shuffled.sort(compareSequencers), [
      '0055AED6DCD9',
      '0055AED6DCD90281E5',
      '0055AED6DCD90281E5000001',
      '0055AED6DCD90281E6',
    ]);
  });
});

describe('eventIdentity', () => {
  const base: UploadEvent = {
    bucket: 'b',
    key: 'k',
    size: 1,
    eTag: 'e1',
    sequencer: '0A',
    eventTime: '2025-01-15T10:20:30.123Z',
    eventName: 'ObjectCreated:Put',
  };

  test('the same event redelivered has the same identity, whatever else differs', () => {
    assert.equal(eventIdentity(base), eventIdentity({ ...base, eventTime: '2025-01-16T00:00:00.000Z' }));
  });

  test('a different sequencer, eTag, key or bucket is a different identity', () => {
    const id = eventIdentity(base);
    assert.notEqual(id, eventIdentity({ ...base, sequencer: '0B' }));
    assert.notEqual(id, eventIdentity({ ...base, eTag: 'e2' }));
    assert.notEqual(id, eventIdentity({ ...base, key: 'k2' }));
    assert.notEqual(id, eventIdentity({ ...base, bucket: 'b2' }));
  });

  test('versionId, when present, identifies the version instead of the eTag', () => {
    const v1 = eventIdentity({ ...base, versionId: 'v1' });
    assert.equal(v1, eventIdentity({ ...base, versionId: 'v1', eTag: 'other' }));
    assert.notEqual(v1, eventIdentity({ ...base, versionId: 'v2' }));
    // a versionId equal to some eTag's text never collides with it
    assert.notEqual(eventIdentity({ ...base, versionId: 'e1' }), eventIdentity(base));
  });

  test('separators inside names cannot make two identities collide', () => {
    assert.notEqual(
      eventIdentity({ ...base, bucket: 'a', key: 'b/c' }),
      eventIdentity({ ...base, bucket: 'a/b', key: 'c' }),
    );
  });
});
