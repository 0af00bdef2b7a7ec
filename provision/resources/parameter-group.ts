import {
  CacheParameterGroupAlreadyExistsFault,
  CacheParameterGroupNotFoundFault,
  CreateCacheParameterGroupCommand,
  DeleteCacheParameterGroupCommand,
  DescribeCacheParameterGroupsCommand,
  DescribeCacheParametersCommand,
  ModifyCacheParameterGroupCommand,
} from '@aws-sdk/client-elasticache';
import {
  CreateDBParameterGroupCommand,
  DBParameterGroupAlreadyExistsFault,
  DBParameterGroupNotFoundFault,
  DeleteDBParameterGroupCommand,
  DescribeDBParameterGroupsCommand,
  DescribeDBParametersCommand,
  ModifyDBParameterGroupCommand,
} from '@aws-sdk/client-rds';
import { UsageError } from '../../lib/errors.ts';
import { type Ctx, diffFields } from '../../lib/reconcile.ts';
import { type Tags, toTagList } from '../tags.ts';
import { type GroupCalls, type GroupNaming, groupNaming, groups } from './store-calls.ts';

// RDS and ElastiCache read their engine settings from a parameter group of a
// family (one per engine major version): the same resource under two APIs.
// One implementation; each service supplies its calls, its exception classes
// and how it names the group.

export interface ParameterGroupSpec {
  name: string;
  family: string;
  description: string;
  parameters: Record<string, string>;
  tags: Tags;
  // why this family, and what to do about a group of another one:
  // `CACHE_ENGINE=redis needs redis7`, `set CACHE_ENGINE back, or ...`
  familyReason: string;
  remedy: string;
}

interface ParameterGroupState {
  family: string;
  parameters: Record<string, string | undefined>;
}

type ParameterPage = {
  Parameters?: { ParameterName?: string | undefined; ParameterValue?: string | undefined }[];
  Marker?: string | undefined;
};

// describe: the group's family
interface ParameterGroupCalls extends GroupCalls<string> {
  // one page of the parameters set on this group (Source=user), not the family's defaults
  describeParameters(ctx: Ctx, name: string, marker: string | undefined): Promise<ParameterPage>;
  create(ctx: Ctx, spec: ParameterGroupSpec): Promise<unknown>;
  setParameters(ctx: Ctx, spec: ParameterGroupSpec): Promise<unknown>;
}

// a parameter is compared by its value; parameters we do not set are ignored
export const parameterDrift = diffFields;

const parameterGroups = (api: ParameterGroupCalls) =>
  groups(
    api,
    {
      async state(ctx, name, family): Promise<ParameterGroupState> {
        const parameters: Record<string, string | undefined> = {};
        let marker: string | undefined;
        do {
          const page = await api.describeParameters(ctx, name, marker);
          for (const p of page.Parameters ?? [])
            if (p.ParameterName) parameters[p.ParameterName] = p.ParameterValue;
          marker = page.Marker;
        } while (marker);
        return { family, parameters };
      },
      // A group's family cannot change (no Modify call takes one), so a group
      // of another family is refused before anything is planned.
      drift(desired, actual) {
        if (actual.family !== desired.family) {
          throw new UsageError(
            `${api.what} ${desired.name} has family ${actual.family}, ${desired.familyReason}: ${desired.remedy}`,
          );
        }
        return parameterDrift(desired.parameters, actual.parameters);
      },
      // a new group holds the family's defaults: our parameters are set right after
      async create(ctx, desired) {
        await api.create(ctx, desired);
        await api.setParameters(ctx, desired);
        return { family: desired.family, parameters: desired.parameters };
      },
      async update(ctx, desired) {
        await api.setParameters(ctx, desired);
      },
    },
    (_ctx: Ctx, spec: ParameterGroupSpec) => spec,
  );

// the parameters as both Modify calls list them
const parameterList = (spec: ParameterGroupSpec) =>
  Object.entries(spec.parameters).map(([ParameterName, ParameterValue]) => ({
    ParameterName,
    ParameterValue,
  }));

// finding a group also reads its parameters; creating one also sets them
function naming(service: 'elasticache' | 'rds'): GroupNaming {
  const { kind, what, permissions: can } = groupNaming(service, 'Parameter');
  const parameters = `${service}:Describe${service === 'rds' ? 'DB' : 'Cache'}Parameters`;
  const permissions = {
    ...can,
    find: `${can.find} and ${parameters}`,
    create: `${can.create} and ${can.update}`,
  };
  return { kind, what, permissions };
}

export const cacheParameterGroups = parameterGroups({
  ...naming('elasticache'),
  describe: async (ctx, name) =>
    (
      await ctx.clients.elasticache.send(
        new DescribeCacheParameterGroupsCommand({ CacheParameterGroupName: name }),
      )
    ).CacheParameterGroups?.map((g) => g.CacheParameterGroupFamily ?? '')[0],
  describeParameters: (ctx, name, Marker) =>
    ctx.clients.elasticache.send(
      new DescribeCacheParametersCommand({ CacheParameterGroupName: name, Source: 'user', Marker }),
    ),
  create: (ctx, spec) =>
    ctx.clients.elasticache.send(
      new CreateCacheParameterGroupCommand({
        CacheParameterGroupName: spec.name,
        CacheParameterGroupFamily: spec.family,
        Description: spec.description,
        Tags: toTagList(spec.tags),
      }),
    ),
  setParameters: (ctx, spec) =>
    ctx.clients.elasticache.send(
      new ModifyCacheParameterGroupCommand({
        CacheParameterGroupName: spec.name,
        ParameterNameValues: parameterList(spec),
      }),
    ),
  remove: (ctx, name) =>
    ctx.clients.elasticache.send(new DeleteCacheParameterGroupCommand({ CacheParameterGroupName: name })),
  NotFound: CacheParameterGroupNotFoundFault,
  AlreadyExists: CacheParameterGroupAlreadyExistsFault,
});

export const dbParameterGroups = parameterGroups({
  ...naming('rds'),
  describe: async (ctx, name) =>
    (
      await ctx.clients.rds.send(new DescribeDBParameterGroupsCommand({ DBParameterGroupName: name }))
    ).DBParameterGroups?.map((g) => g.DBParameterGroupFamily ?? '')[0],
  describeParameters: (ctx, name, Marker) =>
    ctx.clients.rds.send(
      new DescribeDBParametersCommand({ DBParameterGroupName: name, Source: 'user', Marker }),
    ),
  create: (ctx, spec) =>
    ctx.clients.rds.send(
      new CreateDBParameterGroupCommand({
        DBParameterGroupName: spec.name,
        DBParameterGroupFamily: spec.family,
        Description: spec.description,
        Tags: toTagList(spec.tags),
      }),
    ),
  setParameters: (ctx, spec) =>
    ctx.clients.rds.send(
      new ModifyDBParameterGroupCommand({
        DBParameterGroupName: spec.name,
        Parameters: parameterList(spec).map((p) => ({ ...p, ApplyMethod: 'immediate' })),
      }),
    ),
  remove: (ctx, name) =>
    ctx.clients.rds.send(new DeleteDBParameterGroupCommand({ DBParameterGroupName: name })),
  NotFound: DBParameterGroupNotFoundFault,
  AlreadyExists: DBParameterGroupAlreadyExistsFault,
});
