import { describeError } from '../lib/errors.ts';

// Turns one SQS message body into the uploads it announces. The body is either
// an SNS envelope whose `Message` is the S3 event as a JSON string (SNS → SQS
// without raw message delivery) or the S3 event itself (raw delivery, or S3 → SQS
// directly). Shapes follow the S3 "Event message structure" documentation.

export interface UploadEvent {
  bucket: string;
  key: string; // decoded
  size: number;
  eTag: string; // no quotes
  versionId?: string;
  sequencer: string;
  eventTime: string; // ISO
  eventName: string;
}

// `ignored` lists the event names of records that are not ObjectCreated:*, so
// the caller can log them; it is present only when there were some.
type ParsedMessage = { kind: 'test' } | { kind: 'uploads'; uploads: UploadEvent[]; ignored?: string[] };

export class MalformedMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MalformedMessageError';
  }
}

// S3 sends this once when a notification configuration is saved; it has no Records.
const testEventName = 's3:TestEvent';
// Every ObjectCreated:* counts: Put, Post, Copy, CompleteMultipartUpload.
const createdPrefix = 'ObjectCreated:';
const sequencerPattern = /^[0-9A-Fa-f]+$/;
const expected = 'expected an S3 event notification ({"Records": [...]}) or an SNS envelope containing one';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return `got ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MalformedMessageError(`${what} is not JSON (${describeError(error)}); ${expected}`, {
      cause: error,
    });
  }
}

function isTestEvent(value: Json): boolean {
  return value.Event === testEventName;
}

export function parseMessageBody(body: string): ParsedMessage {
  const outer = parseJson(body, 'SQS message body');
  if (!isObject(outer)) {
    throw new MalformedMessageError(
      `SQS message body is JSON but not an object (${describeValue(outer)}); ${expected}`,
    );
  }
  if (isTestEvent(outer)) return { kind: 'test' };
  if ('Records' in outer) return parseS3Event(outer, '');
  if (outer.Type !== undefined) return parseSnsEnvelope(outer);
  throw new MalformedMessageError(
    `SQS message body has neither "Records" nor an SNS "Type" (keys: ${Object.keys(outer).join(', ') || 'none'}); ${expected}`,
  );
}

function parseSnsEnvelope(envelope: Json): ParsedMessage {
  if (envelope.Type !== 'Notification') {
    throw new MalformedMessageError(
      `SNS envelope Type is ${JSON.stringify(envelope.Type) ?? 'missing'}, expected "Notification"; only S3 event notifications are processed`,
    );
  }
  if (typeof envelope.Message !== 'string') {
    throw new MalformedMessageError(
      `SNS envelope Message is not a string (${describeValue(envelope.Message)}); it must hold the S3 event as JSON text`,
    );
  }
  const inner = parseJson(envelope.Message, 'SNS envelope Message');
  if (!isObject(inner)) {
    throw new MalformedMessageError(
      `SNS envelope Message is JSON but not an object (${describeValue(inner)}); ${expected}`,
    );
  }
  if (isTestEvent(inner)) return { kind: 'test' };
  if (!('Records' in inner)) {
    throw new MalformedMessageError(
      `SNS envelope Message has no "Records" (keys: ${Object.keys(inner).join(', ') || 'none'}); ${expected}`,
    );
  }
  return parseS3Event(inner, 'Message.');
}

function parseS3Event(event: Json, at: string): ParsedMessage {
  const records = event.Records;
  if (!Array.isArray(records)) {
    throw new MalformedMessageError(`${at}Records is not an array (${describeValue(records)}); ${expected}`);
  }
  const uploads: UploadEvent[] = [];
  const ignored: string[] = [];
  records.forEach((record: unknown, index) => {
    const path = `${at}Records[${index}]`;
    if (!isObject(record)) {
      throw new MalformedMessageError(`${path} is not an object (${describeValue(record)})`);
    }
    const eventName = record.eventName;
    if (typeof eventName !== 'string' || eventName === '') {
      throw new MalformedMessageError(
        `${path}.eventName is not a non-empty string (${describeValue(eventName)})`,
      );
    }
    if (record.eventSource !== undefined && record.eventSource !== 'aws:s3') {
      throw new MalformedMessageError(
        `${path}.eventSource is ${JSON.stringify(record.eventSource)}, expected "aws:s3"`,
      );
    }
    if (eventName.startsWith(createdPrefix)) uploads.push(parseCreatedRecord(record, eventName, path));
    else ignored.push(eventName);
  });
  return ignored.length === 0 ? { kind: 'uploads', uploads } : { kind: 'uploads', uploads, ignored };
}

function parseCreatedRecord(record: Json, eventName: string, path: string): UploadEvent {
  const s3 = record.s3;
  if (!isObject(s3)) throw new MalformedMessageError(`${path}.s3 is not an object (${describeValue(s3)})`);
  const bucket = s3.bucket;
  if (!isObject(bucket)) {
    throw new MalformedMessageError(`${path}.s3.bucket is not an object (${describeValue(bucket)})`);
  }
  const object = s3.object;
  if (!isObject(object)) {
    throw new MalformedMessageError(`${path}.s3.object is not an object (${describeValue(object)})`);
  }

  const bucketName = bucket.name;
  if (typeof bucketName !== 'string' || bucketName === '') {
    throw new MalformedMessageError(
      `${path}.s3.bucket.name is not a non-empty string (${describeValue(bucketName)})`,
    );
  }
  const rawKey = object.key;
  if (typeof rawKey !== 'string' || rawKey === '') {
    throw new MalformedMessageError(
      `${path}.s3.object.key is not a non-empty string (${describeValue(rawKey)})`,
    );
  }
  const key = decodeS3Key(rawKey);
  const size = object.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new MalformedMessageError(
      `${path}.s3.object.size is not a non-negative integer (${describeValue(size)})`,
    );
  }
  const rawETag = object.eTag;
  // S3 sends the ETag unquoted in events; strip quotes anyway so IfMatch quoting stays uniform.
  const eTag = typeof rawETag === 'string' ? rawETag.replace(/^"(.*)"$/, '$1') : undefined;
  if (eTag === undefined || eTag === '' || eTag.includes('"')) {
    throw new MalformedMessageError(
      `${path}.s3.object.eTag is not a non-empty ETag string (${describeValue(rawETag)})`,
    );
  }
  const sequencer = object.sequencer;
  if (typeof sequencer !== 'string' || !sequencerPattern.test(sequencer)) {
    throw new MalformedMessageError(
      `${path}.s3.object.sequencer is not a hexadecimal string (${describeValue(sequencer)})`,
    );
  }
  const versionId = object.versionId;
  if (versionId !== undefined && versionId !== null && (typeof versionId !== 'string' || versionId === '')) {
    throw new MalformedMessageError(
      `${path}.s3.object.versionId is not a non-empty string (${describeValue(versionId)})`,
    );
  }
  const eventTime = record.eventTime;
  if (typeof eventTime !== 'string' || Number.isNaN(Date.parse(eventTime))) {
    throw new MalformedMessageError(
      `${path}.eventTime is not an ISO-8601 time (${describeValue(eventTime)})`,
    );
  }

  const upload: UploadEvent = {
    bucket: bucketName,
    key,
    size,
    eTag,
    sequencer,
    eventTime: new Date(eventTime).toISOString(),
    eventName,
  };
  if (typeof versionId === 'string') upload.versionId = versionId;
  return upload;
}

// Keys in S3 events are form-URL-encoded: a space arrives as `+`, a literal `+` as `%2B`.
export function decodeS3Key(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch (error) {
    throw new MalformedMessageError(`object key ${JSON.stringify(encoded)} is not valid URL encoding`, {
      cause: error,
    });
  }
}

// S3 sequencers are hex strings of varying length: right-pad the shorter with
// zeros, then equal-length hex compares lexicographically (S3 event message
// structure: "compare the strings after right padding the shorter one with zeros").
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const left = a.toUpperCase().padEnd(width, '0');
  const right = b.toUpperCase().padEnd(width, '0');
  return left < right ? -1 : left > right ? 1 : 0;
}

// The dedupe key material: the same object version announced twice has the same
// identity whatever SQS message carried it. versionId, when the bucket is
// versioned, names the version; otherwise the eTag stands in for it. The tag in
// front keeps a versionId from ever colliding with an eTag of the same text.
export function eventIdentity(u: UploadEvent): string {
  const version = u.versionId === undefined ? `e:${u.eTag}` : `v:${u.versionId}`;
  return JSON.stringify([u.bucket, u.key, version, u.sequencer.toUpperCase()]);
}
