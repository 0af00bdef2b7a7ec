import type { Handlers } from './calls.ts';

// RDS and ElastiCache keep subnet groups and parameter groups (with the
// parameters set on them) the same way under two APIs: CreateCacheSubnetGroup
// and CreateDBSubnetGroup, DescribeCacheParameters and DescribeDBParameters.
// One fake for both, given each service's prefix, errors and what uses a group.

interface Tag {
  Key?: string | undefined;
  Value?: string | undefined;
}

export interface StoreGroups {
  subnetGroups: Map<string, { subnetIds: string[]; tags: Tag[] }>;
  parameterGroups: Map<string, { family: string; parameters: Record<string, string>; tags: Tag[] }>;
}

type Fault = new (options: { message: string; $metadata: object }) => Error;

export interface StoreGroupApi {
  // how the API spells its names: CacheSubnetGroupName, DescribeDBParameters, ...
  prefix: 'Cache' | 'DB';
  // how ModifyXParameterGroup lists the parameters
  parametersField: 'ParameterNameValues' | 'Parameters';
  // RDS: a DB subnet group must cover at least two availability zones
  minSubnets: number;
  faults: {
    subnetGroupNotFound: Fault;
    subnetGroupExists: Fault;
    subnetGroupInUse: Fault;
    parameterGroupNotFound: Fault;
    parameterGroupExists: Fault;
    parameterGroupInUse: Fault;
    invalidParameter: Fault;
  };
  // a group a cluster or an instance still uses cannot be deleted
  inUse: { subnetGroup(name: string): boolean; parameterGroup(name: string): boolean };
}

type Input = Record<string, unknown>;
type ParameterInput = { ParameterName?: string; ParameterValue?: string }[];

export function storeGroupHandlers(state: StoreGroups, api: StoreGroupApi): Handlers {
  const { prefix, faults } = api;
  const fail = (Fault: Fault, message: string) => new Fault({ message, $metadata: {} });
  const subnetName = (input: Input) => String(input[`${prefix}SubnetGroupName`] ?? '');
  const parameterName = (input: Input) => String(input[`${prefix}ParameterGroupName`] ?? '');
  const subnetGroup = (name: string) => {
    const group = state.subnetGroups.get(name);
    if (group === undefined)
      throw fail(faults.subnetGroupNotFound, `${prefix}SubnetGroup ${name} not found.`);
    return group;
  };
  const parameterGroup = (name: string) => {
    const group = state.parameterGroups.get(name);
    if (group === undefined) {
      throw fail(faults.parameterGroupNotFound, `${prefix}ParameterGroup ${name} not found.`);
    }
    return group;
  };
  return {
    [`Create${prefix}SubnetGroup`](input: Input) {
      const name = subnetName(input);
      const subnetIds = (input.SubnetIds as string[] | undefined) ?? [];
      if (state.subnetGroups.has(name)) throw fail(faults.subnetGroupExists, `${name} already exists.`);
      if (subnetIds.length < api.minSubnets) {
        throw fail(faults.invalidParameter, `at least ${api.minSubnets} subnets in ${api.minSubnets} AZs`);
      }
      state.subnetGroups.set(name, { subnetIds, tags: (input.Tags as Tag[] | undefined) ?? [] });
      return { [`${prefix}SubnetGroup`]: { [`${prefix}SubnetGroupName`]: name }, $metadata: {} };
    },
    [`Describe${prefix}SubnetGroups`](input: Input) {
      const name = subnetName(input);
      const group = subnetGroup(name);
      return {
        [`${prefix}SubnetGroups`]: [
          {
            [`${prefix}SubnetGroupName`]: name,
            Subnets: group.subnetIds.map((SubnetIdentifier) => ({ SubnetIdentifier })),
          },
        ],
        $metadata: {},
      };
    },
    [`Modify${prefix}SubnetGroup`](input: Input) {
      const group = subnetGroup(subnetName(input));
      group.subnetIds = (input.SubnetIds as string[] | undefined) ?? group.subnetIds;
      return { $metadata: {} };
    },
    [`Delete${prefix}SubnetGroup`](input: Input) {
      const name = subnetName(input);
      subnetGroup(name);
      if (api.inUse.subnetGroup(name)) throw fail(faults.subnetGroupInUse, `${name} is in use.`);
      state.subnetGroups.delete(name);
      return { $metadata: {} };
    },

    [`Create${prefix}ParameterGroup`](input: Input) {
      const name = parameterName(input);
      if (state.parameterGroups.has(name)) throw fail(faults.parameterGroupExists, `${name} already exists.`);
      state.parameterGroups.set(name, {
        family: String(input[`${prefix}ParameterGroupFamily`] ?? ''),
        parameters: {},
        tags: (input.Tags as Tag[] | undefined) ?? [],
      });
      return { [`${prefix}ParameterGroup`]: { [`${prefix}ParameterGroupName`]: name }, $metadata: {} };
    },
    [`Describe${prefix}ParameterGroups`](input: Input) {
      const name = parameterName(input);
      const group = parameterGroup(name);
      return {
        [`${prefix}ParameterGroups`]: [
          { [`${prefix}ParameterGroupName`]: name, [`${prefix}ParameterGroupFamily`]: group.family },
        ],
        $metadata: {},
      };
    },
    [`Describe${prefix}Parameters`](input: Input) {
      const group = parameterGroup(parameterName(input));
      if (input.Source !== 'user') throw fail(faults.invalidParameter, 'the fake knows user parameters only');
      return {
        Parameters: Object.entries(group.parameters).map(([ParameterName, ParameterValue]) => ({
          ParameterName,
          ParameterValue,
          Source: 'user',
        })),
        $metadata: {},
      };
    },
    [`Modify${prefix}ParameterGroup`](input: Input) {
      const name = parameterName(input);
      const group = parameterGroup(name);
      for (const p of (input[api.parametersField] as ParameterInput | undefined) ?? [])
        group.parameters[p.ParameterName ?? ''] = p.ParameterValue ?? '';
      return { [`${prefix}ParameterGroupName`]: name, $metadata: {} };
    },
    [`Delete${prefix}ParameterGroup`](input: Input) {
      const name = parameterName(input);
      parameterGroup(name);
      if (api.inUse.parameterGroup(name)) throw fail(faults.parameterGroupInUse, `${name} is in use.`);
      state.parameterGroups.delete(name);
      return { $metadata: {} };
    },
  };
}
