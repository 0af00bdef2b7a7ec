import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  DeletePublicAccessBlockCommand,
  PutBucketEncryptionCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { SetSubscriptionAttributesCommand, SetTopicAttributesCommand } from '@aws-sdk/client-sns';
import {
  GetQueueUrlCommand,
  type ListMessageMoveTasksResultEntry,
  SendMessageCommand,
  type SQSClient,
  type StartMessageMoveTaskRequest,
} from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { type Clients, createClients, destroyClients } from '../../../lib/clients.ts';
import { loadDeployConfig, loadOpsConfig } from '../../../lib/config.ts';
import { freePort } from '../../../lib/net.ts';
import type { StackOutputs } from '../../../lib/outputs.ts';
import { PolicyFile } from '../../../lib/policy-files.ts';
import type { Ctx, Mode } from '../../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../../local/emulator.ts';
import { auditBucket } from '../../../ops/audit.ts';
import { openDatabase, openRedis } from '../../../ops/common.ts';
import { copyMessages, parseRedriveArgs, redrive } from '../../../ops/redrive.ts';
import { collectStatus } from '../../../ops/status.ts';
import { checkPermissions } from '../../../provision/preflight.ts';
import { githubProviderArn } from '../../../provision/resources/github-oidc.ts';
import { routeTableName } from '../../../provision/resources/route-table.ts';
import { findSubscription } from '../../../provision/resources/subscription.ts';
import { createContext, type ProvisionOptions, provisionStack } from '../../../provision/up.ts';
import { findLeftovers, teardownStack } from '../../../teardown/down.ts';
import { recordEmulatorCalls } from '../../fakes/calls.ts';
import { type FakeAws, installFakeAws } from '../../fakes/index.ts';
import { answerSnsErrorsAsDocumented } from '../../fakes/sns.ts';
import { collectingLog } from '../../provision/context.ts';
import type { Scope } from '../../support/iam/actions.ts';
import type { Principal, Request } from '../../support/iam/evaluate.ts';
import { addDeployerRole, policyFile, roleInFake, stackScope } from '../../support/iam/principals.ts';
import { liveOf, recordAuthorizations, recordRegistryCalls } from '../../support/iam/recorder.ts';
import { createMigrationTarget } from '../../support/migration.ts';
import { capture } from '../../support/ops/io.ts';
import { startRegistry } from '../../support/registry.ts';
import { startPublicRegistry } from '../../support/registry-public.ts';
import { createTestSchema } from '../../support/services.ts';

// Everything the deploy, ops and teardown workflows do, as the deployer, with
// each call mapped to what IAM authorizes it as (test/support/iam):
//  - a plan, a fresh up that builds and pushes the image, a second up;
//  - changed settings, and repairs of what someone changed by hand;
//  - an image pushed with Docker and deployed by tag;
//  - the ops commands (status, audit --fix, redrive, the cache token and
//    the database secret), recorded apart: an operator runs them, not the deployer;
//  - the generator's role and the account's GitHub OIDC provider (GITHUB_REPOSITORY
//    set, as in deploy.yml), shared with another stack for a while;
//  - a down held up by a subnet someone added, a down that finishes, an up
//    within the secrets' recovery window, a down and a second down.
// The control plane runs on the stateful fakes, S3/SNS/SQS on the emulator
// (its SNS answering as SNS documents), the image push on a real registry, and
// the migration function's invocations run the real migration on a schema of
// the test PostgreSQL, so the requests are the ones these services would
// receive.

// the emulator's account: ARNs it returns and ARNs built from the identity must agree
export const deployScope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };

// the repository whose generate.yml the generator role trusts
export const githubRepository = 'ada-contabilidade/ada-linecount';

export interface DeployRecording {
  // what the deployer's credentials were used for: SDK calls and the registry API
  caller: Request[];
  // what the ops commands' operator requested
  operator: Request[];
  // what AWS does with a role the deployer handed it, by role ARN
  byRole: Map<string, Request[]>;
  unmapped: string[];
  // the roles as up.ts wrote them, by ARN
  roles: Map<string, Principal>;
  // the DbiResourceId of the database instance when the roles were read
  dbResourceId: string | undefined;
  outputs: StackOutputs;
}

const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };

