import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import type { Ctx } from '../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { createContext, provisionStack } from '../../provision/up.ts';
import { recordEmulatorCalls } from '../fakes/calls.ts';
import { type FakeAws, installFakeAws } from '../fakes/index.ts';
import { collectingLog } from '../provision/context.ts';
import type { Scope } from '../support/iam/actions.ts';
import { denyActions } from '../support/iam/deny.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';

// up as a deployer that lacks one action: it stops at the step that needs it,
// and the error names the step and the permission to check (the fakes and the
// emulator refuse the call as the service would, test/support/iam/deny.ts).

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };

describe('up without one of its permissions', () => {
  let emulator: Emulator;
  let database: TestMigrationTarget;
  let aws: FakeAws;
  const stage = `den${process.pid % 1000}`;

  before(async () => {
    emulator = await startEmulator({ port: 0 });
    database = await createMigrationTarget('denied');
    aws = installFakeAws({ accountId: scope.accountId, region: scope.region, database });
    await up();
  });
  after(async () => {
    aws?.restore();
    await emulator?.stop();
    await database?.drop();
  });

  async function context(): Promise<Ctx> {
    const loaded = loadDeployConfig({
      AWS_REGION: scope.region,
      AWS_ENDPOINT_URL_S3: emulator.endpoint,
      AWS_ENDPOINT_URL_SNS: emulator.endpoint,
      AWS_ENDPOINT_URL_SQS: emulator.endpoint,
      STAGE: stage,
    });
    const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
    const clients = createClients(config.aws);
    recordEmulatorCalls(clients);
    return createContext(config, clients, collectingLog(), 'apply');
  }

  async function up(): Promise<void> {
    const ctx = await context();
    const imageUri = `${scope.accountId}.dkr.ecr.${scope.region}.amazonaws.com/${ctx.names.repository}@sha256:${'5'.repeat(64)}`;
    await provisionStack(ctx, {
      imageUri,
      network: { waits: { ...fast, dependencyTimeoutSeconds: 1 } },
      cache: { waits: fast },
      database: { waits: fast },
    });
  }

  async function rejectsWithout(action: string, message: RegExp): Promise<void> {
    const allow = denyActions(scope, [action]);
    try {
      await assert.rejects(up(), (error: Error) => {
        assert.match(error.message, message);
        return true;
      });
    } finally {
      allow();
    }
  }

  test('without lambda:ListTags, up cannot read the mapping’s tags and says so', async () => {
    await rejectsWithout(
      'lambda:ListTags',
      /^cannot read the tags of event source mapping [0-9a-f-]+: AccessDeniedException: .*\(check lambda:ListTags permission on the mapping\)$/,
    );
  });

  test('without lambda:TagResource, up cannot put back the mapping’s tags and says so', async () => {
    for (const mapping of aws.lambda.mappings.values()) mapping.tags.clear();
    await rejectsWithout(
      'lambda:TagResource',
      /^cannot tag event source mapping [0-9a-f-]+: AccessDeniedException: .*\(check lambda:TagResource permission on the mapping\)$/,
    );
    await up();
  });

  test('without elasticache:DescribeReplicationGroups, up stops at the cache and says so', async () => {
    await rejectsWithout(
      'elasticache:DescribeReplicationGroups',
      /^cannot read replication group ada-linecount-den\d+-cache: AccessDenied: .*\(check elasticache:DescribeReplicationGroups permission\)$/,
    );
  });
});
