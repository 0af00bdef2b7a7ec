import { randomBytes } from 'node:crypto';
import {
  CacheClusterNotFoundFault,
  CacheParameterGroupAlreadyExistsFault,
  CacheParameterGroupNotFoundFault,
  CacheSubnetGroupAlreadyExistsFault,
  CacheSubnetGroupNotFoundFault,
  CreateCacheParameterGroupCommand,
  CreateCacheSubnetGroupCommand,
  CreateReplicationGroupCommand,
  DeleteCacheParameterGroupCommand,
  DeleteCacheSubnetGroupCommand,
  DeleteReplicationGroupCommand,
  DescribeCacheClustersCommand,
  DescribeCacheParameterGroupsCommand,
  DescribeCacheParametersCommand,
  DescribeCacheSubnetGroupsCommand,
  DescribeReplicationGroupsCommand,
  ModifyCacheParameterGroupCommand,
  ModifyCacheSubnetGroupCommand,
  ModifyReplicationGroupCommand,
  ReplicationGroupAlreadyExistsFault,
  ReplicationGroupNotFoundFault,
  waitUntilReplicationGroupAvailable,
  waitUntilReplicationGroupDeleted,
} from '@aws-sdk/client-elasticache';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RestoreSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { stepError } from '../../lib/errors.ts';
import { withProgress } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  isPlan,
  pending,
  record,
} from '../../lib/reconcile.ts';
import { toTagList } from '../tags.ts';

// Engine versions and the parameter-group family each belongs to
// (DescribeCacheEngineVersions: valkey 8.x → valkey8, redis 7.x → redis7).
export const cacheEngines = {
  valkey: { version: '8.0', family: 'valkey8' },
  redis: { version: '7.1', family: 'redis7' },
} as const;

export const cachePort = 6379;

// One primary and one replica in the other zone, with automatic failover and
// Multi-AZ. The buffer holds counted-but-unflushed records and the dedupe
// marks; a single node that fails loses them until the node is replaced (tens
// of minutes) and the function cannot work meanwhile. The replica doubles the
// node cost (about $9/month more for cache.t4g.micro valkey in us-east-1), a
// price worth the pipeline staying up; replication is asynchronous, so a
// failover can still lose the newest writes, which the S3-vs-database
// reconcile restores.
export const cacheReplicas = 1;

// ElastiCache AUTH tokens: 16-128 printable characters, no spaces, `"`, `/`
// or `@` (CreateReplicationGroup AuthToken). Letters and digits only keep it
// safe in URLs and shells too; 48 of them carry ~285 bits.
export const authTokenLength = 48;
const tokenAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// A deleted secret can be restored for this many days (DeleteSecret allows
// 7-30): the shortest, so a torn-down stack stops showing up soon, yet long
// enough to undo a mistaken teardown.
export const secretRecoveryDays = 7;

export const cacheWaits = {
  // creating a replication group takes ~10-15 min; a node-type change longer
  maxWaitSeconds: 3600,
  minDelaySeconds: 15,
  maxDelaySeconds: 60,
  progressEveryMs: 15_000,
};
export type CacheWaits = typeof cacheWaits;

export interface CacheInputs {
  subnetIds: readonly string[];
  securityGroupId: string;
}

export interface CacheOutputs {
  host: string;
  port: number;
  authSecretArn: string;
}

export interface CacheOptions {
  waits?: Partial<CacheWaits>;
}

export function generateAuthToken(length = authTokenLength): string {
  let token = '';
  while (token.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // rejection sampling keeps every character equally likely (248 = 4 × 62)
      if (byte < 248 && token.length < length) token += tokenAlphabet[byte % tokenAlphabet.length];
    }
  }
  return token;
}

export interface DesiredReplicationGroup {
  id: string;
  engine: 'valkey' | 'redis';
  engineVersion: string;
  nodeType: string;
  parameterGroup: string;
  securityGroupIds: string[];
  subnetGroup: string;
}

export interface ActualReplicationGroup {
  id: string;
  status: string;
  nodeType: string;
  parameterGroup: string | undefined;
  securityGroupIds: string[];
  host: string | undefined;
  port: number | undefined;
  atRestEncryption: boolean;
  transitEncryption: boolean;
  authTokenEnabled: boolean;
}