export async function recordDeployment(stage: string): Promise<DeployRecording> {
  const emulator = await startEmulator({ port: 0 });
  const registry = await startRegistry();
  const publicEcr = await startPublicRegistry();
  const db = await createTestSchema(`iam_${stage}`);
  const migrated = await createMigrationTarget(`iam_${stage}_m`);
  const aws = installFakeAws({
    accountId: deployScope.accountId,
    region: deployScope.region,
    database: migrated,
  });
  aws.ecr.useRegistry(registry);
  // the deploy role the STS fake's caller is a session of, for the check before each run
  addDeployerRole(
    aws.iam,
    stackScope(deployScope, stage),
    policyFile(PolicyFile.deployer, stackScope(deployScope, stage)),
  );
  const log = recordAuthorizations(deployScope, liveOf(aws));
  const restoreFetch = recordRegistryCalls(registry.host, deployScope, log);
  const opened: Clients[] = [];
  try {
    const deployment = new Deployment(aws, emulator, stage, opened);
    deployment.build = {
      baseImage: publicEcr.reference,
      entry: 'test/support/bundle-entry.ts',
      caBundleUrl: publicEcr.caBundleUrl,
    };
    const outputs = await deployment.run(db, log);
    return {
      caller: log.caller,
      operator: deployment.operator,
      byRole: log.byRole,
      unmapped: log.unmapped,
      roles: deployment.roles,
      dbResourceId: deployment.dbResourceId,
      outputs,
    };
  } finally {
    restoreFetch();
    log.stop();
    aws.restore();
    for (const clients of opened) destroyClients(clients);
    await db.drop();
    await migrated.drop();
    await publicEcr.stop();
    await registry.stop();
    await emulator.stop();
  }
}

class Deployment {
  build: ProvisionOptions['build'] = {};
  // after the first up, the image is given by digest: nothing is built again
  imageUri: string | undefined;
  readonly roles = new Map<string, Principal>();
  dbResourceId: string | undefined;
  operator: Request[] = [];

  constructor(
    private readonly aws: FakeAws,
    private readonly emulator: Emulator,
    private readonly stage: string,
    private readonly opened: Clients[],
  ) {}

