import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CreatePolicyVersionCommand,
  CreateUserCommand,
  DeleteRolePermissionsBoundaryCommand,
  GetOpenIDConnectProviderCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketNotificationConfigurationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  NoSuchKey,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { createConnections } from '../../lambda-image/connections.ts';
import type { UploadEvent } from '../../lambda-image/events.ts';
import { countObject } from '../../lambda-image/object.ts';
import {
  createClients,
  createS3Client,
  createSecretsManagerClient,
  destroyClients,
} from '../../lib/clients.ts';
import { loadRuntimeConfig } from '../../lib/config.ts';
import { freePort } from '../../lib/net.ts';
import type { StackOutputs } from '../../lib/outputs.ts';
import { PolicyFile } from '../../lib/policy-files.ts';
import { Action, type Change, type Mode } from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy } from '../../provision/policy.ts';
import { checkPermissions } from '../../provision/preflight.ts';
import { checkBeforeRun, provisionStack } from '../../provision/up.ts';
import { findLeftovers, teardownStack } from '../../teardown/down.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import {
  bootstrapIam,
  type Credentials,
  checkMotoGaps,
  createBoundary,
  findMoto,
  liftBucketPolicy,
  type MotoIam,
  type MotoRun,
  motoAccount,
  motoAws,
  motoContext,
  motoPolicy,
  motoProvisionOptions,
  motoRegion,
  motoStage,
  motoTeardownOptions,
  mutating,
  policyAsMotoEvaluates,
  requireMoto,
} from '../support/moto.ts';

// Against a moto that evaluates every request against the caller's IAM
// policies: up and down as a user holding the documented deployer policy, and
// the function's own S3 and Secrets Manager calls with credentials that carry
// exactly the role policy up.ts wrote. The real role trusts only
// lambda.amazonaws.com, so a test role holding the same inline policy is
// assumed instead, by a test user it names. moto's evaluation differs from
// AWS's in ways policyAsMotoEvaluates translates (test/support/moto.ts); one
// test checks that those differences still hold, another pins the action moto
// checks for each S3 call the stack makes.
//
// The tests share one stack and run in order: up, the function's calls, down
// (the S3 table works on a bucket of its own).

const target = await findMoto('iam');
const githubRepository = 'ada-contabilidade/ada-linecount';

const notUnchanged = (changes: Change[]) =>
  changes.filter((c) => c.action !== Action.unchanged).map((c) => `${c.action} ${c.kind} ${c.name}`);

// moto answers a denied JSON-protocol call with an XML body the SDK cannot
// parse, so the status is read from the response the error carries
function httpStatus(error: unknown): number | undefined {
  const cause = (error instanceof Error && error.cause !== undefined ? error.cause : error) as {
    $metadata?: { httpStatusCode?: number };
    $response?: { statusCode?: number };
  };
  return cause?.$metadata?.httpStatusCode ?? cause?.$response?.statusCode;
}

// a read's body is consumed, or its socket stays taken
async function drain(output: { Body?: { transformToByteArray(): Promise<Uint8Array> } | undefined }) {
  await output.Body?.transformToByteArray();
}

function isAccessDenied(error: unknown): boolean {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  return (cause instanceof Error && /AccessDenied/.test(cause.name)) || httpStatus(error) === 403;
}