export function desiredReplicationGroup(ctx: Ctx, inputs: CacheInputs): DesiredReplicationGroup {
  const engine = ctx.config.provision.cacheEngine;
  return {
    id: ctx.names.cache,
    engine,
    engineVersion: cacheEngines[engine].version,
    nodeType: ctx.config.provision.cacheNodeType,
    parameterGroup: ctx.names.cacheParameterGroup,
    securityGroupIds: [inputs.securityGroupId],
    subnetGroup: ctx.names.cacheSubnetGroup,
  };
}

// What ModifyReplicationGroup can change in place; the rest (encryption,
// engine) needs a new group and is only warned about.
export function replicationGroupDrift(
  desired: DesiredReplicationGroup,
  actual: ActualReplicationGroup,
): FieldChange[] {
  return diffFields(
    {
      CacheNodeType: desired.nodeType,
      CacheParameterGroupName: desired.parameterGroup,
      SecurityGroupIds: [...desired.securityGroupIds].sort(),
    },
    {
      CacheNodeType: actual.nodeType,
      CacheParameterGroupName: actual.parameterGroup,
      SecurityGroupIds: [...actual.securityGroupIds].sort(),
    },
  );
}

export function subnetGroupDrift(desired: readonly string[], actual: readonly string[]): FieldChange[] {
  return diffFields({ SubnetIds: [...desired].sort() }, { SubnetIds: [...actual].sort() });
}

// The buffer must never lose a key to eviction: a dropped stream entry is a
// lost count (DESIGN.md), so memory pressure must fail writes instead.
export const cacheParameters = { 'maxmemory-policy': 'noeviction' } as const;

export function parameterDrift(
  desired: Record<string, string>,
  actual: Record<string, string | undefined>,
): FieldChange[] {
  return diffFields(desired, actual);
}

// ---- the AUTH token secret ----

interface ActualSecret {
  arn: string;
  deleted: boolean;
}

export async function findAuthSecret(ctx: Ctx): Promise<ActualSecret | undefined> {
  try {
    const secret = await ctx.clients.secretsManager.send(
      new DescribeSecretCommand({ SecretId: ctx.names.cacheAuthSecret }),
    );
    return { arn: secret.ARN ?? '', deleted: secret.DeletedDate !== undefined };
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw stepError(
      `read secret ${ctx.names.cacheAuthSecret}`,
      error,
      'check secretsmanager:DescribeSecret permission',
    );
  }
}

// The token is generated once and kept in Secrets Manager; later runs reuse it.
// It is never logged or recorded: changes name the secret, never its value.
async function ensureAuthSecret(ctx: Ctx): Promise<{ arn: string; created?: string }> {
  const kind = 'secret';
  const name = ctx.names.cacheAuthSecret;
  const actual = await findAuthSecret(ctx);
  if (actual !== undefined && !actual.deleted) {
    record(ctx, { kind, name, action: Action.unchanged });
    return { arn: actual.arn };
  }
  if (actual?.deleted) {
    // scheduled for deletion by an earlier teardown: restore it, and the token with it
    record(ctx, {
      kind,
      name,
      action: Action.update,
      fields: [{ field: 'scheduledForDeletion', from: true, to: false }],
    });
    if (!isPlan(ctx)) {
      await ctx.clients.secretsManager
        .send(new RestoreSecretCommand({ SecretId: name }))
        .catch((error: unknown) => {
          throw stepError(`restore secret ${name}`, error, 'check secretsmanager:RestoreSecret permission');
        });
    }
    return { arn: actual.arn };
  }
  record(ctx, { kind, name, action: Action.create });
  if (isPlan(ctx)) return { arn: pending('cache AUTH secret ARN') };
  const token = generateAuthToken();
  try {
    const created = await ctx.clients.secretsManager.send(
      new CreateSecretCommand({
        Name: name,
        Description: `AUTH token of ElastiCache replication group ${ctx.names.cache}`,
        SecretString: token,
        Tags: toTagList(ctx.names.tags),
      }),
    );
    return { arn: created.ARN ?? '', created: token };
  } catch (error) {
    if (error instanceof ResourceExistsException) {
      const raced = await findAuthSecret(ctx);
      if (raced !== undefined) return { arn: raced.arn };
    }
    throw stepError(`create secret ${name}`, error, 'check secretsmanager:CreateSecret permission');
  }
}

