import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CreateBucketCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSEvent } from 'aws-lambda';
import { createFunction } from '../../../lambda-image/app.ts';
import { createConnections } from '../../../lambda-image/connections.ts';
import { qualifiedTable } from '../../../lambda-image/schema.ts';
import { loadRuntimeConfig, loadStackConfig } from '../../../lib/config.ts';
import { metricNamespace } from '../../../lib/metrics.ts';
import { stackNames } from '../../../lib/names.ts';
import { freePort } from '../../../lib/net.ts';
import { buildObjectCreatedEvent } from '../../../lib/s3-event.ts';
import { emulatorCredentials, startEmulator } from '../../../local/emulator.ts';
import { toTagList } from '../../../provision/tags.ts';
import { recordClientCalls } from '../../fakes/calls.ts';
import { installSecretsManagerFake } from '../../fakes/secrets-manager.ts';
import { testBufferSettings } from '../../function/fixtures.ts';
import type { Scope } from '../../support/iam/actions.ts';
import type { Request } from '../../support/iam/evaluate.ts';
import { recordAuthorizations } from '../../support/iam/recorder.ts';
import { createTestRedis, createTestSchema } from '../../support/services.ts';

// The counting and flush functions' own AWS calls, made by their code on the
// local emulator and recorded by a middleware on the clients given to it:
//  - the cold start reads the cache token and the database secret from
//    Secrets Manager by ARN (lambda-image/connections.ts, the deployed
//    configuration; the Secrets Manager fake answers);
//  - one SQS batch, shaped as the event source mapping delivers it, with
//    three uploads: one named by version, as a versioned bucket's events
//    always are (GetObject with VersionId: s3:GetObjectVersion); one without
//    a version, as the events of a bucket whose versioning was suspended are
//    (s3:GetObject); one deleted since its event (GetObject answers 404:
//    S3 says so only to a caller that may s3:ListBucket);
//  - a scheduled flush.
// The emulator keeps no versions: every object is its one "null" version
// (ListObjectVersions), so the events name that version; GetObject sends it
// as S3 would get it, and the request is mapped and decided as S3 authorizes
// a read by version. What the function then counts and commits is checked
// too, so the recorded calls are the ones of a run that worked.

export interface FunctionTarget {
  scope: Scope;
  stage: string;
  secretArns: { cache: string; database: string };
}

export interface FunctionRecording {
  requests: Request[];
  unmapped: string[];
}