describe('under IAM enforcement (moto)', { skip: target.skip }, () => {
  const stage = motoStage('i');
  let url: string;
  let moto: MotoIam;
  let deployer: Credentials;
  let outputs: StackOutputs;
  let database: TestMigrationTarget | undefined;

  before(async () => {
    url = requireMoto(target);
    database = await createMigrationTarget('moto_iam');
    moto = await bootstrapIam(url);
    await checkMotoGaps(url, moto.admin);
    // the first step of setting up an account, as an administrator
    await createBoundary(url, moto.admin);
    // docs/deployer-policy.json with REGION and ACCOUNT filled in, as a user would
    deployer = await moto.createUser(
      'deployer',
      policyAsMotoEvaluates(motoPolicy(PolicyFile.deployer, stage)),
    );
  });

  after(async () => {
    if (moto === undefined) return;
    const run = await motoContext(url, { stage, credentials: moto.admin });
    try {
      if (outputs !== undefined)
        // a bucket whose policy a test already lifted has none to lift
        await liftBucketPolicy(run.ctx.clients.s3, outputs.bucket).catch(() => undefined);
      await teardownStack(run.ctx, motoTeardownOptions);
    } finally {
      run.close();
      moto.close();
      await database?.drop();
    }
  });

  const asDeployer = <T>(mode: Mode, use: (run: MotoRun) => Promise<T>) =>
    withCredentials(deployer, mode, use);

  async function withCredentials<T>(
    credentials: Credentials,
    mode: Mode,
    use: (run: MotoRun) => Promise<T>,
  ): Promise<T> {
    // GITHUB_REPOSITORY as in deploy.yml: up makes the generator's role and the GitHub OIDC provider
    const run = await motoContext(url, {
      stage,
      mode,
      credentials,
      env: { GITHUB_REPOSITORY: githubRepository },
      migration: database,
    });
    try {
      return await use(run);
    } finally {
      run.close();
    }
  }

  test('moto enforces IAM: the deployer is refused what its policy does not grant', async () => {
    await asDeployer('apply', async ({ ctx }) => {
      await assert.rejects(ctx.clients.iam.send(new CreateUserCommand({ UserName: 'intruder' })), (error) => {
        assert.ok(isAccessDenied(error), String(error));
        return true;
      });
    });
  });

  test('up succeeds as a user holding exactly docs/deployer-policy.json, and its plan then has zero changes', async () => {
    const applied = await asDeployer('apply', (run) =>
      provisionStack(run.ctx, motoProvisionOptions(run.ctx)),
    );
    outputs = applied.outputs;
    assert.ok(applied.changes.every((c) => c.action === Action.create));
    const planned = await asDeployer('plan', async (run) => ({
      ...(await provisionStack(run.ctx, motoProvisionOptions(run.ctx))),
      calls: run.calls,
    }));
    assert.deepEqual(notUnchanged(planned.changes), []);
    assert.deepEqual(mutating(planned.calls), []);
  });

  test('up made the generator’s role and the GitHub OIDC provider, each role with the boundary', async () => {
    const clients = createClients(motoAws(url, moto.admin));
    try {
      const boundary = `arn:aws:iam::${motoAccount}:policy/ada-linecount-boundary`;
      for (const name of ['function', 'scheduler', 'generator']) {
        const { Role } = await clients.iam.send(
          new GetRoleCommand({ RoleName: `ada-linecount-${stage}-${name}` }),
        );
        assert.equal(Role?.PermissionsBoundary?.PermissionsBoundaryArn, boundary, name);
      }
      const { Role } = await clients.iam.send(
        new GetRoleCommand({ RoleName: `ada-linecount-${stage}-generator` }),
      );
      const trust = parsePolicy(Role?.AssumeRolePolicyDocument) as PolicyDocument;
      assert.deepEqual(trust.Statement[0]?.Condition, {
        StringEquals: {
          'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
          'token.actions.githubusercontent.com:sub': `repo:${githubRepository}:ref:refs/heads/main`,
        },
      });
      const provider = await clients.iam.send(
        new GetOpenIDConnectProviderCommand({
          OpenIDConnectProviderArn: `arn:aws:iam::${motoAccount}:oidc-provider/token.actions.githubusercontent.com`,
        }),
      );
      assert.deepEqual(provider.ClientIDList, ['sts.amazonaws.com']);
      assert.deepEqual(Object.fromEntries((provider.Tags ?? []).map((t) => [t.Key, t.Value])), {
        'managed-by': 'ada-linecount',
        [`used-by:ada-linecount-${stage}`]: `ada-linecount-${stage}-generator`,
      });
    } finally {
      destroyClients(clients);
    }
  });

  test('the deployer may not remove a role’s boundary, nor rewrite the boundary (an explicit Deny, which moto evaluates)', async () => {
    await asDeployer('apply', async ({ ctx }) => {
      const denied = (error: unknown) => {
        assert.ok(isAccessDenied(error), String(error));
        return true;
      };
      await assert.rejects(
        ctx.clients.iam.send(new DeleteRolePermissionsBoundaryCommand({ RoleName: ctx.names.role })),
        denied,
      );
      await assert.rejects(
        ctx.clients.iam.send(
          new CreatePolicyVersionCommand({
            PolicyArn: `arn:aws:iam::${motoAccount}:policy/ada-linecount-boundary`,
            PolicyDocument: JSON.stringify({
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
            }),
            SetAsDefault: true,
          }),
        ),
        denied,
      );
    });
  });

  test('moto 5.2.3 has no SimulatePrincipalPolicy: the check before the run says so in one line, and the run goes on', async () => {
    await asDeployer('plan', async ({ ctx }) => {
      const result = await checkPermissions(ctx);
      assert.equal(result.checked, false);
      assert.match(result.checked ? '' : result.reason, /^iam:SimulatePrincipalPolicy failed \(HTTP 500\)/);
      const out: string[] = [];
      assert.equal(await checkBeforeRun(ctx, (text) => out.push(text)), true);
      assert.deepEqual(out, []);
    });
  });

  describe('the function role’s policy, as up.ts wrote it', () => {
    let rolePolicy: PolicyDocument;
    let functionCredentials: Credentials;
    let restorePolicy: () => Promise<void>;
    const admin = () => createClients(motoAws(url, moto.admin));
    const versions: Record<string, { versionId: string; eTag: string; size: number }> = {};

    before(async () => {
      if (target.skip) return;
      assert.ok(outputs, 'up ran');
      const clients = admin();
      try {
        const { PolicyDocument } = await clients.iam.send(
          new GetRolePolicyCommand({
            RoleName: `${outputs.app}-${outputs.stage}-function`,
            PolicyName: 'least-privilege',
          }),
        );
        rolePolicy = parsePolicy(PolicyDocument) as PolicyDocument;
        functionCredentials = await moto.assumeRoleWith('function-probe', policyAsMotoEvaluates(rolePolicy));
        restorePolicy = await liftBucketPolicy(clients.s3, outputs.bucket);
        for (const [name, key, body] of [
          ['first', 'uploads/2025/extrato.csv', 'a\nb\n'],
          ['second', 'uploads/2025/extrato.csv', 'a\nb\nc\n'],
          ['deleted', 'uploads/2025/apagado.csv', 'x\n'],
          ['outside', 'private/notes.txt', 'secret\n'],
        ] as const) {
          const put = await clients.s3.send(
            new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body }),
          );
          versions[name] = {
            versionId: put.VersionId ?? '',
            eTag: (put.ETag ?? '').replaceAll('"', ''),
            size: Buffer.byteLength(body),
          };
        }
        // an event for a version deleted since it was announced
        await clients.s3.send(
          new DeleteObjectCommand({
            Bucket: outputs.bucket,
            Key: 'uploads/2025/apagado.csv',
            VersionId: versions.deleted?.versionId,
          }),
        );
      } finally {
        destroyClients(clients);
      }
    });

    after(async () => {
      if (target.skip || restorePolicy === undefined) return;
      const clients = admin();
      try {
        // the stack as up wrote it again, for the down that follows
        await restorePolicy();
      } finally {
        destroyClients(clients);
      }
    });

    function upload(name: string, key: string): UploadEvent {
      const version = versions[name];
      assert.ok(version);
      return {
        bucket: outputs.bucket,
        key,
        size: version.size,
        eTag: version.eTag,
        versionId: version.versionId,
        sequencer: '0055AED6DCD90281E5',
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
      };
    }

    // the function's S3 client, built as handler.ts builds it
    function functionS3(credentials = functionCredentials) {
      return createS3Client(motoAws(url, credentials));
    }

    test('counts a versioned upload by its VersionId (s3:GetObjectVersion)', async () => {
      const s3 = functionS3();
      try {
        assert.deepEqual(await countObject(s3, upload('first', 'uploads/2025/extrato.csv')), {
          status: 'counted',
          lines: 2,
          bytes: 4,
        });
        assert.deepEqual(await countObject(s3, upload('second', 'uploads/2025/extrato.csv')), {
          status: 'counted',
          lines: 3,
          bytes: 6,
        });
      } finally {
        s3.destroy();
      }
    });

    test('a deleted upload answers 404 and is skipped as missing (s3:ListBucket)', async () => {
      const s3 = functionS3();
      try {
        assert.deepEqual(await countObject(s3, upload('deleted', 'uploads/2025/apagado.csv')), {
          status: 'skipped',
          reason: 'missing',
        });
        const { versionId: _, ...unversioned } = upload('deleted', 'uploads/2025/apagado.csv');
        assert.deepEqual(await countObject(s3, unversioned), { status: 'skipped', reason: 'missing' });
      } finally {
        s3.destroy();
      }
    });

    test('objects outside uploads/ stay unreadable', async () => {
      const s3 = functionS3();
      try {
        await assert.rejects(countObject(s3, upload('outside', 'private/notes.txt')), (error) => {
          assert.ok(isAccessDenied(error), String(error));
          return true;
        });
      } finally {
        s3.destroy();
      }
    });

    test('reads the cache secret as the deployed function does, and is given no database secret', async () => {
      const clients = admin();
      let environment: Record<string, string>;
      let migrationEnvironment: Record<string, string>;
      let cacheToken: string | undefined;
      try {
        const live = await clients.lambda.send(
          new GetFunctionConfigurationCommand({ FunctionName: outputs.functionName }),
        );
        environment = live.Environment?.Variables ?? {};
        const migration = await clients.lambda.send(
          new GetFunctionConfigurationCommand({ FunctionName: `${outputs.app}-${outputs.stage}-migrate` }),
        );
        migrationEnvironment = migration.Environment?.Variables ?? {};
        cacheToken = (
          await clients.secretsManager.send(
            new GetSecretValueCommand({ SecretId: outputs.cacheAuthSecretArn }),
          )
        ).SecretString;
      } finally {
        destroyClients(clients);
      }
      // PostgreSQL: an IAM token for linecount_app; the master secret is the migration's
      assert.equal(environment.DB_SECRET_ARN, undefined);
      assert.equal(environment.DB_IAM_USER, 'linecount_app');
      assert.equal(migrationEnvironment.DB_SECRET_ARN, outputs.dbSecretArn);
      assert.equal(environment.REDIS_AUTH_SECRET_ARN, outputs.cacheAuthSecretArn);
      // the function's own configuration, pointed at moto and at a local port
      // nothing serves (no connection is made: only the secrets are read)
      const config = loadRuntimeConfig({
        ...environment,
        AWS_REGION: motoRegion,
        AWS_ENDPOINT_URL: url,
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(await freePort()),
        REDIS_TLS: 'false',
        DB_CA_FILE: '',
      });
      const secrets = createSecretsManagerClient({ ...config.aws, credentials: functionCredentials });
      const connections = await createConnections(
        { ...config, aws: { ...config.aws, credentials: functionCredentials } },
        { secrets, onError: () => undefined },
      );
      try {
        assert.equal(connections.redis.options.password, cacheToken);
      } finally {
        await connections.close();
        secrets.destroy();
      }
    });

    test('moto names the function’s S3 reads with the actions AWS documents', async () => {
      // GetObject API reference, Permissions: s3:GetObject, and s3:GetObjectVersion
      // when a versionId is given (that one alone)
      const uploadsArn = `arn:aws:s3:::${outputs.bucket}/uploads/*`;
      const only = async (action: string) => {
        const credentials = await moto.assumeRoleWith(`only-${action.replace(/\W/g, '-')}`, {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: action, Resource: uploadsArn }],
        });
        return functionS3(credentials);
      };
      const versioned = upload('first', 'uploads/2025/extrato.csv');
      const { versionId: _, ...latest } = upload('second', 'uploads/2025/extrato.csv');
      const denied = (error: unknown) => {
        assert.ok(isAccessDenied(error), String(error));
        return true;
      };

      const getObject = await only('s3:GetObject');
      const getObjectVersion = await only('s3:GetObjectVersion');
      try {
        assert.equal((await countObject(getObject, latest)).status, 'counted');
        await assert.rejects(countObject(getObject, versioned), denied);
        assert.equal((await countObject(getObjectVersion, versioned)).status, 'counted');
        await assert.rejects(countObject(getObjectVersion, latest), denied);
      } finally {
        getObject.destroy();
        getObjectVersion.destroy();
      }
    });

    test('the moto differences these tests work around still hold', async () => {
      const clients = admin();
      const s3 = functionS3(
        await moto.assumeRoleWith('without-list-bucket', {
          ...rolePolicy,
          Statement: rolePolicy.Statement.filter((s) => s.Sid !== 'TellMissingUploads'),
        }),
      );
      const exact = createSecretsManagerClient(
        motoAws(url, await moto.assumeRoleWith('exact-secrets', rolePolicy)),
      );
      try {
        // 1. Without s3:ListBucket AWS answers a missing key with 403 (GetObject API
        //    reference, Permissions); moto answers 404 whatever the policy, so the 404
        //    above shows the read path, not the permission: the policy evaluator
        //    tests hold s3:ListBucket to account.
        const missing = await s3
          .send(new GetObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/never-written.csv' }))
          .then(
            () => 'found',
            (error: unknown) => (error instanceof NoSuchKey ? 'NoSuchKey' : String(error)),
          );
        assert.equal(missing, 'NoSuchKey');
        // 2. moto authorizes Secrets Manager against "*", so the role's statement
        //    scoped to the cache secret's ARN denies in moto what it allows in
        //    AWS (and so moto cannot show that the role may not read the master
        //    secret: the policy evaluator tests do, test/iam/function.test.ts).
        await assert.rejects(
          exact.send(new GetSecretValueCommand({ SecretId: outputs.cacheAuthSecretArn })),
          (error) => {
            assert.equal(httpStatus(error), 403, String(error));
            return true;
          },
        );
        // 3. moto applies the TLS-only Deny without its aws:SecureTransport condition.
        await restorePolicy();
        await assert.rejects(
          clients.s3.send(new GetObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/2025/extrato.csv' })),
          (error) => error instanceof S3ServiceException && error.$metadata.httpStatusCode === 403,
        );
      } finally {
        s3.destroy();
        exact.destroy();
        destroyClients(clients);
      }
    });
  });

  test('the migration role’s policy, as up.ts wrote it, reads the master secret as the migration does', async () => {
    const clients = createClients(motoAws(url, moto.admin));
    let policy: PolicyDocument;
    try {
      const { PolicyDocument } = await clients.iam.send(
        new GetRolePolicyCommand({
          RoleName: `${outputs.app}-${outputs.stage}-migrate`,
          PolicyName: 'migrate',
        }),
      );
      policy = parsePolicy(PolicyDocument) as PolicyDocument;
    } finally {
      destroyClients(clients);
    }
    const secrets = createSecretsManagerClient(
      motoAws(url, await moto.assumeRoleWith('migration-probe', policyAsMotoEvaluates(policy))),
    );
    try {
      const { SecretString } = await secrets.send(
        new GetSecretValueCommand({ SecretId: outputs.dbSecretArn }),
      );
      assert.equal(typeof JSON.parse(SecretString ?? '{}').password, 'string');
    } finally {
      secrets.destroy();
    }
  });

  describe('the generator role’s policy, as up.ts wrote it', () => {
    let restorePolicy: () => Promise<void>;
    let generator: S3Client;
    const admin = () => createClients(motoAws(url, moto.admin));
    const denied = (error: unknown) => {
      assert.ok(isAccessDenied(error), String(error));
      return true;
    };

    before(async () => {
      if (target.skip) return;
      assert.ok(outputs, 'up ran');
      const clients = admin();
      try {
        const { PolicyDocument } = await clients.iam.send(
          new GetRolePolicyCommand({
            RoleName: `ada-linecount-${stage}-generator`,
            PolicyName: 'upload-only',
          }),
        );
        const policy = parsePolicy(PolicyDocument) as PolicyDocument;
        generator = createS3Client(
          motoAws(url, await moto.assumeRoleWith('generator-probe', policyAsMotoEvaluates(policy))),
        );
        restorePolicy = await liftBucketPolicy(clients.s3, outputs.bucket);
        await clients.s3.send(
          new PutObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/existing.csv', Body: 'a\n' }),
        );
      } finally {
        destroyClients(clients);
      }
    });

    after(async () => {
      generator?.destroy();
      if (!target.skip && restorePolicy !== undefined) await restorePolicy();
    });

    test('puts objects under uploads/, and aborts its multipart uploads there', async () => {
      const Bucket = outputs.bucket;
      await generator.send(new PutObjectCommand({ Bucket, Key: 'uploads/generated.csv', Body: 'a\nb\n' }));
      const { UploadId } = await generator.send(
        new CreateMultipartUploadCommand({ Bucket, Key: 'uploads/large.csv' }),
      );
      await generator.send(new AbortMultipartUploadCommand({ Bucket, Key: 'uploads/large.csv', UploadId }));
    });

    test('may not write outside uploads/, nor read, delete or list objects', async () => {
      const Bucket = outputs.bucket;
      await assert.rejects(
        generator.send(new PutObjectCommand({ Bucket, Key: 'private/a.csv', Body: 'a\n' })),
        denied,
      );
      await assert.rejects(
        generator.send(new GetObjectCommand({ Bucket, Key: 'uploads/existing.csv' })).then(drain),
        denied,
      );
      await assert.rejects(
        generator.send(new DeleteObjectCommand({ Bucket, Key: 'uploads/existing.csv' })),
        denied,
      );
      await assert.rejects(generator.send(new ListObjectsV2Command({ Bucket, Prefix: 'uploads/' })), denied);
      await assert.rejects(generator.send(new HeadBucketCommand({ Bucket })), denied);
    });
  });

  // Each S3 call up, down and the function make, with the action AWS authorizes
  // it as (S3 API reference, each operation's Permissions section; HeadBucket:
  // s3:ListBucket; DeleteObjects: s3:DeleteObject per key, s3:DeleteObjectVersion
  // per version). `moto` names the action moto checks instead, where it differs:
  // policyAsMotoEvaluates adds the HeadBucket alias; the others are granted by
  // actions the deployer holds anyway, so moto cannot catch their absence.
  test('moto authorizes each S3 call the stack makes as AWS documents, but for the differences listed', async () => {
    const Bucket = `moto-s3-actions-${stage}`;
    const bucketArn = `arn:aws:s3:::${Bucket}`;
    const clients = createClients(motoAws(url, moto.admin));
    await clients.s3.send(new CreateBucketCommand({ Bucket }));
    await clients.s3.send(
      new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
    const put = await clients.s3.send(new PutObjectCommand({ Bucket, Key: 'uploads/a.csv', Body: 'a\n' }));
    const VersionId = put.VersionId;
    const Key = 'uploads/a.csv';
    type Call = (s3: S3Client) => Promise<unknown>;
    const rows: { call: string; aws: string; moto?: string; send: Call }[] = [
      {
        call: 'HeadBucket',
        aws: 's3:ListBucket',
        moto: 's3:HeadBucket',
        send: (s3) => s3.send(new HeadBucketCommand({ Bucket })),
      },
      {
        call: 'GetBucketPolicy',
        aws: 's3:GetBucketPolicy',
        send: (s3) => s3.send(new GetBucketPolicyCommand({ Bucket })),
      },
      {
        call: 'PutBucketPolicy',
        aws: 's3:PutBucketPolicy',
        send: (s3) =>
          s3.send(
            new PutBucketPolicyCommand({
              Bucket,
              Policy: JSON.stringify({
                Version: '2012-10-17',
                Statement: [
                  {
                    Effect: 'Deny',
                    Principal: '*',
                    Action: 's3:PutObjectRetention',
                    Resource: `${bucketArn}/*`,
                  },
                ],
              }),
            }),
          ),
      },
      {
        call: 'GetBucketEncryption',
        aws: 's3:GetEncryptionConfiguration',
        moto: 's3:ListBucket',
        send: (s3) => s3.send(new GetBucketEncryptionCommand({ Bucket })),
      },
      {
        call: 'PutBucketEncryption',
        aws: 's3:PutEncryptionConfiguration',
        moto: 's3:CreateBucket',
        send: (s3) =>
          s3.send(
            new PutBucketEncryptionCommand({
              Bucket,
              ServerSideEncryptionConfiguration: {
                Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
              },
            }),
          ),
      },
      {
        call: 'GetBucketVersioning',
        aws: 's3:GetBucketVersioning',
        send: (s3) => s3.send(new GetBucketVersioningCommand({ Bucket })),
      },
      {
        call: 'PutBucketVersioning',
        aws: 's3:PutBucketVersioning',
        send: (s3) =>
          s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } })),
      },
      {
        call: 'GetBucketLifecycleConfiguration',
        aws: 's3:GetLifecycleConfiguration',
        send: (s3) => s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })),
      },
      {
        call: 'PutBucketLifecycleConfiguration',
        aws: 's3:PutLifecycleConfiguration',
        send: (s3) =>
          s3.send(
            new PutBucketLifecycleConfigurationCommand({
              Bucket,
              LifecycleConfiguration: {
                Rules: [
                  {
                    ID: 'r',
                    Status: 'Enabled',
                    Filter: { Prefix: '' },
                    NoncurrentVersionExpiration: { NoncurrentDays: 30 },
                  },
                ],
              },
            }),
          ),
      },
      {
        call: 'GetBucketOwnershipControls',
        aws: 's3:GetBucketOwnershipControls',
        moto: 's3:ListBucket',
        send: (s3) => s3.send(new GetBucketOwnershipControlsCommand({ Bucket })),
      },
      {
        call: 'PutBucketOwnershipControls',
        aws: 's3:PutBucketOwnershipControls',
        moto: 's3:CreateBucket',
        send: (s3) =>
          s3.send(
            new PutBucketOwnershipControlsCommand({
              Bucket,
              OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
            }),
          ),
      },
      {
        call: 'GetBucketTagging',
        aws: 's3:GetBucketTagging',
        send: (s3) => s3.send(new GetBucketTaggingCommand({ Bucket })),
      },
      {
        call: 'PutBucketTagging',
        aws: 's3:PutBucketTagging',
        send: (s3) =>
          s3.send(
            new PutBucketTaggingCommand({ Bucket, Tagging: { TagSet: [{ Key: 'app', Value: 'probe' }] } }),
          ),
      },
      {
        call: 'GetBucketNotificationConfiguration',
        aws: 's3:GetBucketNotification',
        send: (s3) => s3.send(new GetBucketNotificationConfigurationCommand({ Bucket })),
      },
      {
        call: 'PutBucketNotificationConfiguration',
        aws: 's3:PutBucketNotification',
        send: (s3) =>
          s3.send(new PutBucketNotificationConfigurationCommand({ Bucket, NotificationConfiguration: {} })),
      },
      {
        call: 'ListObjectVersions',
        aws: 's3:ListBucketVersions',
        send: (s3) => s3.send(new ListObjectVersionsCommand({ Bucket })),
      },
      {
        call: 'GetObject',
        aws: 's3:GetObject',
        send: (s3) => s3.send(new GetObjectCommand({ Bucket, Key })).then(drain),
      },
      {
        call: 'GetObject with a VersionId',
        aws: 's3:GetObjectVersion',
        send: (s3) => s3.send(new GetObjectCommand({ Bucket, Key, VersionId })).then(drain),
      },
      {
        call: 'GetPublicAccessBlock',
        aws: 's3:GetBucketPublicAccessBlock',
        moto: 's3:ListBucket',
        send: (s3) => s3.send(new GetPublicAccessBlockCommand({ Bucket })),
      },
      {
        call: 'PutPublicAccessBlock',
        aws: 's3:PutBucketPublicAccessBlock',
        moto: 's3:CreateBucket',
        send: (s3) =>
          s3.send(
            new PutPublicAccessBlockCommand({
              Bucket,
              PublicAccessBlockConfiguration: {
                BlockPublicAcls: true,
                IgnorePublicAcls: true,
                BlockPublicPolicy: true,
                RestrictPublicBuckets: true,
              },
            }),
          ),
      },
      {
        call: 'DeleteObjects',
        aws: 's3:DeleteObject',
        send: (s3) => deleteObjects(s3, [{ Key: 'uploads/none.csv' }]),
      },
      {
        call: 'DeleteObjects of a version',
        aws: 's3:DeleteObjectVersion',
        moto: 's3:DeleteObject',
        send: (s3) => deleteObjects(s3, [{ Key, VersionId }]),
      },
    ];
    async function deleteObjects(s3: S3Client, Objects: { Key: string; VersionId?: string | undefined }[]) {
      const { Errors } = await s3.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects, Quiet: true } }),
      );
      const denied = Errors?.find((e) => e.Code === 'AccessDenied');
      if (denied !== undefined) throw Object.assign(new Error('AccessDenied'), { name: 'AccessDenied' });
    }
    const roles = new Map<string, S3Client>();
    async function holding(action: string): Promise<S3Client> {
      let s3 = roles.get(action);
      if (s3 === undefined) {
        const credentials = await moto.assumeRoleWith(`s3-${roles.size}`, {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: action, Resource: [bucketArn, `${bucketArn}/*`] }],
        });
        s3 = createS3Client(motoAws(url, credentials));
        roles.set(action, s3);
      }
      return s3;
    }
    const authorized = (send: Call, s3: S3Client) =>
      send(s3).then(
        () => true,
        (error: unknown) => !isAccessDenied(error),
      );
    const found: string[] = [];
    try {
      // a role holding an action no row needs is refused every call: each row is checked
      const unrelated = await holding('s3:GetBucketLocation');
      for (const row of rows) {
        const withAws = await authorized(row.send, await holding(row.aws));
        const withMoto =
          row.moto === undefined ? withAws : await authorized(row.send, await holding(row.moto));
        const withNeither = await authorized(row.send, unrelated);
        found.push(
          `${row.call}: ${row.aws} ${withAws ? 'allows' : 'denied'}${row.moto === undefined ? '' : `, ${row.moto} ${withMoto ? 'allows' : 'denied'}`}${withNeither ? ', anything allows' : ''}`,
        );
      }
    } finally {
      for (const s3 of roles.values()) s3.destroy();
      destroyClients(clients);
    }
    assert.deepEqual(
      found,
      rows.map((row) =>
        row.moto === undefined
          ? `${row.call}: ${row.aws} allows`
          : `${row.call}: ${row.aws} denied, ${row.moto} allows`,
      ),
    );
  });

  test('moto authorizes DeleteObjects against the bucket, where AWS authorizes each key', async () => {
    const Bucket = `moto-s3-delete-${stage}`;
    const clients = createClients(motoAws(url, moto.admin));
    const onObjects = createS3Client(
      motoAws(
        url,
        await moto.assumeRoleWith('delete-objects-only', {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${Bucket}/*` }],
        }),
      ),
    );
    try {
      await clients.s3.send(new CreateBucketCommand({ Bucket }));
      await clients.s3.send(new PutObjectCommand({ Bucket, Key: 'uploads/a.csv', Body: 'a\n' }));
      // moto answers a refused DeleteObjects with AccessDenied for each key
      const { Errors = [] } = await onObjects.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'uploads/a.csv' }] } }),
      );
      assert.deepEqual(
        Errors.map((e) => e.Code),
        ['AccessDenied'],
      );
    } finally {
      onObjects.destroy();
      destroyClients(clients);
    }
  });

  test('down succeeds as the deployer and removes the stack; a second down changes nothing', async () => {
    assert.ok(outputs, 'up ran');
    // the DeleteObjects that empty the bucket meet the TLS-only policy as moto reads it
    await withCredentials(moto.admin, 'apply', (run) => liftBucketPolicy(run.ctx.clients.s3, outputs.bucket));
    const first = await asDeployer('apply', async (run) => {
      const result = await teardownStack(run.ctx, motoTeardownOptions);
      // down.ts lists what still carries the stack's tags, as the deployer too
      return { ...result, leftovers: await findLeftovers(run.ctx) };
    });
    assert.ok(first.changes.filter((c) => c.action === Action.delete).length > 40);
    assert.deepEqual(
      first.leftovers.map((l) => l.arn).filter((arn) => !arn.includes(':secretsmanager:')),
      [],
    );
    const second = await asDeployer('apply', async (run) => ({
      ...(await teardownStack(run.ctx, motoTeardownOptions)),
      calls: run.calls,
    }));
    assert.deepEqual(
      second.changes.filter((c) => c.action !== Action.absent),
      [],
    );
    assert.deepEqual(mutating(second.calls), []);
  });
});
