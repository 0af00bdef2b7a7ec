import {
  CacheSubnetGroupAlreadyExistsFault,
  CacheSubnetGroupNotFoundFault,
  CreateCacheSubnetGroupCommand,
  DeleteCacheSubnetGroupCommand,
  DescribeCacheSubnetGroupsCommand,
  ModifyCacheSubnetGroupCommand,
} from '@aws-sdk/client-elasticache';
import {
  CreateDBSubnetGroupCommand,
  DBSubnetGroupAlreadyExistsFault,
  DBSubnetGroupNotFoundFault,
  DeleteDBSubnetGroupCommand,
  DescribeDBSubnetGroupsCommand,
  ModifyDBSubnetGroupCommand,
} from '@aws-sdk/client-rds';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  type Resource,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import { type Tags, toTagList } from '../tags.ts';
import { type GroupNaming, groupNaming, orAbsent } from './store-calls.ts';

// RDS and ElastiCache place their nodes in a subnet group: the same resource
// under two APIs. One implementation; each service supplies its calls, its
// exception classes and how it names the group.

export interface SubnetGroupSpec {
  name: string;
  description: string;
  subnetIds: string[];
  tags: Tags;
}

interface SubnetGroupState {
  subnetIds: string[];
}

type Subnets = { SubnetIdentifier?: string | undefined }[] | undefined;

export interface SubnetGroupApi extends GroupNaming {
  // the group's subnets; the not-found exception when it does not exist
  describe(ctx: Ctx, name: string): Promise<{ Subnets?: Subnets } | undefined>;
  create(ctx: Ctx, spec: SubnetGroupSpec): Promise<unknown>;
  modify(ctx: Ctx, spec: SubnetGroupSpec): Promise<unknown>;
  remove(ctx: Ctx, name: string): Promise<unknown>;
  NotFound: abstract new (...args: never[]) => Error;
  AlreadyExists: abstract new (...args: never[]) => Error;
}

export const cacheSubnetGroups: SubnetGroupApi = {
  ...groupNaming('elasticache', 'Subnet'),
  describe: async (ctx, name) =>
    (await ctx.clients.elasticache.send(new DescribeCacheSubnetGroupsCommand({ CacheSubnetGroupName: name })))
      .CacheSubnetGroups?.[0],
  create: (ctx, spec) =>
    ctx.clients.elasticache.send(
      new CreateCacheSubnetGroupCommand({
        CacheSubnetGroupName: spec.name,
        CacheSubnetGroupDescription: spec.description,
        SubnetIds: spec.subnetIds,
        Tags: toTagList(spec.tags),
      }),
    ),
  modify: (ctx, spec) =>
    ctx.clients.elasticache.send(
      new ModifyCacheSubnetGroupCommand({ CacheSubnetGroupName: spec.name, SubnetIds: spec.subnetIds }),
    ),
  remove: (ctx, name) =>
    ctx.clients.elasticache.send(new DeleteCacheSubnetGroupCommand({ CacheSubnetGroupName: name })),
  NotFound: CacheSubnetGroupNotFoundFault,
  AlreadyExists: CacheSubnetGroupAlreadyExistsFault,
};

export const dbSubnetGroups: SubnetGroupApi = {
  ...groupNaming('rds', 'Subnet'),
  describe: async (ctx, name) =>
    (await ctx.clients.rds.send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: name })))
      .DBSubnetGroups?.[0],
  create: (ctx, spec) =>
    ctx.clients.rds.send(
      new CreateDBSubnetGroupCommand({
        DBSubnetGroupName: spec.name,
        DBSubnetGroupDescription: spec.description,
        SubnetIds: spec.subnetIds,
        Tags: toTagList(spec.tags),
      }),
    ),
  modify: (ctx, spec) =>
    ctx.clients.rds.send(
      new ModifyDBSubnetGroupCommand({ DBSubnetGroupName: spec.name, SubnetIds: spec.subnetIds }),
    ),
  remove: (ctx, name) => ctx.clients.rds.send(new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: name })),
  NotFound: DBSubnetGroupNotFoundFault,
  AlreadyExists: DBSubnetGroupAlreadyExistsFault,
};

export function subnetGroupDrift(desired: readonly string[], actual: readonly string[]): FieldChange[] {
  return diffFields({ SubnetIds: [...desired].sort() }, { SubnetIds: [...actual].sort() });
}

function subnetGroup(api: SubnetGroupApi): Resource<SubnetGroupSpec, SubnetGroupState, void> {
  return {
    kind: api.kind,
    permissions: api.permissions,
    find: (ctx, name) =>
      step(`read ${api.what} ${name}`, api.permissions.find, async () => {
        const group = await orAbsent(() => api.describe(ctx, name), api.NotFound);
        return group && { subnetIds: (group.Subnets ?? []).map((s) => s.SubnetIdentifier ?? '') };
      }),
    drift: (desired, actual) => subnetGroupDrift(desired.subnetIds, actual.subnetIds),
    async create(ctx, desired) {
      await api.create(ctx, desired);
      return { subnetIds: desired.subnetIds };
    },
    alreadyExists: (error) => error instanceof api.AlreadyExists,
    async update(ctx, desired) {
      await api.modify(ctx, desired);
    },
    outputs: () => undefined,
    remove: api.remove,
    isNotFound: (error) => error instanceof api.NotFound,
  };
}

export const ensureSubnetGroup = (
  ctx: Ctx,
  api: SubnetGroupApi,
  name: string,
  subnetIds: readonly string[],
) =>
  reconcile(ctx, subnetGroup(api), {
    name,
    description: `${ctx.names.base} private subnets`,
    subnetIds: [...subnetIds],
    tags: ctx.names.tags,
  });

export const deleteSubnetGroup = (ctx: Ctx, api: SubnetGroupApi, name: string) =>
  destroy(ctx, subnetGroup(api), name);
