import { randomUUID } from 'node:crypto';
import { GetTopicAttributesCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
// fastify comes with fauxqs (its HTTP server); only its types are used here
import type { FastifyReply, FastifyRequest } from 'fastify';
import { buildApp } from 'fauxqs';
import {
  buildObjectCreatedEvent,
  buildTestEvent,
  type Destination,
  DestinationType,
  encodeEventKey,
  findOverlap,
  NotificationConfigError,
  type NotificationSettings,
  parseNotificationConfiguration,
  policyAllowsS3,
  renderNotificationConfiguration,
  Sequencer,
  selectDestinations,
} from './s3-events.ts';

// The local S3/SNS/SQS endpoint: fauxqs (pinned to 1.9.2; 2.x too lists bucket
// notifications and the bucket sub-resources as unsupported, see
// docs/local.md) in-process, plus what it lacks for this project, hooked into
// its HTTP server:
//  - bucket sub-resources (public access block, ownership, encryption, policy,
//    versioning, lifecycle, tagging, location): fauxqs routes these requests
//    to CreateBucket/ListObjects/DeleteBucket, so they are answered here,
//    stored per bucket and returned as S3 returns them;
//  - ListObjectVersions over the unversioned store (every object is its
//    only, "null", version);
//  - bucket notifications: the configuration is stored, validated, answered
//    by GetBucketNotificationConfiguration, an s3:TestEvent is sent when it is
//    saved, and every successful PutObject, CopyObject and
//    CompleteMultipartUpload publishes an S3 event record to the configured
//    topic (through the emulator's own SNS Publish, so SNS→SQS wraps it in the
//    envelope) or queue;
//  - SqsManagedSseEnabled, which fauxqs drops: remembered per queue and
//    reported by GetQueueAttributes (AWS default for new queues: true);
//  - an empty PUT without Content-Type (boto3's empty file), which fauxqs
//    answered with HTTP 500.

// The emulator accepts any credentials and checks none: these fixed dummy
// keys only let the SDK sign its requests. They are not secrets.
export const emulatorCredentials = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

interface EmulatorOptions {
  // 0 picks a free port (tests); the demo uses LOCAL_AWS_PORT (loadLocalConfig)
  port?: number;
  host?: string;
  // problems delivering events (a deleted topic); S3 drops those silently
  warn?: (message: string) => void;
}

export interface Emulator {
  endpoint: string;
  port: number;
  // events published so far (tests and the benchmark read it)
  readonly eventsPublished: number;
  // resolves once every event of the requests answered so far is delivered
  settled(): Promise<void>;
  stop(): Promise<void>;
}

const Subresource = {
  publicAccessBlock: 'publicAccessBlock',
  ownershipControls: 'ownershipControls',
  encryption: 'encryption',
  policy: 'policy',
  versioning: 'versioning',
  lifecycle: 'lifecycle',
  tagging: 'tagging',
  notification: 'notification',
  location: 'location',
  versions: 'versions',
} as const;
type Subresource = (typeof Subresource)[keyof typeof Subresource];

// Stored documents returned by Get*; the PUT body S3 receives is the same
// document the Get returns for all of these.
type StoredSubresource = Exclude<Subresource, 'notification' | 'location' | 'versions'>;

// Sub-resources this emulator does not implement: answered with 501 instead
// of letting fauxqs treat them as CreateBucket/ListObjects/DeleteBucket.
const unsupportedBucketSubresources = [
  'acl',
  'cors',
  'website',
  'logging',
  'replication',
  'accelerate',
  'analytics',
  'inventory',
  'metrics',
  'intelligent-tiering',
  'object-lock',
  'requestPayment',
  'policyStatus',
  'uploads',
];
// fauxqs would overwrite the object with the request body for these
const unsupportedObjectSubresources = [
  'tagging',
  'acl',
  'retention',
  'legal-hold',
  'restore',
  'select',
  'attributes',
  'torrent',
];

const xmlns = 'http://s3.amazonaws.com/doc/2006-03-01/';
const xmlHeader = '<?xml version="1.0" encoding="UTF-8"?>\n';

// What S3 answers for a bucket that never had the sub-resource set. Since
// April 2023 new buckets block public access, disable ACLs and encrypt with
// SSE-S3 by default.
const defaults: Partial<Record<StoredSubresource, string>> = {
  publicAccessBlock: `<PublicAccessBlockConfiguration xmlns="${xmlns}"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>`,
  ownershipControls: `<OwnershipControls xmlns="${xmlns}"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>`,
  encryption: `<ServerSideEncryptionConfiguration xmlns="${xmlns}"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`,
  versioning: `<VersioningConfiguration xmlns="${xmlns}"/>`,
};

// The error S3 returns when a sub-resource is not configured (or was deleted).
const notConfigured: Record<StoredSubresource, { code: string; message: string } | undefined> = {
  publicAccessBlock: {
    code: 'NoSuchPublicAccessBlockConfiguration',
    message: 'The public access block configuration was not found',
  },
  ownershipControls: {
    code: 'OwnershipControlsNotFoundError',
    message: 'The bucket ownership controls were not found',
  },
  encryption: undefined,
  policy: { code: 'NoSuchBucketPolicy', message: 'The bucket policy does not exist' },
  versioning: undefined,
  lifecycle: { code: 'NoSuchLifecycleConfiguration', message: 'The lifecycle configuration does not exist' },
  tagging: { code: 'NoSuchTagSet', message: 'The TagSet does not exist' },
};

interface BucketExtras {
  // undefined: never set (S3 default); null: deleted
  documents: Map<StoredSubresource, string | null>;
  notification?: NotificationSettings;
  location?: string;
}

type Params = { bucket?: string; '*'?: string };
type Query = Record<string, string | undefined>;

const listParser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  isArray: (name) => name === 'Contents',
});

