import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { createClients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import { Action, type Change, type Ctx, type Mode } from '../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { createContext, type ProvisionOptions, provisionStack } from '../../provision/up.ts';
import { findLeftovers, teardownStack } from '../../teardown/down.ts';
import {
  callLog,
  callNames,
  isMutating,
  mutatingCalls,
  recordEmulatorCalls,
  resetCalls,
} from '../fakes/calls.ts';
import { type FakeAws, installFakeAws, stackServices } from '../fakes/index.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import { collectingLog } from './context.ts';

// The whole stack: control-plane services on the stateful fakes, S3/SNS/SQS on
// the local emulator over HTTP. Calls to the emulator are recorded into the
// same call log through a client middleware, so "no mutating call" covers
// every service. The migration function's invocations run the real migration
// on a schema of the test PostgreSQL.

// the emulator's account: ARNs it returns and ARNs built from the identity must agree
const accountId = '000000000000';
const digest = `sha256:${'5'.repeat(64)}`;
const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };
const waits: ProvisionOptions = {
  network: { waits: { ...fast, dependencyTimeoutSeconds: 5 } },
  cache: { waits: fast },
  database: { waits: fast },
};

let emulator: Emulator;
let database: TestMigrationTarget;
let aws: FakeAws;
let stageCounter = 0;
let stage: string;

before(async () => {
  emulator = await startEmulator({ port: 0 });
  database = await createMigrationTarget('stack');
});
after(async () => {
  await emulator.stop();
  await database.drop();
});
beforeEach(() => {
  aws = installFakeAws({ accountId, database });
  resetCalls();
  stageCounter += 1;
  stage = `st${process.pid % 1000}x${stageCounter}`;
});
afterEach(() => {
  aws.restore();
});

async function context(mode: Mode, env: Record<string, string> = {}): Promise<Ctx> {
  const loaded = loadDeployConfig({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: emulator.endpoint,
    AWS_ENDPOINT_URL_SNS: emulator.endpoint,
    AWS_ENDPOINT_URL_SQS: emulator.endpoint,
    STAGE: stage,
    ...env,
  });
  const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
  const clients = createClients(config.aws);
  recordEmulatorCalls(clients);
  return createContext(config, clients, collectingLog(), mode);
}

function imageUri(ctx: Ctx, which = digest): string {
  return `${accountId}.dkr.ecr.us-east-1.amazonaws.com/${ctx.names.repository}@${which}`;
}

async function up(mode: Mode = 'apply', env: Record<string, string> = {}) {
  const ctx = await context(mode, env);
  return provisionStack(ctx, { ...waits, imageUri: imageUri(ctx) });
}

const summary = (changes: Change[]) => changes.map((c) => `${c.action} ${c.kind} ${c.name}`);
const updated = (changes: Change[]) =>
  changes
    .filter((c) => c.action === Action.update)
    .map((c) => `${c.kind} ${c.name}: ${(c.fields ?? []).map((f) => f.field).join(',')}`);