async function readAuthToken(ctx: Ctx, arn: string): Promise<string> {
  try {
    const { SecretString } = await ctx.clients.secretsManager.send(
      new GetSecretValueCommand({ SecretId: arn }),
    );
    if (!SecretString) throw new Error('the secret has no string value');
    return SecretString;
  } catch (error) {
    throw stepError(
      `read the cache AUTH token from ${arn}`,
      error,
      'check secretsmanager:GetSecretValue permission',
    );
  }
}

// ---- subnet group ----

export async function findCacheSubnetGroup(ctx: Ctx): Promise<{ subnetIds: string[] } | undefined> {
  try {
    const { CacheSubnetGroups = [] } = await ctx.clients.elasticache.send(
      new DescribeCacheSubnetGroupsCommand({ CacheSubnetGroupName: ctx.names.cacheSubnetGroup }),
    );
    const group = CacheSubnetGroups[0];
    return group && { subnetIds: (group.Subnets ?? []).map((s) => s.SubnetIdentifier ?? '') };
  } catch (error) {
    if (error instanceof CacheSubnetGroupNotFoundFault) return undefined;
    throw stepError(
      `read cache subnet group ${ctx.names.cacheSubnetGroup}`,
      error,
      'check elasticache:DescribeCacheSubnetGroups permission',
    );
  }
}

async function ensureCacheSubnetGroup(ctx: Ctx, subnetIds: readonly string[]): Promise<void> {
  const kind = 'cache-subnet-group';
  const name = ctx.names.cacheSubnetGroup;
  const client = ctx.clients.elasticache;
  const actual = await findCacheSubnetGroup(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.create });
    if (isPlan(ctx)) return;
    try {
      await client.send(
        new CreateCacheSubnetGroupCommand({
          CacheSubnetGroupName: name,
          CacheSubnetGroupDescription: `${ctx.names.base} private subnets`,
          SubnetIds: [...subnetIds],
          Tags: toTagList(ctx.names.tags),
        }),
      );
    } catch (error) {
      // a concurrent run created it with the same subnets
      if (error instanceof CacheSubnetGroupAlreadyExistsFault) return;
      throw stepError(
        `create cache subnet group ${name}`,
        error,
        'check elasticache:CreateCacheSubnetGroup permission',
      );
    }
    return;
  }
  const drift = subnetGroupDrift(subnetIds, actual.subnetIds);
  record(ctx, { kind, name, action: drift.length ? Action.update : Action.unchanged, fields: drift });
  if (isPlan(ctx) || drift.length === 0) return;
  await client
    .send(new ModifyCacheSubnetGroupCommand({ CacheSubnetGroupName: name, SubnetIds: [...subnetIds] }))
    .catch((error: unknown) => {
      throw stepError(`update cache subnet group ${name}`, error);
    });
}

// ---- parameter group ----

export async function findCacheParameterGroup(
  ctx: Ctx,
): Promise<{ family: string; parameters: Record<string, string | undefined> } | undefined> {
  const client = ctx.clients.elasticache;
  const name = ctx.names.cacheParameterGroup;
  try {
    const { CacheParameterGroups = [] } = await client.send(
      new DescribeCacheParameterGroupsCommand({ CacheParameterGroupName: name }),
    );
    const group = CacheParameterGroups[0];
    if (group === undefined) return undefined;
    const parameters: Record<string, string | undefined> = {};
    let Marker: string | undefined;
    do {
      // Source=user: only what was set on this group, not the family's defaults
      const page = await client.send(
        new DescribeCacheParametersCommand({ CacheParameterGroupName: name, Source: 'user', Marker }),
      );
      for (const p of page.Parameters ?? [])
        if (p.ParameterName) parameters[p.ParameterName] = p.ParameterValue;
      Marker = page.Marker;
    } while (Marker);
    return { family: group.CacheParameterGroupFamily ?? '', parameters };
  } catch (error) {
    if (error instanceof CacheParameterGroupNotFoundFault) return undefined;
    throw stepError(
      `read cache parameter group ${name}`,
      error,
      'check elasticache:DescribeCacheParameterGroups and elasticache:DescribeCacheParameters permissions',
    );
  }
}

