import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { createClients } from '../../lib/clients.ts';
import { loadDeployConfig, loadOpsConfig } from '../../lib/config.ts';
import type { Ctx, Mode } from '../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { capture } from '../../ops/io.fixture.ts';
import { parseRedriveArgs, redrive } from '../../ops/redrive.ts';
import { reconcileBucket } from '../../ops/reconcile.ts';
import { collectStatus } from '../../ops/status.ts';
import { createContext, type ProvisionOptions, provisionStack } from '../../provision/up.ts';
import { teardownStack } from '../../teardown/down.ts';
import { recordEmulatorCalls } from '../fakes/calls.ts';
import { type FakeAws, installFakeAws } from '../fakes/index.ts';
import { collectingLog } from '../provision/context.ts';
import { registryAuthorization, type Scope } from '../support/iam/actions.ts';
import {
  assertNoFindings,
  describe as describeFinding,
  evaluateRequests,
  type Principal,
  type Request,
  unusedGrants,
} from '../support/iam/evaluate.ts';
import { deployer, roleInFake } from '../support/iam/principals.ts';
import { type AuthorizationLog, liveOf, recordAuthorizations } from '../support/iam/recorder.ts';
import { registrySkipReason, startRegistry, type TestRegistry } from '../support/registry.ts';
import { type PublicRegistry, startPublicRegistry } from '../support/registry-public.ts';
import { createTestSchema, type TestSchema } from '../support/services.ts';

// Everything the deploy, ops and teardown workflows do, as the deployer:
// a fresh up that builds and pushes the image, a second up, repairs of
// out-of-band changes, a plan, the ops commands, a down that keeps a final
// snapshot and a second down. Every request each call is authorized as must be
// allowed by docs/deployer-policy.json, and every grant of that policy must be
// needed by some request. The roles up.ts creates are checked the same way
// for what AWS does with them on the deployer's behalf.
//
// The control plane runs on the stateful fakes, S3/SNS/SQS on the emulator,
// the image push on a real registry (so its requests are the real ones).

const skip = registrySkipReason();
// the emulator's account: ARNs it returns and ARNs built from the identity must agree
const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };

