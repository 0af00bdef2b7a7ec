import {
  CacheClusterNotFoundFault,
  CreateReplicationGroupCommand,
  DeleteReplicationGroupCommand,
  DescribeCacheClustersCommand,
  DescribeReplicationGroupsCommand,
  ModifyReplicationGroupCommand,
  type ModifyReplicationGroupMessage,
  ReplicationGroupAlreadyExistsFault,
  ReplicationGroupNotFoundFault,
  waitUntilReplicationGroupAvailable,
  waitUntilReplicationGroupDeleted,
} from '@aws-sdk/client-elasticache';
import { type Ctx, diffFields, type FieldChange, orAbsent, pending, step } from '../../lib/reconcile.ts';
import { toTagList } from '../tags.ts';
import { type AuthSecret, deleteAuthSecret, ensureAuthSecret, readAuthToken } from './cache-secret.ts';
import { cacheParameterGroups } from './parameter-group.ts';
import {
  deleteStore,
  type Endpoint,
  ensureStore,
  type Store,
  type StoreInputs,
  type StoreOptions,
  type StoreState,
} from './store-calls.ts';
import { cacheSubnetGroups } from './subnet-group.ts';

// The ElastiCache replication group: the idempotency store and write-behind
// buffer. ensureCache also keeps what it needs: its AUTH token secret, its
// subnet group and its parameter group.

// Engine versions and the parameter-group family each belongs to
// (DescribeCacheEngineVersions: valkey 8.x → valkey8, redis 7.x → redis7).
export const cacheEngines = {
  valkey: { version: '8.0', family: 'valkey8' },
  redis: { version: '7.1', family: 'redis7' },
} as const;

export const cachePort = 6379;

// One primary and one replica in the other zone, with automatic failover and
// Multi-AZ. The buffer holds counted records until their commit and the
// dedupe marks; with a single node that fails, the function cannot work until
// the node is replaced (tens of minutes). The replica doubles the node cost
// (about $9/month more for cache.t4g.micro valkey in us-east-1), a price worth
// the pipeline staying up. Replication is asynchronous, so a failover can lose
// the newest writes: their messages are not yet acknowledged, and SQS delivers
// them again (docs/design.md, "Exactly once, and nothing lost").
export const cacheReplicas = 1;

// The buffer must never lose a key to eviction: an evicted entry or mark is a
// record whose message waits for a commit that never comes and is retried
// (docs/design.md), so memory pressure must fail writes instead, at once.
export const cacheParameters = { 'maxmemory-policy': 'noeviction' } as const;

export const cacheWaits = {
  // creating a replication group takes ~10-15 min; a node-type change longer
  maxWaitSeconds: 3600,
  minDelaySeconds: 15,
  maxDelaySeconds: 60,
  progressEveryMs: 15_000,
};

export interface CacheOutputs extends Endpoint {
  authSecretArn: string;
}

export type CacheOptions = StoreOptions;

export type DesiredReplicationGroup = ReturnType<typeof desiredReplicationGroup>;

// host and port are known once available
export interface ActualReplicationGroup extends StoreState {
  nodeType: string;
  atRestEncryption: boolean;
  transitEncryption: boolean;
  authTokenEnabled: boolean;
}

export function desiredReplicationGroup(ctx: Ctx, inputs: StoreInputs, secret: AuthSecret) {
  const engine = ctx.config.provision.cacheEngine;
  return {
    name: ctx.names.cache,
    engine,
    engineVersion: cacheEngines[engine].version,
    nodeType: ctx.config.provision.cacheNodeType,
    parameterGroup: ctx.names.cacheParameterGroup,
    securityGroupIds: [inputs.securityGroupId],
    subnetGroup: ctx.names.cacheSubnetGroup,
    authSecretArn: secret.arn,
    // set when this run created the secret: the group gets this token, and one
    // that already exists had its old token lost with the old secret
    newAuthToken: secret.created,
  };
}

const lostToken: FieldChange = { field: 'AuthToken', from: '(lost)', to: '(new, in the secret)' };