function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function sendXml(reply: FastifyReply, status: number, xml: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/xml').send(`${xmlHeader}${xml}`);
}

function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  resource = '',
): FastifyReply {
  return sendXml(
    reply,
    status,
    `<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message><Resource>${escapeXml(resource)}</Resource><RequestId>${randomUUID()}</RequestId></Error>`,
  );
}

function bodyText(request: FastifyRequest): string {
  const body = request.body as Buffer | string | undefined;
  if (body === undefined) return '';
  return Buffer.isBuffer(body) ? body.toString('utf8') : String(body);
}

function encodePath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function regionOf(arn: string): string {
  return arn.split(':')[3] ?? 'us-east-1';
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? '127.0.0.1';
  const warn = options.warn ?? ((message: string) => process.stderr.write(`emulator: ${message}\n`));
  const app = buildApp({ logger: false });
  const buckets = new Map<string, BucketExtras>();
  const queueSse = new Map<string, string>();
  const sequencer = new Sequencer();
  let eventsPublished = 0;
  let endpoint = '';

  // Deliveries go through the emulator's own SNS and SQS APIs, over HTTP, as
  // S3 calls those services.
  const clients = new Map<string, { sns: SNSClient; sqs: SQSClient }>();
  function clientsFor(region: string) {
    let pair = clients.get(region);
    if (pair === undefined) {
      const config = { endpoint, region, credentials: emulatorCredentials };
      pair = { sns: new SNSClient(config), sqs: new SQSClient(config) };
      clients.set(region, pair);
    }
    return pair;
  }

  function extras(bucket: string): BucketExtras {
    let entry = buckets.get(bucket);
    if (entry === undefined) {
      entry = { documents: new Map() };
      buckets.set(bucket, entry);
    }
    return entry;
  }

  async function bucketExists(bucket: string): Promise<boolean> {
    const response = await app.inject({ method: 'HEAD', url: `/${encodeURIComponent(bucket)}` });
    return response.statusCode === 200;
  }

  async function queueUrlOf(queueArn: string): Promise<string> {
    const parts = queueArn.split(':');
    const { sqs } = clientsFor(regionOf(queueArn));
    const result = await sqs.send(
      new GetQueueUrlCommand({ QueueName: parts[5], QueueOwnerAWSAccountId: parts[4] }),
    );
    return result.QueueUrl ?? '';
  }

  async function deliver(destination: Destination, message: string): Promise<void> {
    const { sns, sqs } = clientsFor(regionOf(destination.arn));
    if (destination.type === DestinationType.topic) {
      await sns.send(
        new PublishCommand({
          TopicArn: destination.arn,
          Message: message,
          Subject: 'Amazon S3 Notification',
        }),
      );
    } else {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: await queueUrlOf(destination.arn), MessageBody: message }),
      );
    }
    eventsPublished += 1;
  }

  async function validateDestination(bucket: string, destination: Destination): Promise<boolean> {
    const bucketArn = `arn:aws:s3:::${bucket}`;
    const { sns, sqs } = clientsFor(regionOf(destination.arn));
    try {
      if (destination.type === DestinationType.topic) {
        const topic = await sns.send(new GetTopicAttributesCommand({ TopicArn: destination.arn }));
        return policyAllowsS3(topic.Attributes?.Policy, 'sns:Publish', bucketArn);
      }
      const queue = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: await queueUrlOf(destination.arn),
          AttributeNames: ['Policy'],
        }),
      );
      return policyAllowsS3(queue.Attributes?.Policy, 'sqs:SendMessage', bucketArn);
    } catch {
      return false;
    }
  }

  async function saveNotification(request: FastifyRequest, reply: FastifyReply, bucket: string) {
    let settings: NotificationSettings;
    try {
      settings = parseNotificationConfiguration(bodyText(request));
    } catch (error) {
      if (error instanceof NotificationConfigError)
        return sendError(reply, 400, error.code, error.message, bucket);
      throw error;
    }
    if (settings.lambdaFunctions.length > 0) {
      return sendError(
        reply,
        501,
        'NotImplemented',
        'the local emulator delivers to SNS topics and SQS queues only',
        bucket,
      );
    }
    const overlap = findOverlap(settings.destinations);
    if (overlap !== undefined) {
      return sendError(
        reply,
        400,
        'InvalidArgument',
        `Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the prefixes are overlapping for the same event type (${overlap.join(', ')}).`,
        bucket,
      );
    }
    const invalid: Destination[] = [];
    for (const destination of settings.destinations) {
      if (!(await validateDestination(bucket, destination))) invalid.push(destination);
    }
    if (invalid.length > 0) {
      return sendError(
        reply,
        400,
        'InvalidArgument',
        `Unable to validate the following destination configurations: ${invalid.map((d) => d.arn).join(', ')} (the topic or queue must exist and its policy must let s3.amazonaws.com send from this bucket)`,
        bucket,
      );
    }
    extras(bucket).notification = settings;
    // S3 sends a test event to the destinations when a configuration is saved
    const requestId = randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
    const message = JSON.stringify(buildTestEvent(bucket, requestId));
    for (const destination of settings.destinations) {
      await deliver(destination, message).catch((error) =>
        warn(`cannot send s3:TestEvent to ${destination.arn}: ${String(error)}`),
      );
    }
    return reply.code(200).send();
  }

  async function listVersions(reply: FastifyReply, bucket: string, query: Query) {
    const maxKeys = Math.min(Number(query['max-keys'] ?? 1000) || 1000, 1000);
    const search = new URLSearchParams({ 'list-type': '2', 'max-keys': String(maxKeys) });
    if (query.prefix) search.set('prefix', query.prefix);
    if (query['key-marker']) search.set('start-after', query['key-marker']);
    const listing = await app.inject({ method: 'GET', url: `/${encodeURIComponent(bucket)}?${search}` });
    if (listing.statusCode !== 200)
      return reply.code(listing.statusCode).header('content-type', 'application/xml').send(listing.body);
    const parsed = listParser.parse(listing.body) as {
      ListBucketResult?: { Contents?: Record<string, string>[]; IsTruncated?: string };
    };
    const contents = parsed.ListBucketResult?.Contents ?? [];
    const truncated = parsed.ListBucketResult?.IsTruncated === 'true';
    const versions = contents
      .map(
        (o) =>
          `<Version><Key>${escapeXml(o.Key ?? '')}</Key><VersionId>null</VersionId><IsLatest>true</IsLatest><LastModified>${o.LastModified}</LastModified><ETag>${escapeXml(o.ETag ?? '')}</ETag><Size>${o.Size}</Size><StorageClass>STANDARD</StorageClass></Version>`,
      )
      .join('');
    const last = contents.at(-1)?.Key ?? '';
    return sendXml(
      reply,
      200,
      `<ListVersionsResult xmlns="${xmlns}"><Name>${escapeXml(bucket)}</Name><Prefix>${escapeXml(query.prefix ?? '')}</Prefix><KeyMarker>${escapeXml(query['key-marker'] ?? '')}</KeyMarker><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextKeyMarker>${escapeXml(last)}</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker>` : ''}${versions}</ListVersionsResult>`,
    );
  }

  async function handleSubresource(
    request: FastifyRequest,
    reply: FastifyReply,
    bucket: string,
    subresource: Subresource,
  ): Promise<FastifyReply> {
    if (!(await bucketExists(bucket))) {
      return sendError(reply, 404, 'NoSuchBucket', 'The specified bucket does not exist', bucket);
    }
    const method = request.method;
    const entry = extras(bucket);
    if (subresource === Subresource.versions) {
      if (method !== 'GET') return sendError(reply, 405, 'MethodNotAllowed', 'Use GET for ?versions', bucket);
      return listVersions(reply, bucket, request.query as Query);
    }
    if (subresource === Subresource.location) {
      const location = entry.location ?? '';
      return sendXml(
        reply,
        200,
        `<LocationConstraint xmlns="${xmlns}">${escapeXml(location)}</LocationConstraint>`,
      );
    }
    if (subresource === Subresource.notification) {
      if (method === 'PUT') return saveNotification(request, reply, bucket);
      if (method === 'GET') {
        const settings = entry.notification ?? { destinations: [], lambdaFunctions: [], eventBridge: false };
        return reply
          .code(200)
          .header('content-type', 'application/xml')
          .send(renderNotificationConfiguration(settings));
      }
      return sendError(reply, 405, 'MethodNotAllowed', 'Use GET or PUT for ?notification', bucket);
    }
    const stored = entry.documents.get(subresource);
    if (method === 'PUT') {
      const body = bodyText(request);
      if (subresource === Subresource.policy) {
        try {
          JSON.parse(body);
        } catch {
          return sendError(reply, 400, 'MalformedPolicy', 'Policies must be valid JSON', bucket);
        }
      } else if (XMLValidator.validate(body) !== true) {
        return sendError(reply, 400, 'MalformedXML', 'The XML you provided was not well-formed', bucket);
      }
      entry.documents.set(subresource, body);
      return reply.code(subresource === Subresource.policy ? 204 : 200).send();
    }
    if (method === 'DELETE') {
      entry.documents.set(subresource, null);
      return reply.code(204).send();
    }
    if (method !== 'GET')
      return sendError(reply, 405, 'MethodNotAllowed', `Unsupported method for ?${subresource}`, bucket);
    const document = stored === undefined ? defaults[subresource] : stored === null ? undefined : stored;
    if (document === undefined) {
      const missing = notConfigured[subresource] ?? {
        code: 'NoSuchConfiguration',
        message: 'Not configured',
      };
      return sendError(reply, 404, missing.code, missing.message, bucket);
    }
    if (subresource === Subresource.policy) {
      return reply.code(200).header('content-type', 'application/json').send(document);
    }
    return reply
      .code(200)
      .header('content-type', 'application/xml')
      .send(document.startsWith('<?xml') ? document : `${xmlHeader}${document}`);
  }

  // S3 sub-resource requests are intercepted before fauxqs's routes run.
  app.addHook('preHandler', async (request, reply) => {
    const params = (request.params ?? {}) as Params;
    if (params.bucket === undefined) return;
    // Fastify parses no body when a request has neither a body nor a
    // Content-Type, and fauxqs's PutObject/UploadPart then fail on the missing
    // Buffer (HTTP 500). boto3 and `aws s3 cp` upload an empty file exactly so;
    // S3 stores it as an empty object.
    if (request.method === 'PUT' && request.body === undefined) request.body = Buffer.alloc(0);
    const query = (request.query ?? {}) as Query;
    const key = params['*'] ?? '';
    if (key === '') {
      const subresource = (Object.values(Subresource) as string[]).find((name) => name in query);
      if (subresource !== undefined)
        return handleSubresource(request, reply, params.bucket, subresource as Subresource);
      const unsupported = unsupportedBucketSubresources.find((name) => name in query);
      if (unsupported !== undefined && !(unsupported === 'uploads' && request.method === 'POST')) {
        return sendError(
          reply,
          501,
          'NotImplemented',
          `the local emulator does not implement ?${unsupported}`,
          params.bucket,
        );
      }
      if (request.method === 'PUT') {
        const location = /<LocationConstraint>([^<]*)<\/LocationConstraint>/.exec(bodyText(request))?.[1];
        if (location !== undefined && !buckets.get(params.bucket)?.location)
          extras(params.bucket).location = location;
      }
      return;
    }
    const unsupported = unsupportedObjectSubresources.find((name) => name in query);
    if (unsupported !== undefined) {
      return sendError(
        reply,
        501,
        'NotImplemented',
        `the local emulator does not implement object ?${unsupported}`,
        `${params.bucket}/${key}`,
      );
    }
  });

  function objectCreatedName(request: FastifyRequest, query: Query): string | undefined {
    if (request.method === 'PUT' && query.uploadId === undefined && query.partNumber === undefined) {
      return request.headers['x-amz-copy-source'] === undefined ? 'ObjectCreated:Put' : 'ObjectCreated:Copy';
    }
    if (request.method === 'POST' && query.uploadId !== undefined)
      return 'ObjectCreated:CompleteMultipartUpload';
    return undefined;
  }

  // The part that must happen while the response is being sent: the event's
  // identity (ETag, sequencer, time) in completion order. Everything slow
  // (size lookup, delivery) runs after, as S3 delivers asynchronously.
  function captureObjectCreated(
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    bucket: string,
    key: string,
    eventName: string,
  ): (() => Promise<void>) | undefined {
    const destinations = selectDestinations(
      buckets.get(bucket)?.notification,
      eventName,
      encodeEventKey(key),
    );
    if (destinations.length === 0) return undefined;
    const body =
      typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '';
    // S3 may answer CompleteMultipartUpload with 200 and an error document
    if (body.includes('<Error>')) return undefined;
    const eTag = (/<ETag>([^<]*)<\/ETag>/.exec(body)?.[1] ?? String(reply.getHeader('etag') ?? ''))
      .replace(/&quot;/g, '')
      .replace(/"/g, '');
    const base = {
      eventName,
      eventTime: new Date(),
      bucket,
      key,
      eTag,
      sequencer: sequencer.next(),
      requestId: String(reply.getHeader('x-amz-request-id') ?? randomUUID()),
      sourceIp: request.ip,
    };
    const putSize = eventName === 'ObjectCreated:Put' ? uploadedSize(request) : undefined;
    return async () => {
      let size = putSize;
      if (size === undefined) {
        // Copy and CompleteMultipartUpload: the size is the stored object's
        const head = await app.inject({
          method: 'HEAD',
          url: `/${encodeURIComponent(bucket)}/${encodePath(key)}`,
        });
        if (head.statusCode !== 200) return;
        size = Number(head.headers['content-length'] ?? 0);
      }
      for (const destination of destinations) {
        const message = JSON.stringify(
          buildObjectCreatedEvent({
            ...base,
            size,
            region: regionOf(destination.arn),
            configurationId: destination.id,
          }),
        );
        await deliver(destination, message).catch((error) =>
          warn(`cannot deliver ${eventName} for ${bucket}/${key} to ${destination.arn}: ${String(error)}`),
        );
      }
    };
  }

  // PutObject's body as stored: aws-chunked bodies (streamed uploads) announce
  // the decoded length in x-amz-decoded-content-length.
  function uploadedSize(request: FastifyRequest): number | undefined {
    const decoded = request.headers['x-amz-decoded-content-length'];
    if (decoded !== undefined) return Number(decoded);
    const body = request.body as Buffer | undefined;
    return Buffer.isBuffer(body) ? body.length : body === undefined ? 0 : undefined;
  }

  const inFlight = new Set<Promise<void>>();
  function track(job: () => Promise<void>): void {
    const running = job()
      .catch((error) => warn(`event delivery failed: ${String(error)}`))
      .finally(() => inFlight.delete(running));
    inFlight.add(running);
  }

  async function settled(): Promise<void> {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  }

  function sqsQueueName(url: unknown): string {
    return (
      String(url ?? '')
        .split('/')
        .pop() ?? ''
    );
  }

  function completeSqsAttributes(request: FastifyRequest, payload: unknown): unknown {
    const target = String(request.headers['x-amz-target'] ?? '');
    const input = (request.body ?? {}) as {
      QueueName?: string;
      QueueUrl?: string;
      Attributes?: Record<string, string>;
      AttributeNames?: string[];
    };
    if (target === 'AmazonSQS.CreateQueue' || target === 'AmazonSQS.SetQueueAttributes') {
      const name = input.QueueName ?? sqsQueueName(input.QueueUrl);
      const sse = input.Attributes?.SqsManagedSseEnabled;
      const kms = input.Attributes?.KmsMasterKeyId;
      if (sse !== undefined) queueSse.set(name, sse);
      else if (kms !== undefined && kms !== '') queueSse.set(name, 'false');
      return payload;
    }
    if (target === 'AmazonSQS.DeleteQueue') {
      queueSse.delete(sqsQueueName(input.QueueUrl));
      return payload;
    }
    if (target === 'AmazonSQS.GetQueueAttributes') {
      const names = input.AttributeNames ?? [];
      if (!names.includes('All') && !names.includes('SqsManagedSseEnabled')) return payload;
      const output = JSON.parse(String(payload)) as { Attributes?: Record<string, string> };
      output.Attributes = {
        ...output.Attributes,
        SqsManagedSseEnabled: queueSse.get(sqsQueueName(input.QueueUrl)) ?? 'true',
      };
      return JSON.stringify(output);
    }
    return payload;
  }

  // Observes successful responses: object creations become events, a deleted
  // bucket loses its sub-resources, SQS attributes are completed. Synchronous
  // on purpose: fauxqs's handlers are async functions that return after
  // reply.send(), and Fastify sends again (running onSend twice) if the reply
  // is still unsent when such a handler's promise settles.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode !== 200 && reply.statusCode !== 204) return done(null, payload);
    const params = (request.params ?? {}) as Params;
    if (params.bucket === undefined) {
      return done(
        null,
        request.headers['x-amz-target'] === undefined ? payload : completeSqsAttributes(request, payload),
      );
    }
    const query = (request.query ?? {}) as Query;
    const key = params['*'] ?? '';
    if (key === '') {
      if (request.method === 'DELETE' && Object.keys(query).length === 0) buckets.delete(params.bucket);
      return done(null, payload);
    }
    const eventName = objectCreatedName(request, query);
    const job =
      eventName === undefined
        ? undefined
        : captureObjectCreated(request, reply, payload, params.bucket, key, eventName);
    if (job !== undefined) track(job);
    return done(null, payload);
  });

  const address = await app.listen({ port: options.port ?? 0, host });
  const port = Number(new URL(address).port);
  endpoint = `http://${host}:${port}`;
  return {
    endpoint,
    port,
    get eventsPublished() {
      return eventsPublished;
    },
    settled,
    async stop() {
      await settled();
      for (const pair of clients.values()) {
        pair.sns.destroy();
        pair.sqs.destroy();
      }
      await app.close();
    },
  };
}