async function ensureCacheParameterGroup(ctx: Ctx): Promise<void> {
  const kind = 'cache-parameter-group';
  const name = ctx.names.cacheParameterGroup;
  const family = cacheEngines[ctx.config.provision.cacheEngine].family;
  const client = ctx.clients.elasticache;
  const actual = await findCacheParameterGroup(ctx);
  if (actual !== undefined && actual.family !== family) {
    throw stepError(
      `use cache parameter group ${name}`,
      new Error(
        `it has family ${actual.family}, CACHE_ENGINE=${ctx.config.provision.cacheEngine} needs ${family}`,
      ),
      'set CACHE_ENGINE back, or tear the cache down first (teardown/down.ts)',
    );
  }
  const drift = parameterDrift(cacheParameters, actual?.parameters ?? {});
  record(ctx, {
    kind,
    name,
    action: actual === undefined ? Action.create : drift.length ? Action.update : Action.unchanged,
    ...(actual === undefined ? {} : { fields: drift }),
  });
  if (isPlan(ctx)) return;
  if (actual === undefined) {
    try {
      await client.send(
        new CreateCacheParameterGroupCommand({
          CacheParameterGroupName: name,
          CacheParameterGroupFamily: family,
          Description: `${ctx.names.base}: noeviction, the buffer must not lose keys`,
          Tags: toTagList(ctx.names.tags),
        }),
      );
    } catch (error) {
      if (!(error instanceof CacheParameterGroupAlreadyExistsFault)) {
        throw stepError(
          `create cache parameter group ${name}`,
          error,
          'check elasticache:CreateCacheParameterGroup permission',
        );
      }
    }
  }
  if (actual === undefined || drift.length) {
    await client
      .send(
        new ModifyCacheParameterGroupCommand({
          CacheParameterGroupName: name,
          ParameterNameValues: Object.entries(cacheParameters).map(([ParameterName, ParameterValue]) => ({
            ParameterName,
            ParameterValue,
          })),
        }),
      )
      .catch((error: unknown) => {
        throw stepError(`set parameters on cache parameter group ${name}`, error);
      });
  }
}

// ---- replication group ----

export async function findReplicationGroup(ctx: Ctx): Promise<ActualReplicationGroup | undefined> {
  const client = ctx.clients.elasticache;
  let group: Awaited<ReturnType<typeof describeGroup>>;
  async function describeGroup() {
    const { ReplicationGroups = [] } = await client.send(
      new DescribeReplicationGroupsCommand({ ReplicationGroupId: ctx.names.cache }),
    );
    return ReplicationGroups[0];
  }
  try {
    group = await describeGroup();
  } catch (error) {
    if (error instanceof ReplicationGroupNotFoundFault) return undefined;
    throw stepError(
      `read replication group ${ctx.names.cache}`,
      error,
      'check elasticache:DescribeReplicationGroups permission',
    );
  }
  if (group === undefined) return undefined;
  // the parameter group and security groups live on the member clusters
  const member = group.MemberClusters?.[0];
  let cluster: {
    CacheParameterGroup?: { CacheParameterGroupName?: string };
    SecurityGroups?: { SecurityGroupId?: string }[];
  } = {};
  if (member !== undefined) {
    try {
      const { CacheClusters = [] } = await client.send(
        new DescribeCacheClustersCommand({ CacheClusterId: member }),
      );
      cluster = CacheClusters[0] ?? {};
    } catch (error) {
      if (!(error instanceof CacheClusterNotFoundFault)) {
        throw stepError(
          `read cache cluster ${member} of replication group ${ctx.names.cache}`,
          error,
          'check elasticache:DescribeCacheClusters permission',
        );
      }
    }
  }
  const endpoint = group.NodeGroups?.[0]?.PrimaryEndpoint;
  return {
    id: group.ReplicationGroupId ?? ctx.names.cache,
    status: group.Status ?? 'available',
    nodeType: group.CacheNodeType ?? '',
    parameterGroup: cluster.CacheParameterGroup?.CacheParameterGroupName,
    securityGroupIds: (cluster.SecurityGroups ?? []).map((g) => g.SecurityGroupId ?? ''),
    host: endpoint?.Address,
    port: endpoint?.Port,
    atRestEncryption: group.AtRestEncryptionEnabled ?? false,
    transitEncryption: group.TransitEncryptionEnabled ?? false,
    authTokenEnabled: group.AuthTokenEnabled ?? false,
  };
}