// What ModifyReplicationGroup can change in place; the rest (encryption,
// engine) needs a new group and is only warned about.
export function replicationGroupDrift(
  desired: DesiredReplicationGroup,
  actual: ActualReplicationGroup,
): FieldChange[] {
  const modifiable = (g: DesiredReplicationGroup | ActualReplicationGroup) => ({
    CacheNodeType: g.nodeType,
    CacheParameterGroupName: g.parameterGroup,
    SecurityGroupIds: [...g.securityGroupIds].sort(),
  });
  const changes = diffFields(modifiable(desired), modifiable(actual));
  return desired.newAuthToken === undefined ? changes : [...changes, lostToken];
}

async function findReplicationGroup(ctx: Ctx, name: string): Promise<ActualReplicationGroup | undefined> {
  const client = ctx.clients.elasticache;
  const found = await step(`read replication group ${name}`, 'elasticache:DescribeReplicationGroups', () =>
    orAbsent(
      () => client.send(new DescribeReplicationGroupsCommand({ ReplicationGroupId: name })),
      ReplicationGroupNotFoundFault,
    ),
  );
  const group = found?.ReplicationGroups?.[0];
  if (group === undefined) return undefined;
  // the parameter group and security groups live on the member clusters
  const member = group.MemberClusters?.[0];
  const clusters =
    member === undefined
      ? undefined
      : await step(
          `read cache cluster ${member} of replication group ${name}`,
          'elasticache:DescribeCacheClusters',
          () =>
            orAbsent(
              () => client.send(new DescribeCacheClustersCommand({ CacheClusterId: member })),
              CacheClusterNotFoundFault,
            ),
        );
  const cluster = clusters?.CacheClusters?.[0];
  const endpoint = group.NodeGroups?.[0]?.PrimaryEndpoint;
  return {
    status: group.Status ?? 'available',
    nodeType: group.CacheNodeType ?? '',
    parameterGroup: cluster?.CacheParameterGroup?.CacheParameterGroupName,
    securityGroupIds: (cluster?.SecurityGroups ?? []).map((g) => g.SecurityGroupId ?? ''),
    host: endpoint?.Address,
    port: endpoint?.Port,
    atRestEncryption: group.AtRestEncryptionEnabled ?? false,
    transitEncryption: group.TransitEncryptionEnabled ?? false,
    authTokenEnabled: group.AuthTokenEnabled ?? false,
  };
}