test('a fresh up creates everything in the order of the flow, and a second up makes no mutating call', async () => {
  const first = await up();
  const kinds = first.changes.map((c) => c.kind);
  assert.ok(
    first.changes.every((c) => c.action === Action.create),
    summary(first.changes).join('\n'),
  );
  // the order of the architecture: each group before the next
  const order = [
    'vpc',
    'bucket',
    'dead-letter queue',
    'topic',
    'queue',
    'subscription',
    'bucket notification',
    'ecr repository',
    'log group',
    'iam role',
    'lambda function',
    'event source mapping',
    'schedule',
  ].map((kind) => kinds.indexOf(kind));
  assert.ok(
    order.every((index) => index >= 0),
    `missing kinds in ${kinds.join(', ')}`,
  );
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
    kinds.join(', '),
  );
  const cacheIndex = kinds.findIndex((k) => /cache|replication/i.test(k));
  const dbIndex = kinds.findIndex((k) => /^db|database|rds/i.test(k));
  assert.ok(
    kinds.indexOf('bucket notification') < cacheIndex &&
      cacheIndex < dbIndex &&
      dbIndex < kinds.indexOf('ecr repository'),
  );
  assert.ok(kinds.indexOf('schedule') < kinds.findIndex((k) => /alarm|alert|dashboard/i.test(k)));

  assert.equal(aws.lambda.functions.size, 3);
  assert.equal(aws.iam.roles.size, 3);
  const count = aws.lambda.functions.get(`ada-linecount-${stage}-count`)?.configuration;
  assert.equal(count?.Environment?.Variables?.REDIS_AUTH_SECRET_ARN, first.outputs.cacheAuthSecretArn);
  // the counting functions sign in as the application role; only the migration holds the master secret
  assert.equal(count?.Environment?.Variables?.DB_IAM_USER, 'linecount_app');
  assert.equal(count?.Environment?.Variables?.DB_SECRET_ARN, undefined);
  const migration = aws.lambda.functions.get(`ada-linecount-${stage}-migrate`)?.configuration;
  assert.equal(migration?.Environment?.Variables?.DB_SECRET_ARN, first.outputs.dbSecretArn);
  assert.equal(migration?.Environment?.Variables?.DB_APP_USER, 'linecount_app');
  assert.deepEqual(migration?.ImageConfigResponse?.ImageConfig?.Command, ['index.migrateHandler']);
  assert.notEqual(migration?.Role, count?.Role);
  // the migration ran: the tables and the role exist
  const { rows } = await database.pool.query(
    `SELECT (SELECT count(*)::int FROM information_schema.tables WHERE table_schema = $1) AS tables,
            (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles`,
    [database.schema, database.role],
  );
  assert.deepEqual(rows[0], { tables: 2, roles: 1 });
  assert.equal(first.outputs.imageUri?.endsWith(digest), true);

  resetCalls();
  const second = await up();
  assert.deepEqual(callNames(mutatingCalls()), []);
  assert.deepEqual(
    second.changes.filter((c) => c.action !== Action.unchanged),
    [],
  );
  assert.ok(callLog.length > 0, 'the second run did read everything');
});

test('up makes the cache and the database side by side, once the network they need is there', async () => {
  const ctx = await context('apply');
  const spans = new Map<string, { start: number; end?: number }>();
  let clock = 0;
  await provisionStack(ctx, {
    ...waits,
    imageUri: imageUri(ctx),
    observe: {
      onStart: (step) => spans.set(step, { start: (clock += 1) }),
      onFinish: (step) => {
        const span = spans.get(step);
        if (span !== undefined) span.end = clock += 1;
      },
    },
  });
  const span = (step: string) => {
    const found = spans.get(step);
    assert.ok(found?.end !== undefined, `${step} ran`);
    return { start: found.start, end: found.end };
  };
  const [network, cache, db, role] = ['network', 'cache', 'database', 'role'].map(span);
  assert.ok(network && cache && db && role);
  assert.ok(cache.start > network.end && db.start > network.end);
  assert.ok(
    cache.start < db.end && db.start < cache.end,
    'the cache and the database are in flight together',
  );
  // the bucket did not wait for the network
  assert.ok(span('bucket').start < network.end);
  assert.ok(role.start > cache.end && role.start > db.end);
});

test('changing the function memory changes exactly the functions memory', async () => {
  await up();
  resetCalls();
  const { changes } = await up('apply', { FUNCTION_MEMORY_MB: '1024' });
  assert.deepEqual(updated(changes), [
    `lambda function ada-linecount-${stage}-count: memorySize`,
    `lambda function ada-linecount-${stage}-flush: memorySize`,
  ]);
  assert.deepEqual(callNames(mutatingCalls()), [
    'lambda:UpdateFunctionConfiguration',
    'lambda:UpdateFunctionConfiguration',
  ]);
});

test('a new image updates the three functions and runs the migration once more; a second up runs nothing', async () => {
  await up();
  resetCalls();
  const newImage = async () => {
    const ctx = await context('apply');
    return provisionStack(ctx, { ...waits, imageUri: imageUri(ctx, `sha256:${'6'.repeat(64)}`) });
  };
  const { changes } = await newImage();
  assert.deepEqual(
    callNames(mutatingCalls()).filter((name) => name.startsWith('lambda:')),
    [
      'lambda:UpdateFunctionCode',
      'lambda:Invoke',
      'lambda:TagResource',
      'lambda:UpdateFunctionCode',
      'lambda:UpdateFunctionCode',
    ],
  );
  assert.deepEqual(
    changes.filter((c) => c.kind === 'database migration').map((c) => c.action),
    [Action.update],
  );
  resetCalls();
  await newImage();
  assert.deepEqual(callNames(mutatingCalls()), []);
});