describe('the deployer policy', { skip }, () => {
  let emulator: Emulator;
  let registry: TestRegistry;
  let publicEcr: PublicRegistry;
  let aws: FakeAws;
  let log: AuthorizationLog;
  let db: TestSchema;
  const stage = `iam${process.pid % 1000}`;
  const fetched: Request[] = [];
  // the roles as up.ts wrote them, kept before down deletes them
  const roles = new Map<string, Principal>();
  const realFetch = globalThis.fetch;

  before(async () => {
    emulator = await startEmulator({ port: 0 });
    registry = await startRegistry();
    publicEcr = await startPublicRegistry();
    db = await createTestSchema('iam_deployer');
    aws = installFakeAws({ accountId: scope.accountId, region: scope.region });
    aws.ecr.useRegistry(registry);
    log = recordAuthorizations(scope, liveOf(aws));
    // the image push talks the registry API over fetch: record it as ECR authorizes it
    globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (new URL(url).host === registry.host) {
        const authorization = registryAuthorization(init?.method ?? 'GET', url, scope);
        if (authorization !== undefined) fetched.push({ call: `registry:${init?.method ?? 'GET'}`, authorization });
      }
      return realFetch(input as Parameters<typeof fetch>[0], init);
    }) as typeof fetch;
  });

  after(async () => {
    globalThis.fetch = realFetch;
    log?.stop();
    aws?.restore();
    await db?.drop();
    await publicEcr?.stop();
    await registry?.stop();
    await emulator?.stop();
  });

  async function context(mode: Mode = 'apply', env: Record<string, string> = {}): Promise<Ctx> {
    const loaded = loadDeployConfig({
      AWS_REGION: scope.region,
      AWS_ENDPOINT_URL_S3: emulator.endpoint,
      AWS_ENDPOINT_URL_SNS: emulator.endpoint,
      AWS_ENDPOINT_URL_SQS: emulator.endpoint,
      STAGE: stage,
      ALERT_EMAIL: 'ops@example.com',
      ...env,
    });
    const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
    const clients = createClients(config.aws);
    recordEmulatorCalls(clients);
    return createContext(config, clients, collectingLog(), mode);
  }

  function options(): ProvisionOptions {
    return {
      build: { baseImage: publicEcr.reference, entry: 'lambda-image/bundle.fixture.ts', caBundleUrl: publicEcr.caBundleUrl },
      network: { waits: { ...fast, dependencyTimeoutSeconds: 5 } },
      cache: { waits: fast },
      database: { waits: fast },
    };
  }

  const up = async (mode: Mode = 'apply', env: Record<string, string> = {}) =>
    provisionStack(await context(mode, env), options());

  test('a fresh up, a second up and a plan', async () => {
    await up('plan');
    await up();
    for (const role of aws.iam.roles.values()) roles.set(role.arn, roleInFake(aws.iam, role.arn));
    await up();
  });

  test('repairs of out-of-band changes, and changed settings', async () => {
    const ctx = await context();
    const { names } = ctx;
    // settings changed by the user
    await up('apply', { FUNCTION_MEMORY_MB: '1024', QUEUE_VISIBILITY_TIMEOUT_SECONDS: '900', BATCH_SIZE: '20' });
    // changes made by hand in the console
    const rule = [...aws.ec2.state.rules].find(([, r]) => !r.IsEgress && r.FromPort === 5432);
    if (rule) aws.ec2.state.rules.delete(rule[0]);
    aws.cloudwatch.alarms.delete([...aws.cloudwatch.alarms.keys()][0] ?? '');
    const role = aws.iam.roles.get(names.role);
    if (role) {
      role.inlinePolicies.clear();
      role.tags.clear();
      role.trustPolicy = JSON.stringify({ Version: '2012-10-17', Statement: [] });
    }
    await up();
  });

  test('the ops commands', async () => {
    const ctx = await context();
    const { outputs } = await provisionStack(ctx, options());
    // an upload and a dead letter to operate on, made outside the deployer's calls
    const setup = createClients(ctx.config.aws);
    await setup.s3.send(new PutObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/a.csv', Body: 'a\nb\n' }));
    await setup.sqs.send(new SendMessageCommand({ QueueUrl: outputs.dlqUrl, MessageBody: '{}' }));
    const target = { outputs, local: false, aws: ctx.config.aws };
    await collectStatus({
      target,
      sqs: ctx.clients.sqs,
      cloudwatch: ctx.clients.cloudwatch,
      buffer: loadOpsConfig({ STAGE: stage, AWS_REGION: scope.region }).buffer,
      redis: { state: 'skipped', reason: 'not part of this check' },
      database: { state: 'skipped', reason: 'not part of this check' },
    });
    await reconcileBucket(
      { s3: ctx.clients.s3, sqs: ctx.clients.sqs, pool: db.pool, schema: db.schema, outputs },
      { prefix: 'uploads/', fix: true },
    );
    const io = capture(process.cwd());
    await redrive(ctx.clients.sqs, outputs, parseRedriveArgs(['--yes', '--no-wait']), io);
  });

  test('a down that keeps a final snapshot, and a second down', async () => {
    await teardownStack(await context(), { force: true, finalSnapshot: true, ...options() });
    await teardownStack(await context(), { force: true, finalSnapshot: true, ...options() });
  });

  test('every call was allowed, and every grant was needed', async () => {
    assertNoFindings(log.unmapped, 'calls that do not map to IAM');
    const principal = deployer(scope);
    const evaluation = await evaluateRequests(principal, [...log.caller, ...fetched], scope);
    (await import('node:fs')).writeFileSync('/tmp/iam-requests.json', JSON.stringify([...log.caller, ...fetched].map((r) => `${r.call} ${r.authorization.action} ${r.authorization.resource}`), null, 1));
    assertNoFindings(
      [
        ...evaluation.denied.map(describeFinding),
        ...unusedGrants(principal, evaluation.used).map((grant) => `unused grant ${grant}: no request needed it`),
      ],
      'findings on the deployer policy',
    );
  });

  test('what AWS does with the roles up.ts creates is allowed by the roles as written', async () => {
    assert.ok(log.byRole.size > 0);
    for (const [arn, requests] of log.byRole) {
      const role = roles.get(arn);
      assert.ok(role, `${arn} was created by up`);
      const evaluation = await evaluateRequests(role, requests, scope);
      assertNoFindings(evaluation.denied.map(describeFinding), `requests ${role.name} denies`);
    }
  });
});
