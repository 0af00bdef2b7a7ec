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
import { type Ctx, diffFields, type FieldChange } from '../../lib/reconcile.ts';
import { type Tags, toTagList } from '../tags.ts';
import { type GroupCalls, groupNaming, groups } from './store-calls.ts';

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

type SubnetGroupFound = { Subnets?: { SubnetIdentifier?: string | undefined }[] };

interface SubnetGroupCalls extends GroupCalls<SubnetGroupFound> {
  create(ctx: Ctx, spec: SubnetGroupSpec): Promise<unknown>;
  modify(ctx: Ctx, spec: SubnetGroupSpec): Promise<unknown>;
}

export function subnetGroupDrift(desired: readonly string[], actual: readonly string[]): FieldChange[] {
  return diffFields({ SubnetIds: [...desired].sort() }, { SubnetIds: [...actual].sort() });
}

const subnetGroups = (api: SubnetGroupCalls) =>
  groups(
    api,
    {
      state: (_ctx, _name, group): SubnetGroupState => ({
        subnetIds: (group.Subnets ?? []).map((s) => s.SubnetIdentifier ?? ''),
      }),
      drift: (desired, actual) => subnetGroupDrift(desired.subnetIds, actual.subnetIds),
      async create(ctx, desired) {
        await api.create(ctx, desired);
        return { subnetIds: desired.subnetIds };
      },
      async update(ctx, desired) {
        await api.modify(ctx, desired);
      },
    },
    (ctx: Ctx, name: string, subnetIds: readonly string[]): SubnetGroupSpec => ({
      name,
      description: `${ctx.names.base} private subnets`,
      subnetIds: [...subnetIds],
      tags: ctx.names.tags,
    }),
  );

export const cacheSubnetGroups = subnetGroups({
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
});

export const dbSubnetGroups = subnetGroups({
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
});