export async function recordFunctionCalls(target: FunctionTarget): Promise<FunctionRecording> {
  const { scope } = target;
  const names = stackNames(loadStackConfig({ STAGE: target.stage }), scope);
  const emulator = await startEmulator({ port: 0 });
  const secrets = installSecretsManagerFake({ accountId: scope.accountId, region: scope.region });
  const db = await createTestSchema(`iam_fn_${target.stage}`);
  const cache = await createTestRedis(`iam_fn_${target.stage}`);
  const s3 = new S3Client({
    region: scope.region,
    endpoint: emulator.endpoint,
    forcePathStyle: true,
    credentials: emulatorCredentials,
  });
  const secretsClient = new SecretsManagerClient({ region: scope.region, credentials: emulatorCredentials });
  // the secrets' tags, which the boundary's condition on the database secret reads
  const log = recordAuthorizations(scope, {
    tagsOf: (arn) => {
      const secret = secrets.state.secrets.get(arn);
      return secret === undefined
        ? undefined
        : Object.fromEntries(secret.Tags.map((tag) => [tag.Key ?? '', tag.Value ?? '']));
    },
  });
  try {
    // the bucket and its uploads, put there by someone else before the function runs
    const bucket = names.bucket;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const put = async (key: string, body: string) =>
      ((await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))).ETag ?? '').replaceAll(
        '"',
        '',
      );
    const versioned = {
      key: `${names.uploadsPrefix}versioned.csv`,
      eTag: await put(`${names.uploadsPrefix}versioned.csv`, 'a\nb\nc\n'),
    };
    const unversioned = {
      key: `${names.uploadsPrefix}suspended.csv`,
      eTag: await put(`${names.uploadsPrefix}suspended.csv`, 'a\n'),
    };
    const { Versions = [] } = await s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: versioned.key }),
    );
    const versionId = Versions.find((v) => v.Key === versioned.key)?.VersionId;
    assert.ok(versionId, 'the emulator lists the object’s version');

    recordClientCalls(s3, 's3');
    // as up leaves them: the token secret tagged with the stack, the master
    // secret tagged by RDS with its instance
    const dbArn = `arn:${scope.partition}:rds:${scope.region}:${scope.accountId}:db:${names.db}`;
    for (const [arn, value, Tags] of [
      [target.secretArns.cache, 'cache-auth-token', toTagList(names.tags)],
      [
        target.secretArns.database,
        JSON.stringify({ username: 'linecount', password: 'secret' }),
        [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }],
      ],
    ] as const) {
      secrets.state.secrets.set(arn, {
        ARN: arn,
        Name: arn.split(':secret:')[1] ?? arn,
        SecretString: value,
        Tags: [...Tags],
      });
    }
    // the cold start: both connections come from their secrets; nothing
    // listens on the closed port and the pool connects lazily, so only the
    // secret reads happen here
    const closedPort = await freePort();
    const deployed = loadRuntimeConfig({
      AWS_REGION: scope.region,
      STAGE: target.stage,
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(closedPort),
      REDIS_TLS: 'false',
      REDIS_AUTH_SECRET_ARN: target.secretArns.cache,
      DB_HOST: '127.0.0.1',
      DB_PORT: String(closedPort),
      DB_SECRET_ARN: target.secretArns.database,
      DB_SCHEMA: db.schema,
    });
    const connections = await createConnections(deployed, {
      secrets: secretsClient,
      onError: () => undefined,
    });
    await connections.close();

    // EMF lines would go to stdout: this run keeps them to itself
    const metrics = new Metrics({ namespace: metricNamespace, serviceName: 'ada-linecount-iam' });
    metrics.publishStoredMetrics = () => {
      metrics.clearMetrics();
      return metrics;
    };
    const fn = createFunction({
      s3,
      redis: cache.redis,
      pool: db.pool,
      buffer: testBufferSettings(`${cache.prefix}fn:`),
      schema: db.schema,
      logger: new Logger({ serviceName: 'ada-linecount-iam', logLevel: 'SILENT' }),
      metrics,
    });
    const records: { key: string; eTag: string; versionId?: string }[] = [
      { ...versioned, versionId },
      unversioned,
      {
        key: `${names.uploadsPrefix}deleted.csv`,
        eTag: 'd41d8cd98f00b204e9800998ecf8427e',
        versionId: 'deleted-version',
      },
    ];
    const event: SQSEvent = {
      Records: records.map((upload, index) => {
        const body = buildObjectCreatedEvent({
          region: scope.region,
          eventName: 'ObjectCreated:Put',
          eventTime: new Date(),
          bucket,
          key: upload.key,
          size: 1,
          eTag: upload.eTag,
          versionId: upload.versionId,
          sequencer: `0055AED6DCD9028${index}E0`,
          requestId: 'R',
          sourceIp: '127.0.0.1',
          configurationId: `${names.base}-uploads`,
          principalId: 'AWS:AIDAEXAMPLE',
          hostId: 'H',
        });
        const messageId = randomUUID();
        return {
          messageId,
          receiptHandle: `handle-${messageId}`,
          body: JSON.stringify({
            Type: 'Notification',
            MessageId: randomUUID(),
            Message: JSON.stringify(body),
          }),
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(Date.now()),
            SenderId: 'sns',
            ApproximateFirstReceiveTimestamp: String(Date.now()),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: `arn:${scope.partition}:sqs:${scope.region}:${scope.accountId}:${names.queue}`,
          awsRegion: scope.region,
        };
      }),
    };
    const response = await fn.handler(event);
    assert.deepEqual(response, { batchItemFailures: [] }, 'every message counted or skipped');
    await fn.flushHandler();
    const { rows } = await db.pool.query<{ file_name: string; line_count: string }>(
      `SELECT file_name, line_count FROM ${qualifiedTable(db.schema)} ORDER BY file_name`,
    );
    assert.deepEqual(
      rows.map((r) => [r.file_name, Number(r.line_count)]),
      [
        [unversioned.key, 1],
        [versioned.key, 3],
      ],
    );
    return { requests: log.caller, unmapped: log.unmapped };
  } finally {
    log.stop();
    s3.destroy();
    secretsClient.destroy();
    secrets.restore();
    await cache.cleanup();
    await db.drop();
    await emulator.stop();
  }
}