function waiterOptions(ctx: Ctx, waits: CacheWaits) {
  return {
    client: ctx.clients.elasticache,
    maxWaitTime: waits.maxWaitSeconds,
    minDelay: waits.minDelaySeconds,
    maxDelay: waits.maxDelaySeconds,
  };
}

async function waitForGroup(ctx: Ctx, waits: CacheWaits): Promise<ActualReplicationGroup> {
  const what = `ElastiCache replication group ${ctx.names.cache}`;
  await withProgress(
    what,
    ctx.log.progress,
    waitUntilReplicationGroupAvailable(waiterOptions(ctx, waits), { ReplicationGroupId: ctx.names.cache }),
    waits.progressEveryMs,
  ).catch((error: unknown) => {
    throw stepError(
      `wait for ${what} to become available`,
      error,
      'see its events in the ElastiCache console',
    );
  });
  const ready = await findReplicationGroup(ctx);
  if (ready === undefined) throw stepError(`find ${what}`, new Error('it disappeared while being waited on'));
  return ready;
}

export async function ensureCache(
  ctx: Ctx,
  inputs: CacheInputs,
  options: CacheOptions = {},
): Promise<CacheOutputs> {
  const waits = { ...cacheWaits, ...options.waits };
  // the secret first: an interrupted run must never leave a group whose token is lost
  const secret = await ensureAuthSecret(ctx);
  await ensureCacheSubnetGroup(ctx, inputs.subnetIds);
  await ensureCacheParameterGroup(ctx);

  const kind = 'cache-replication-group';
  const desired = desiredReplicationGroup(ctx, inputs);
  const client = ctx.clients.elasticache;
  let actual = await findReplicationGroup(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name: desired.id, action: Action.create });
    if (isPlan(ctx)) return { host: pending('cache endpoint'), port: cachePort, authSecretArn: secret.arn };
    try {
      await client.send(
        new CreateReplicationGroupCommand({
          ReplicationGroupId: desired.id,
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
          AuthToken: secret.created ?? (await readAuthToken(ctx, secret.arn)),
          AutoMinorVersionUpgrade: true,
          Tags: toTagList(ctx.names.tags),
        }),
      );
    } catch (error) {
      if (!(error instanceof ReplicationGroupAlreadyExistsFault)) {
        throw stepError(
          `create ElastiCache replication group ${desired.id}`,
          error,
          'check elasticache:CreateReplicationGroup permission and that the node type exists in this region',
        );
      }
    }
    actual = await waitForGroup(ctx, waits);
    return { host: actual.host ?? '', port: actual.port ?? cachePort, authSecretArn: secret.arn };
  }

  if (!actual.atRestEncryption || !actual.transitEncryption) {
    ctx.log.warn(
      `replication group ${desired.id} is not encrypted at rest and in transit; this cannot be changed in place: tear the cache down and run up again`,
    );
  }
  const drift = replicationGroupDrift(desired, actual);
  // the secret was created now while the group already had a token: the old one is lost, so set the new one
  const tokenLost = secret.created !== undefined;
  const fields = tokenLost
    ? [...drift, { field: 'AuthToken', from: '(lost)', to: '(new, in the secret)' }]
    : drift;
  record(ctx, { kind, name: desired.id, action: fields.length ? Action.update : Action.unchanged, fields });
  if (isPlan(ctx)) {
    return {
      host: actual.host ?? pending('cache endpoint'),
      port: actual.port ?? cachePort,
      authSecretArn: secret.arn,
    };
  }
  if (actual.status !== 'available') actual = await waitForGroup(ctx, waits);
  if (drift.length) {
    const change = Object.fromEntries(drift.map((f) => [f.field, f.to]));
    await client
      .send(
        new ModifyReplicationGroupCommand({
          ReplicationGroupId: desired.id,
          ApplyImmediately: true,
          ...change,
        }),
      )
      .catch((error: unknown) => {
        throw stepError(`update replication group ${desired.id} (${Object.keys(change).join(', ')})`, error);
      });
    actual = await waitForGroup(ctx, waits);
  }
  if (secret.created !== undefined) {
    await client
      .send(
        new ModifyReplicationGroupCommand({
          ReplicationGroupId: desired.id,
          ApplyImmediately: true,
          AuthToken: secret.created,
          AuthTokenUpdateStrategy: 'SET',
        }),
      )
      .catch((error: unknown) => {
        throw stepError(`set a new AUTH token on replication group ${desired.id}`, error);
      });
    actual = await waitForGroup(ctx, waits);
  }
  return { host: actual.host ?? '', port: actual.port ?? cachePort, authSecretArn: secret.arn };
}