test('a failed migration stops up before the counting functions exist, says why, and the next up runs it again', async () => {
  aws.lambda.runtimes.set('index.migrateHandler', () => {
    throw new Error('permission denied for database linecount');
  });
  await assert.rejects(up(), {
    message:
      /^cannot migrate the database: ada-linecount-\S+-migrate failed \(Unhandled\): Error: permission denied for database linecount \(its log is in \/aws\/lambda\/ada-linecount-\S+-migrate; fix the cause and run up again/,
  });
  assert.deepEqual([...aws.lambda.functions.keys()], [`ada-linecount-${stage}-migrate`]);
  aws.lambda.useDatabase(database);
  const second = await up();
  assert.deepEqual(
    second.changes.filter((c) => c.kind === 'database migration').map((c) => c.action),
    [Action.update],
  );
  assert.equal(aws.lambda.functions.size, 3);
  resetCalls();
  await up();
  assert.deepEqual(callNames(mutatingCalls()), []);
});

test('changing the queue visibility timeout sets exactly that attribute', async () => {
  await up();
  resetCalls();
  const { changes } = await up('apply', { QUEUE_VISIBILITY_TIMEOUT_SECONDS: '900' });
  assert.equal(updated(changes).length, 1, updated(changes).join('\n'));
  assert.match(updated(changes)[0] ?? '', /^queue .*VisibilityTimeout/);
  assert.deepEqual(callNames(mutatingCalls()), ['sqs:SetQueueAttributes']);
});

test('a security-group rule removed out of band is put back, and nothing else changes', async () => {
  await up();
  const [ruleId, rule] = [...aws.ec2.state.rules].find(([, r]) => !r.IsEgress && r.FromPort === 5432) ?? [];
  assert.ok(ruleId && rule, 'the database ingress rule exists');
  aws.ec2.state.rules.delete(ruleId);
  resetCalls();
  await up();
  assert.deepEqual(callNames(mutatingCalls()), ['ec2:AuthorizeSecurityGroupIngress']);
});

test('--plan makes no mutating call and reports what the real run then does', async () => {
  const planned = await up('plan');
  assert.deepEqual(callNames(mutatingCalls()), []);
  const applied = await up();
  assert.deepEqual(summary(planned.changes), summary(applied.changes));

  resetCalls();
  const replanned = await up('plan', { FUNCTION_MEMORY_MB: '2048', BATCH_SIZE: '20' });
  assert.deepEqual(callNames(mutatingCalls()), []);
  const reapplied = await up('apply', { FUNCTION_MEMORY_MB: '2048', BATCH_SIZE: '20' });
  assert.deepEqual(updated(replanned.changes), updated(reapplied.changes));
  assert.equal(updated(reapplied.changes).length, 3);
  const memory = reapplied.changes.find((c) => c.action === Action.update)?.fields?.[0];
  assert.deepEqual(memory, { field: 'memorySize', from: 512, to: 2048 });
});

// The first call of a given command fails: `before` it reaches the service,
// or `after` it succeeded but before its answer arrived (a lost response).
// Either way a second run finishes the job and a third changes nothing.
type Interruption = [command: string, when: 'before' | 'after'];

function interrupt(ctx: Ctx, [target, when]: Interruption): () => boolean {
  let fired = false;
  for (const service of stackServices) {
    const client = ctx.clients[service] as unknown as { send(command: object): Promise<unknown> };
    const original = client.send.bind(client);
    client.send = async (command: object) => {
      if (fired || command.constructor.name !== `${target}Command`) return original(command);
      fired = true;
      if (when === 'before') throw new Error(`interrupted before ${target}`);
      await original(command);
      throw new Error(`interrupted after ${target}`);
    };
  }
  return () => fired;
}

test('an up interrupted at any step converges when run again', async () => {
  const interruptions: Interruption[] = [
    ['CreateVpc', 'after'],
    ['AuthorizeSecurityGroupIngress', 'after'],
    ['CreateVpcEndpoint', 'before'],
    ['PutBucketVersioning', 'before'],
    ['CreateQueue', 'after'],
    ['PutBucketNotificationConfiguration', 'after'],
    ['CreateSecret', 'after'],
    ['CreateReplicationGroup', 'after'],
    ['CreateDBInstance', 'before'],
    ['SetRepositoryPolicy', 'before'],
    ['PutRetentionPolicy', 'before'],
    ['PutRolePolicy', 'after'],
    ['CreateFunction', 'after'],
    ['CreateEventSourceMapping', 'after'],
    ['CreateSchedule', 'before'],
    ['PutMetricAlarm', 'after'],
  ];
  const base = stage;
  for (const [index, interruption] of interruptions.entries()) {
    stage = `${base}i${index}`;
    const ctx = await context('apply');
    const fired = interrupt(ctx, interruption);
    await assert.rejects(provisionStack(ctx, { ...waits, imageUri: imageUri(ctx) }), /interrupted/);
    assert.ok(fired(), `${interruption[0]} was reached`);
    await up();
    resetCalls();
    const third = await up();
    assert.deepEqual(callNames(mutatingCalls()), [], `after interrupting ${interruption.join(' ')}`);
    assert.ok(third.changes.every((c) => c.action === Action.unchanged));
  }
});

test("down removes everything, the functions' roles after their network, and a second down makes no mutating call", async () => {
  const { outputs } = await up();
  // Lambda's ENIs linger after the function is gone: the security groups wait them out
  const functionGroup = [...aws.ec2.state.securityGroups.values()].find((g) => /function/.test(g.GroupName));
  assert.ok(functionGroup);
  aws.ec2.state.lingeringEnis.set(functionGroup.GroupId, 2);
  resetCalls();
  const ctx = await context('apply');
  await teardownStack(ctx, { force: false, finalSnapshot: false, ...waits });
  const mutating = callNames(mutatingCalls());
  assert.ok(mutating.length > 0);
  // the functions' roles go after the functions and their network: Lambda
  // deletes a function's network interfaces with its role
  const vpcDeleted = mutating.indexOf('ec2:DeleteVpc');
  assert.ok(vpcDeleted > mutating.lastIndexOf('lambda:DeleteFunction'));
  assert.deepEqual(
    mutating.slice(vpcDeleted + 1).filter((name) => name.startsWith('iam:')),
    ['iam:DeleteRolePolicy', 'iam:DeleteRole', 'iam:DeleteRolePolicy', 'iam:DeleteRole'],
  );
  for (const [name, size] of [
    ['functions', aws.lambda.functions.size],
    ['mappings', aws.lambda.mappings.size],
    ['roles', aws.iam.roles.size],
    ['repositories', aws.ecr.repositories.size],
    ['log groups', aws.logs.groups.size],
    ['schedules', aws.scheduler.schedules.size],
    ['vpcs', aws.ec2.state.vpcs.size],
    ['replication groups', aws.elasticache.state.replicationGroups.size],
    ['db instances', aws.rds.state.instances.size],
    ['alarms', aws.cloudwatch.alarms.size],
  ] as const) {
    assert.equal(size, 0, `${name} left after down`);
  }
  // S3/SNS/SQS on the emulator: the bucket (versioned, emptied) and queues are gone
  const buckets = await ctx.clients.s3.send(new (await import('@aws-sdk/client-s3')).ListBucketsCommand({}));
  assert.ok(!(buckets.Buckets ?? []).some((b) => b.Name === outputs.bucket));
  const queues = await ctx.clients.sqs.send(
    new (await import('@aws-sdk/client-sqs')).ListQueuesCommand({
      QueueNamePrefix: `ada-linecount-${stage}`,
    }),
  );
  assert.deepEqual(queues.QueueUrls ?? [], []);
  // what still carries the tags: only secrets inside their recovery window
  const leftovers = await findLeftovers(ctx);
  for (const leftover of leftovers) assert.match(leftover.arn, /:secretsmanager:/);

  resetCalls();
  await teardownStack(await context('apply'), { force: false, finalSnapshot: false, ...waits });
  assert.deepEqual(callNames(mutatingCalls()), []);
  assert.ok(callLog.every((call) => !isMutating(call.command)));
});
