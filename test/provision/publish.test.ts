import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createClients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import { Action, type Ctx } from '../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { createContext, type ProvisionOptions, provisionStack } from '../../provision/up.ts';
import { callNames, callsTo, mutatingCalls, recordEmulatorCalls, resetCalls } from '../fakes/calls.ts';
import { type FakeAws, installFakeAws } from '../fakes/index.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import { registrySkipReason, startRegistry, type TestRegistry } from '../support/registry.ts';
import { type PublicRegistry, startPublicRegistry } from '../support/registry-public.ts';
import { type CollectingLog, collectingLog } from './context.ts';

// `up` without --image-uri, end to end on this machine: the control plane on
// the stateful fakes (ECR's GetAuthorizationToken hands out the Basic pair of
// a real docker-registry, the repository URI names it), S3/SNS/SQS on the
// emulator, the base image from the public-ECR stand-in. The image must be in
// the registry and both functions must run it by digest.

const run = promisify(execFile);
const skip = registrySkipReason();

// the emulator's account: ARNs it returns and ARNs built from the identity must agree
const accountId = '000000000000';
const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };

describe('up without --image-uri', { skip }, () => {
  let emulator: Emulator;
  let registry: TestRegistry;
  let publicEcr: PublicRegistry;
  let database: TestMigrationTarget;
  let aws: FakeAws;
  const stage = `pub${process.pid % 1000}`;

  before(async () => {
    emulator = await startEmulator({ port: 0 });
    registry = await startRegistry();
    publicEcr = await startPublicRegistry();
    database = await createMigrationTarget('publish');
  });
  after(async () => {
    await database?.drop();
    await publicEcr?.stop();
    await registry?.stop();
    await emulator?.stop();
  });
  beforeEach(() => {
    aws = installFakeAws({ accountId, database });
    aws.ecr.useRegistry(registry);
    resetCalls();
  });
  afterEach(() => {
    aws.restore();
  });

  async function context(): Promise<Ctx & { log: CollectingLog }> {
    const loaded = loadDeployConfig({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: emulator.endpoint,
      AWS_ENDPOINT_URL_SNS: emulator.endpoint,
      AWS_ENDPOINT_URL_SQS: emulator.endpoint,
      STAGE: stage,
    });
    const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
    const clients = createClients(config.aws);
    recordEmulatorCalls(clients);
    const log = collectingLog();
    return { ...(await createContext(config, clients, log, 'apply')), log };
  }

  function options(): ProvisionOptions {
    return {
      build: {
        baseImage: publicEcr.reference,
        entry: 'test/support/bundle-entry.ts',
        caBundleUrl: publicEcr.caBundleUrl,
      },
      network: { waits: { ...fast, dependencyTimeoutSeconds: 5 } },
      cache: { waits: fast },
      database: { waits: fast },
    };
  }

  const pushLines = (log: CollectingLog) => log.lines.filter((line) => /^pushed /.test(line));

  test('builds, pushes and deploys the image by digest, and a second up pushes and changes nothing', async () => {
    const ctx = await context();
    const first = await provisionStack(ctx, options());
    const repositoryUri = `${registry.host}/${ctx.names.repository}`;
    const imageUri = first.outputs.imageUri ?? '';
    assert.match(imageUri, new RegExp(`^${repositoryUri}@sha256:[0-9a-f]{64}$`));
    const digest = imageUri.slice(imageUri.indexOf('@') + 1);
    assert.ok(callsTo('ecr', 'GetAuthorizationToken').length >= 1, 'the push used the ECR token');
    // base layer, app layer, config, then the manifest under its content tag
    const pushed = pushLines(ctx.log);
    assert.deepEqual(
      pushed.map((line) => /^pushed (base layer|app layer|config|manifest) /.exec(line)?.[1]),
      ['base layer', 'app layer', 'config', 'manifest'],
    );
    assert.ok(pushed[0]?.includes(publicEcr.platforms.arm64.layerDigest), 'the arm64 base layer');
    assert.equal(pushed[3], `pushed manifest ${repositoryUri}:build-${digest.slice(7, 27)}`);

    // the registry holds that manifest, checked with a client other than ours
    const { stdout } = await run('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--creds',
      `${registry.username}:${registry.password}`,
      `docker://${imageUri}`,
    ]);
    const inspected = JSON.parse(stdout) as { Digest: string; Architecture: string };
    assert.equal(inspected.Digest, digest);
    assert.equal(inspected.Architecture, 'arm64');

    for (const name of [ctx.names.function, ctx.names.flushFunction, ctx.names.migrateFunction]) {
      const created = first.changes.find((c) => c.kind === 'lambda function' && c.name === name);
      assert.equal(created?.action, Action.create, name);
      assert.equal(aws.lambda.functions.get(name)?.imageUri, imageUri, `${name} runs the pushed digest`);
    }

    resetCalls();
    const again = await context();
    const second = await provisionStack(again, options());
    assert.equal(second.outputs.imageUri, imageUri);
    assert.deepEqual(pushLines(again.log), [], 'no blob and no manifest uploaded');
    assert.ok(again.log.lines.some((line) => line === `image ${imageUri} (already in ECR)`));
    assert.deepEqual(callNames(mutatingCalls()), []);
    assert.deepEqual(
      second.changes.filter((c) => c.action !== Action.unchanged),
      [],
    );
  });
});