// ---- delete ----

export interface DeleteCacheOptions extends CacheOptions {
  // delete the AUTH secret at once instead of after the recovery window
  force?: boolean;
}

export async function deleteCache(ctx: Ctx, options: DeleteCacheOptions = {}): Promise<void> {
  const waits = { ...cacheWaits, ...options.waits };
  const client = ctx.clients.elasticache;
  const group = await findReplicationGroup(ctx);
  record(ctx, {
    kind: 'cache-replication-group',
    name: ctx.names.cache,
    action: group ? Action.delete : Action.absent,
  });
  if (group !== undefined && !isPlan(ctx)) {
    const what = `ElastiCache replication group ${ctx.names.cache} to be deleted`;
    if (group.status !== 'deleting') {
      // a group that is creating or modifying refuses deletion (InvalidReplicationGroupStateFault)
      if (group.status !== 'available') await waitForGroup(ctx, waits);
      try {
        await client.send(new DeleteReplicationGroupCommand({ ReplicationGroupId: ctx.names.cache }));
      } catch (error) {
        if (!(error instanceof ReplicationGroupNotFoundFault)) {
          throw stepError(`delete replication group ${ctx.names.cache}`, error);
        }
      }
    }
    await withProgress(
      what,
      ctx.log.progress,
      waitUntilReplicationGroupDeleted(waiterOptions(ctx, waits), { ReplicationGroupId: ctx.names.cache }),
      waits.progressEveryMs,
    );
  }

  await deleteFound(ctx, {
    kind: 'cache-parameter-group',
    name: ctx.names.cacheParameterGroup,
    found: (await findCacheParameterGroup(ctx)) !== undefined,
    remove: () =>
      client.send(
        new DeleteCacheParameterGroupCommand({ CacheParameterGroupName: ctx.names.cacheParameterGroup }),
      ),
    isNotFound: (error) => error instanceof CacheParameterGroupNotFoundFault,
    what: 'cache parameter group',
  });
  await deleteFound(ctx, {
    kind: 'cache-subnet-group',
    name: ctx.names.cacheSubnetGroup,
    found: (await findCacheSubnetGroup(ctx)) !== undefined,
    remove: () =>
      client.send(new DeleteCacheSubnetGroupCommand({ CacheSubnetGroupName: ctx.names.cacheSubnetGroup })),
    isNotFound: (error) => error instanceof CacheSubnetGroupNotFoundFault,
    what: 'cache subnet group',
  });

  const secret = await findAuthSecret(ctx);
  const SecretId = ctx.names.cacheAuthSecret;
  await deleteFound(ctx, {
    kind: 'secret',
    name: SecretId,
    // a secret already scheduled for deletion is as good as gone
    found: secret !== undefined && !secret.deleted,
    remove: () =>
      ctx.clients.secretsManager.send(
        new DeleteSecretCommand(
          options.force
            ? { SecretId, ForceDeleteWithoutRecovery: true }
            : { SecretId, RecoveryWindowInDays: secretRecoveryDays },
        ),
      ),
    isNotFound: (error) => error instanceof ResourceNotFoundException,
    what: 'the cache AUTH secret',
  });
}