  private config(env: Record<string, string> = {}) {
    const loaded = loadDeployConfig({
      AWS_REGION: deployScope.region,
      AWS_ENDPOINT_URL_S3: this.emulator.endpoint,
      AWS_ENDPOINT_URL_SNS: this.emulator.endpoint,
      AWS_ENDPOINT_URL_SQS: this.emulator.endpoint,
      STAGE: this.stage,
      ALERT_EMAIL: 'ops@example.com',
      GITHUB_REPOSITORY: githubRepository,
      ...env,
    });
    return { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
  }

  // the deployer's context: its S3/SNS/SQS calls are recorded
  async context(mode: Mode = 'apply', env: Record<string, string> = {}): Promise<Ctx> {
    const config = this.config(env);
    const clients = createClients(config.aws);
    this.opened.push(clients);
    recordEmulatorCalls(clients);
    answerSnsErrorsAsDocumented(clients.sns);
    return createContext(config, clients, collectingLog(), mode);
  }

  // someone else's clients on the emulator (the console, another team): not recorded
  private someoneElse(): Clients {
    const clients = createClients(this.config().aws);
    this.opened.push(clients);
    return clients;
  }

  private options(imageUri = this.imageUri): ProvisionOptions {
    return {
      ...(imageUri === undefined ? { build: this.build } : { imageUri }),
      network: { waits: { ...fast, dependencyTimeoutSeconds: 1 } },
      cache: { waits: fast },
      database: { waits: fast },
    };
  }

  // as up.ts runs: the permission check first, then the stack
  async up(mode: Mode = 'apply', env: Record<string, string> = {}, imageUri = this.imageUri) {
    const ctx = await this.context(mode, env);
    const check = await checkPermissions(ctx);
    assert.ok(check.checked, 'the permissions were checked');
    assert.deepEqual(check.denied, [], 'the deployer policy allows what the check simulates');
    return provisionStack(ctx, this.options(imageUri));
  }

  async down(finalSnapshot = true) {
    const ctx = await this.context();
    await teardownStack(ctx, { force: true, finalSnapshot, ...this.options() });
    // as down.ts does at the end: what still carries the stack's tags
    await findLeftovers(ctx);
  }

  async run(db: { pool: pg.Pool; schema: string }, log: { caller: Request[] }): Promise<StackOutputs> {
    await this.up('plan');
    const { outputs } = await this.up();
    this.imageUri = outputs.imageUri;
    await this.up();

    // settings changed by the user
    await this.up('apply', {
      FUNCTION_MEMORY_MB: '1024',
      QUEUE_VISIBILITY_TIMEOUT_SECONDS: '900',
      BATCH_SIZE: '20',
      CACHE_NODE_TYPE: 'cache.t4g.small',
      DB_INSTANCE_CLASS: 'db.t4g.small',
    });
    await this.changeByHand(outputs);
    await this.up();

    // an image pushed with Docker, deployed by its tag, then back to the built one
    const repository = [...this.aws.ecr.repositories.values()][0];
    assert.ok(repository, 'up created the repository');
    this.aws.ecr.pushImage(repository.name, `sha256:${'7'.repeat(64)}`, 'v2');
    await this.up('apply', {}, `${repository.uri}:v2`);
    await this.up();

    // the ops commands are an operator's, not the deployer's: their requests go apart
    const before = log.caller.length;
    await this.operate(outputs, db);
    this.operator = log.caller.splice(before);

    for (const role of this.aws.iam.roles.values()) {
      if (role.name.startsWith(`ada-linecount-${this.stage}-`))
        this.roles.set(role.arn, roleInFake(this.aws.iam, role.arn));
    }
    this.dbResourceId = [...this.aws.rds.state.instances.values()][0]?.resourceId;
    // another stage's generator comes to rely on the GitHub provider this one created
    this.providerTags().set('used-by:ada-linecount-other', 'ada-linecount-other-generator');
    await this.downPastForeignSubnet();
    // deployed again within the recovery window of the cache token's secret;
    // the final snapshot was kept by the first down (snapshot names have a
    // one-second resolution: these downs come too quickly for another)
    await this.up();
    // the other stage is torn down: this stack is the provider's last user
    this.providerTags().delete('used-by:ada-linecount-other');
    await this.down(false);
    await this.down(false);
    return outputs;
  }

  private providerTags(): Map<string, string> {
    const provider = this.aws.iam.providers.get(githubProviderArn({ identity: deployScope }));
    assert.ok(provider, 'up created the GitHub OIDC provider');
    return provider.tags;
  }

  // What someone may change in the console, each of which the next up repairs.
  private async changeByHand(outputs: StackOutputs): Promise<void> {
    const { aws } = this;
    const ctx = await this.context();
    const { names } = ctx;
    const ec2 = aws.ec2.state;
    // a rule of the database group deleted, and a port opened on the cache group
    const databaseRule = [...ec2.rules].find(([, r]) => !r.IsEgress && r.FromPort === 5432);
    assert.ok(databaseRule);
    ec2.rules.delete(databaseRule[0]);
    const cacheRule = [...ec2.rules.values()].find((r) => !r.IsEgress && r.FromPort === 6379);
    assert.ok(cacheRule);
    const extra = `sgr-${randomUUID().slice(0, 8)}`;
    ec2.rules.set(extra, { ...cacheRule, SecurityGroupRuleId: extra, FromPort: 22, ToPort: 22 });
    // a subnet moved to the VPC's main route table
    const ours = [...ec2.routeTables.values()].find((t) =>
      t.Tags.some((tag) => tag.Value === routeTableName(ctx)),
    );
    const main = [...ec2.routeTables.values()].find((t) => t.Associations.some((a) => a.Main));
    const moved = ours?.Associations[0];
    assert.ok(ours && main && moved, 'the route tables up made');
    ours.Associations = ours.Associations.filter((a) => a !== moved);
    main.Associations.push({
      ...moved,
      RouteTableAssociationId: `rtbassoc-${randomUUID().slice(0, 8)}`,
      RouteTableId: main.RouteTableId,
    });
    // the S3 gateway endpoint taken off the route table
    const gateway = [...ec2.endpoints.values()].find((e) => e.VpcEndpointType === 'Gateway');
    assert.ok(gateway);
    gateway.RouteTableIds = [];
    // the cache and database subnet groups narrowed to one subnet
    const cacheSubnets = aws.elasticache.state.subnetGroups.get(names.cacheSubnetGroup);
    const dbSubnets = aws.rds.state.subnetGroups.get(names.dbSubnetGroup);
    assert.ok(cacheSubnets && dbSubnets);
    cacheSubnets.subnetIds = cacheSubnets.subnetIds.slice(0, 1);
    dbSubnets.subnetIds = dbSubnets.subnetIds.slice(0, 1);
    // the bucket's public access block removed, its default encryption switched to KMS
    const hand = this.someoneElse();
    await hand.s3.send(new DeletePublicAccessBlockCommand({ Bucket: outputs.bucket }));
    await hand.s3.send(
      new PutBucketEncryptionCommand({
        Bucket: outputs.bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }],
        },
      }),
    );
    // the topic opened to anyone, the subscription switched to raw delivery
    await hand.sns.send(
      new SetTopicAttributesCommand({
        TopicArn: outputs.topicArn,
        AttributeName: 'Policy',
        AttributeValue: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
      }),
    );
    // looked up with someone else's clients: only the stack's own calls are recorded
    const subscription = await findSubscription(
      { ...ctx, clients: hand },
      { topicArn: outputs.topicArn, queueArn: outputs.queueArn },
    );
    assert.ok(subscription);
    await hand.sns.send(
      new SetSubscriptionAttributesCommand({
        SubscriptionArn: subscription.arn,
        AttributeName: 'RawMessageDelivery',
        AttributeValue: 'true',
      }),
    );
    // the repository's scanning, immutability and tags
    for (const repository of aws.ecr.repositories.values()) {
      repository.scanOnPush = false;
      repository.imageTagMutability = 'MUTABLE';
      repository.tags.clear();
    }
    // the mapping's tags, the schedule's rate, an alarm
    for (const mapping of aws.lambda.mappings.values()) mapping.tags.clear();
    for (const schedule of aws.scheduler.schedules.values()) schedule.ScheduleExpression = 'rate(5 minutes)';
    aws.cloudwatch.alarms.delete([...aws.cloudwatch.alarms.keys()][0] ?? '');
    // the function role's policy, tags, trust and boundary (an administrator
    // may remove a boundary; the deployer may not)
    const role = aws.iam.roles.get(names.role);
    assert.ok(role);
    role.inlinePolicies.clear();
    role.tags.clear();
    role.trustPolicy = JSON.stringify({ Version: '2012-10-17', Statement: [] });
    role.permissionsBoundary = undefined;
  }

  // status, audit --fix, redrive (by copying where the endpoint has no
  // move tasks, and with a move task followed to its end where it has), and
  // the database secret the ops commands read to reach RDS.
  private async operate(outputs: StackOutputs, db: { pool: pg.Pool; schema: string }): Promise<void> {
    const ctx = await this.context();
    const hand = this.someoneElse();
    await hand.s3.send(
      new PutObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/a.csv', Body: 'a\nb\n' }),
    );
    await hand.sqs.send(new SendMessageCommand({ QueueUrl: outputs.dlqUrl, MessageBody: '{}' }));
    const ops = loadOpsConfig({ STAGE: this.stage, AWS_REGION: deployScope.region });
    await collectStatus({
      target: { outputs, local: false, aws: ctx.config.aws },
      sqs: ctx.clients.sqs,
      cloudwatch: ctx.clients.cloudwatch,
      buffer: ops.buffer,
      redis: { state: 'skipped', reason: 'not part of this check' },
      database: { state: 'skipped', reason: 'not part of this check' },
    });
    // a row for an object deleted since: the audit finds it gone (HeadObject 404)
    const s3 = { s3: ctx.clients.s3, sqs: ctx.clients.sqs, pool: db.pool, schema: db.schema, outputs };
    await auditBucket(s3, { prefix: 'uploads/', fix: true });
    await redrive(ctx.clients.sqs, outputs, parseRedriveArgs(['--yes']), capture(process.cwd()));
    await hand.sqs.send(new SendMessageCommand({ QueueUrl: outputs.dlqUrl, MessageBody: '{}' }));
    withMoveTasks(ctx.clients.sqs, hand.sqs);
    await redrive(ctx.clients.sqs, outputs, parseRedriveArgs(['--yes']), capture(process.cwd()));
    // status reaches the cache with its token; nothing listens on the port and
    // the client connects lazily, so only the secret is read
    const cache = await openRedis(ops, {
      host: '127.0.0.1',
      port: await freePort(),
      tls: false,
      authSecretArn: outputs.cacheAuthSecretArn,
    });
    cache.close();
    // the database: its master secret is read first, then the first round
    // trip finds nothing at db.invalid and names it
    await assert.rejects(
      openDatabase(
        loadOpsConfig({
          STAGE: this.stage,
          AWS_REGION: deployScope.region,
          DB_HOST: 'db.invalid',
          DB_SECRET_ARN: outputs.dbSecretArn,
        }),
      ),
      /cannot reach PostgreSQL at db\.invalid:5432/,
    );
  }

  // A subnet someone added to the stack's VPC and route table, and a managed
  // policy someone attached to the function role: down detaches both, stops
  // at the VPC while the subnet is there, and finishes once it is gone.
  private async downPastForeignSubnet(): Promise<void> {
    const { aws } = this;
    const ctx = await this.context();
    const role = aws.iam.roles.get(ctx.names.role);
    assert.ok(role);
    role.attachedPolicies.push('arn:aws:iam::aws:policy/ReadOnlyAccess');
    // and a role an administrator stripped of its boundary: down puts it back before deleting
    const scheduler = aws.iam.roles.get(ctx.names.schedulerRole);
    assert.ok(scheduler);
    scheduler.permissionsBoundary = undefined;
    const ec2 = aws.ec2.state;
    const ours = [...ec2.routeTables.values()].find((t) =>
      t.Tags.some((tag) => tag.Value === routeTableName(ctx)),
    );
    assert.ok(ours);
    const foreign = `subnet-${randomUUID().slice(0, 8)}`;
    ec2.subnets.set(foreign, {
      SubnetId: foreign,
      VpcId: ours.VpcId,
      CidrBlock: '10.42.200.0/24',
      AvailabilityZone: `${deployScope.region}a`,
      State: 'available',
      pendingDescribes: 0,
      Tags: [],
    });
    ours.Associations.push({
      RouteTableAssociationId: `rtbassoc-${randomUUID().slice(0, 8)}`,
      RouteTableId: ours.RouteTableId,
      SubnetId: foreign,
      Main: false,
    });
    await assert.rejects(this.down(), /cannot delete VPC/);
    ec2.subnets.delete(foreign);
    await this.down();
  }
}