const replicationGroups: Store<DesiredReplicationGroup, ActualReplicationGroup, CacheOutputs> = {
  what: 'ElastiCache replication group',
  console: 'ElastiCache',
  waitUntil: (ctx, until, timing, ReplicationGroupId) =>
    (until === 'available' ? waitUntilReplicationGroupAvailable : waitUntilReplicationGroupDeleted)(
      { client: ctx.clients.elasticache, ...timing },
      { ReplicationGroupId },
    ),
  find: findReplicationGroup,
  names: 'cache',
  waits: cacheWaits,
  subnetGroups: cacheSubnetGroups,
  parameterGroups: cacheParameterGroups,
  parameterGroup(ctx) {
    const engine = ctx.config.provision.cacheEngine;
    const { family } = cacheEngines[engine];
    return {
      family,
      description: `${ctx.names.base}: noeviction, the buffer must not lose keys`,
      parameters: cacheParameters,
      familyReason: `CACHE_ENGINE=${engine} needs ${family}`,
      remedy: 'set CACHE_ENGINE back, or tear the cache down first (teardown/down.ts)',
    };
  },
  resource: (available) => ({
    kind: 'cache-replication-group',
    permissions: {
      find: 'elasticache:DescribeReplicationGroups and elasticache:DescribeCacheClusters',
      create: 'elasticache:CreateReplicationGroup',
      update: 'elasticache:ModifyReplicationGroup',
      delete: 'elasticache:DeleteReplicationGroup',
    },
    async find(ctx, name) {
      const group = await findReplicationGroup(ctx, name);
      if (group !== undefined && (!group.atRestEncryption || !group.transitEncryption)) {
        ctx.log.warn(
          `replication group ${name} is not encrypted at rest and in transit; this cannot be changed in place: tear the cache down and run up again`,
        );
      }
      return group;
    },
    drift: replicationGroupDrift,
    async create(ctx, desired) {
      const AuthToken = desired.newAuthToken ?? (await readAuthToken(ctx, desired.authSecretArn));
      await ctx.clients.elasticache.send(
        new CreateReplicationGroupCommand({
          ReplicationGroupId: desired.name,
          ReplicationGroupDescription: `${ctx.names.base} idempotency store and write-behind buffer`,
          Engine: desired.engine,
          EngineVersion: desired.engineVersion,
          CacheNodeType: desired.nodeType,
          NumCacheClusters: 1 + cacheReplicas,
          AutomaticFailoverEnabled: cacheReplicas > 0,
          MultiAZEnabled: cacheReplicas > 0,
          CacheSubnetGroupName: desired.subnetGroup,
          CacheParameterGroupName: desired.parameterGroup,
          SecurityGroupIds: desired.securityGroupIds,
          Port: cachePort,
          AtRestEncryptionEnabled: true,
          // AUTH requires in-transit encryption (CreateReplicationGroup AuthToken)
          TransitEncryptionEnabled: true,
          AuthToken,
          AutoMinorVersionUpgrade: true,
          Tags: toTagList(ctx.names.tags),
        }),
      );
      // as asked for, until the waiter sees it available with its endpoint (the
      // new token stays out of the group's state)
      return {
        status: 'creating',
        nodeType: desired.nodeType,
        parameterGroup: desired.parameterGroup,
        securityGroupIds: desired.securityGroupIds,
        atRestEncryption: true,
        transitEncryption: true,
        authTokenEnabled: true,
      };
    },
    alreadyExists: (error) => error instanceof ReplicationGroupAlreadyExistsFault,
    // each change is applied on an available group and waited out
    async update(ctx, desired, actual, drift) {
      const modify = async (change: Partial<ModifyReplicationGroupMessage>) => {
        await ctx.clients.elasticache.send(
          new ModifyReplicationGroupCommand({
            ReplicationGroupId: desired.name,
            ApplyImmediately: true,
            ...change,
          }),
        );
        await available(ctx, desired.name);
      };
      if (actual.status !== 'available') await available(ctx, desired.name);
      const settings = drift.filter((f) => f.field !== lostToken.field);
      if (settings.length > 0) await modify(Object.fromEntries(settings.map((f) => [f.field, f.to])));
      if (desired.newAuthToken !== undefined) {
        await modify({ AuthToken: desired.newAuthToken, AuthTokenUpdateStrategy: 'SET' });
      }
    },
    outputs: (_ctx, desired, actual) => ({
      host: actual?.host ?? pending('cache endpoint'),
      port: actual?.port ?? cachePort,
      authSecretArn: desired.authSecretArn,
    }),
    isNotFound: (error) => error instanceof ReplicationGroupNotFoundFault,
  }),
};

export async function ensureCache(ctx: Ctx, inputs: StoreInputs, options: CacheOptions = {}) {
  // the secret first: an interrupted run must never leave a group whose token is lost
  const secret = await ensureAuthSecret(ctx);
  return ensureStore(ctx, replicationGroups, inputs, options, desiredReplicationGroup(ctx, inputs, secret));
}

export interface DeleteCacheOptions extends CacheOptions {
  // delete the AUTH secret at once instead of after the recovery window
  force?: boolean;
}

export async function deleteCache(ctx: Ctx, options: DeleteCacheOptions = {}): Promise<void> {
  await deleteStore(ctx, replicationGroups, options, {
    remove: (ctx, name) =>
      ctx.clients.elasticache.send(new DeleteReplicationGroupCommand({ ReplicationGroupId: name })),
  });
  await deleteAuthSecret(ctx, options.force ?? false);
}
