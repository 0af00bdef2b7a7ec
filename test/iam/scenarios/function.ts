import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { loadDeployConfig, loadRuntimeConfig } from '../../../lib/config.ts';
import { metricNamespace } from '../../../lib/metrics.ts';
import { stackNames } from '../../../lib/names.ts';
import { freePort } from '../../../lib/net.ts';
import { buildObjectCreatedEvent } from '../../../lib/s3-event.ts';
import { emulatorCredentials, startEmulator } from '../../../local/emulator.ts';
import { functionEnvironment } from '../../../provision/resources/function.ts';
import { toTagList } from '../../../provision/tags.ts';
import { recordCall, recordClientCalls } from '../../fakes/calls.ts';
import { installSecretsManagerFake } from '../../fakes/secrets-manager.ts';
import type { Scope } from '../../support/iam/actions.ts';
import type { Request } from '../../support/iam/evaluate.ts';
import { recordAuthorizations } from '../../support/iam/recorder.ts';
import type { TestMigrationTarget } from '../../support/migration.ts';
import { generateCertificate, iamTokenCheck, PostgresGate } from '../../support/pg-gate.ts';
import { testBufferSettings } from '../../support/records.ts';
import { createTestRedis, testDatabaseUrl } from '../../support/services.ts';

// The counting and flush functions' own AWS calls, made by their code on the
// local emulator and recorded by a middleware on the clients given to it:
//  - the cold start reads the cache token from Secrets Manager by ARN
//    (lambda-image/connections.ts, with the configuration up.ts gives the
//    function; the Secrets Manager fake answers);
//  - every PostgreSQL connection signs in as linecount_app with an IAM
//    authentication token, to a front that requires TLS and verifies the
//    token's signature as RDS does (test/support/pg-gate.ts) and records the
//    sign-in, which RDS authorizes as rds-db:connect; the session then runs, on
//    the machine's PostgreSQL, as the role the migration created (the target's:
//    roles are cluster-wide, so the test's own stands for linecount_app);
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
  cacheSecretArn: string;
  // a database the migration has run on, and the instance it stands for
  database: { target: TestMigrationTarget; resourceId: string };
}

// the keys of the function's role, as Lambda gives them to its code
const roleKeys = {
  accessKeyId: 'ASIAFUNCTIONROLE0001',
  secretAccessKey: 'function-role-secret',
  sessionToken: 'session',
};

export interface FunctionRecording {
  requests: Request[];
  unmapped: string[];
}

export async function recordFunctionCalls(target: FunctionTarget): Promise<FunctionRecording> {
  const { scope } = target;
  const db = target.database.target;
  const deploy = loadDeployConfig({ AWS_REGION: scope.region, STAGE: target.stage });
  const names = stackNames(deploy.stack, scope);
  const emulator = await startEmulator({ port: 0 });
  const secrets = installSecretsManagerFake({ accountId: scope.accountId, region: scope.region });
  const cache = await createTestRedis(`iam_fn_${target.stage}`);
  const dir = mkdtempSync(join(tmpdir(), 'ada-iam-function-'));
  const certificate = generateCertificate(dir, 'rds');
  const rdsHost = '127.0.0.1';
  const gate: PostgresGate = new PostgresGate({
    tls: certificate,
    check: iamTokenCheck({
      host: rdsHost,
      port: () => gate.port,
      region: scope.region,
      credentials: [roleKeys],
      onSignIn: ({ user }) =>
        recordCall('rds-db', 'connect', { Hostname: rdsHost, Port: gate.port, DBUser: user }),
    }),
    upstreamUser: (user) => (user === names.dbAppUser ? db.role : user),
  });
  await gate.start();
  const s3 = new S3Client({
    region: scope.region,
    endpoint: emulator.endpoint,
    forcePathStyle: true,
    credentials: emulatorCredentials,
  });
  const secretsClient = new SecretsManagerClient({ region: scope.region, credentials: emulatorCredentials });
  // the secrets' tags, which the boundary's conditions read
  const log = recordAuthorizations(scope, {
    tagsOf: (arn) => {
      const secret = secrets.state.secrets.get(arn);
      return secret === undefined
        ? undefined
        : Object.fromEntries(secret.Tags.map((tag) => [tag.Key ?? '', tag.Value ?? '']));
    },
    databaseResourceOf: (host) => (host === rdsHost ? target.database.resourceId : undefined),
  });
  let connections: Awaited<ReturnType<typeof createConnections>> | undefined;
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
    // as up leaves it: the token secret tagged with the stack
    secrets.state.secrets.set(target.cacheSecretArn, {
      ARN: target.cacheSecretArn,
      Name: target.cacheSecretArn.split(':secret:')[1] ?? target.cacheSecretArn,
      SecretString: 'cache-auth-token',
      Tags: toTagList(names.tags),
    });
    // the cold start, with the environment up.ts gives the function: the
    // cache token comes from its secret (nothing listens on the closed port:
    // the function's Redis is the test's own, below); PostgreSQL connections
    // sign in with IAM tokens through the front
    const closedPort = await freePort();
    const environment = functionEnvironment(
      { config: deploy },
      {
        cache: { host: '127.0.0.1', port: closedPort, authSecretArn: target.cacheSecretArn },
        database: {
          host: rdsHost,
          port: gate.port,
          name: new URL(testDatabaseUrl).pathname.slice(1) || 'test',
          user: names.dbAppUser,
        },
      },
    );
    assert.equal(environment.DB_SECRET_ARN, undefined, 'the function is given no database secret');
    const deployed = loadRuntimeConfig({
      ...environment,
      AWS_REGION: scope.region,
      REDIS_TLS: 'false',
      DB_CA_FILE: certificate.certFile,
      DB_SCHEMA: db.schema,
    });
    connections = await createConnections(
      { ...deployed, aws: { ...deployed.aws, credentials: roleKeys } },
      { secrets: secretsClient, onError: () => undefined },
    );

    // EMF lines would go to stdout: this run keeps them to itself
    const metrics = new Metrics({ namespace: metricNamespace, serviceName: 'ada-linecount-iam' });
    metrics.publishStoredMetrics = () => {
      metrics.clearMetrics();
      return metrics;
    };
    const fn = createFunction({
      s3,
      redis: cache.redis,
      pool: connections.pool,
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
    // read as the test server's superuser, not as the function
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
    await connections?.close();
    s3.destroy();
    secretsClient.destroy();
    secrets.restore();
    await cache.cleanup();
    await gate.stop();
    rmSync(dir, { recursive: true, force: true });
    await emulator.stop();
  }
}