// SQS message move tasks as the service runs them, on top of the emulator's
// queues (which have none): StartMessageMoveTask moves the messages with the
// service's own client, ListMessageMoveTasks reports the task. Low priority:
// inside the call recorder, which so records both calls.
function withMoveTasks(sqs: SQSClient, service: SQSClient): void {
  const tasks: ListMessageMoveTasksResultEntry[] = [];
  const queueUrl = async (arn: string) =>
    (await service.send(new GetQueueUrlCommand({ QueueName: arn.slice(arn.lastIndexOf(':') + 1) })))
      .QueueUrl ?? '';
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'StartMessageMoveTaskCommand') {
        const input = args.input as StartMessageMoveTaskRequest;
        const task: ListMessageMoveTasksResultEntry = {
          Status: 'RUNNING',
          SourceArn: input.SourceArn,
          DestinationArn: input.DestinationArn,
          ApproximateNumberOfMessagesMoved: 0,
          StartedTimestamp: Date.now(),
        };
        tasks.unshift(task);
        const { moved } = await copyMessages(
          service,
          await queueUrl(input.SourceArn ?? ''),
          await queueUrl(input.DestinationArn ?? ''),
          1_000,
        );
        Object.assign(task, { Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: moved });
        return { output: { TaskHandle: randomUUID(), $metadata: {} }, response: {} } as never;
      }
      if (context.commandName === 'ListMessageMoveTasksCommand') {
        return { output: { Results: tasks.map((t) => ({ ...t })), $metadata: {} }, response: {} } as never;
      }
      return next(args);
    },
    { step: 'initialize', name: 'moveTasks', priority: 'low' },
  );
}
