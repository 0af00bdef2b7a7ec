import {
  CacheClusterNotFoundFault,
  CacheParameterGroupAlreadyExistsFault,
  CacheParameterGroupNotFoundFault,
  CacheSubnetGroupAlreadyExistsFault,
  CacheSubnetGroupInUse,
  CacheSubnetGroupNotFoundFault,
  type CreateReplicationGroupMessage,
  ElastiCacheClient,
  InvalidCacheParameterGroupStateFault,
  InvalidParameterValueException,
  InvalidReplicationGroupStateFault,
  type ModifyReplicationGroupMessage,
  ReplicationGroupAlreadyExistsFault,
  ReplicationGroupNotFoundFault,
} from '@aws-sdk/client-elasticache';
import { type InstalledFake, installHandlers } from './calls.ts';
import { type StoreGroups, storeGroupHandlers } from './store-groups.ts';

// A stateful ElastiCache control plane for one stack's cache: subnet groups,
// parameter groups with user-set parameters, replication groups with member
// clusters. A replication group goes creating → available, modifying →
// available and deleting → gone after `transitionAfter` describes, so the
// SDK waiters poll it as they poll the real service.

export interface FakeReplicationGroup {
  id: string;
  status: string;
  pendingDescribes: number;
  input: CreateReplicationGroupMessage;
  nodeType: string;
  parameterGroup: string;
  securityGroupIds: string[];
  authToken: string | undefined;
}

export interface ElastiCacheState extends StoreGroups {
  replicationGroups: Map<string, FakeReplicationGroup>;
}

export interface ElastiCacheFake extends InstalledFake {
  state: ElastiCacheState;
}

const metadata = { $metadata: {} };

export function installElastiCacheFake(
  options: { transitionAfter?: number; region?: string; accountId?: string } = {},
): ElastiCacheFake {
  const transitionAfter = options.transitionAfter ?? 0;
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  const state: ElastiCacheState = {
    subnetGroups: new Map(),
    parameterGroups: new Map(),
    replicationGroups: new Map(),
  };

  const requireGroup = (id: string | undefined) => {
    const group = state.replicationGroups.get(id ?? '');
    if (group === undefined)
      throw new ReplicationGroupNotFoundFault({ message: `ReplicationGroup ${id} not found.`, ...metadata });
    return group;
  };
  const members = (group: FakeReplicationGroup) =>
    Array.from({ length: group.input.NumCacheClusters ?? 1 }, (_, i) => `${group.id}-00${i + 1}`);
  // a describe sees the current status and moves a transitional one a step on
  const advance = (group: FakeReplicationGroup): string => {
    const seen = group.status;
    if (seen === 'available') return seen;
    if (group.pendingDescribes > 0) {
      group.pendingDescribes -= 1;
      return seen;
    }
    if (seen === 'deleting') {
      state.replicationGroups.delete(group.id);
      throw new ReplicationGroupNotFoundFault({
        message: `ReplicationGroup ${group.id} not found.`,
        ...metadata,
      });
    }
    group.status = 'available';
    return group.status;
  };
  const describe = (group: FakeReplicationGroup, status: string) => ({
    ReplicationGroupId: group.id,
    Status: status,
    Engine: group.input.Engine,
    CacheNodeType: group.nodeType,
    MemberClusters: members(group),
    AutomaticFailover: group.input.AutomaticFailoverEnabled ? 'enabled' : 'disabled',
    MultiAZ: group.input.MultiAZEnabled ? 'enabled' : 'disabled',
    AtRestEncryptionEnabled: group.input.AtRestEncryptionEnabled ?? false,
    TransitEncryptionEnabled: group.input.TransitEncryptionEnabled ?? false,
    AuthTokenEnabled: group.authToken !== undefined,
    NodeGroups:
      status === 'creating'
        ? []
        : [
            {
              NodeGroupId: '0001',
              PrimaryEndpoint: {
                Address: `master.${group.id}.abc123.use1.cache.amazonaws.com`,
                Port: group.input.Port ?? 6379,
              },
            },
          ],
    ARN: `arn:aws:elasticache:${region}:${accountId}:replicationgroup:${group.id}`,
  });

  const installed = installHandlers(ElastiCacheClient, 'elasticache', {
    ...storeGroupHandlers(state, {
      prefix: 'Cache',
      parametersField: 'ParameterNameValues',
      minSubnets: 1,
      faults: {
        subnetGroupNotFound: CacheSubnetGroupNotFoundFault,
        subnetGroupExists: CacheSubnetGroupAlreadyExistsFault,
        subnetGroupInUse: CacheSubnetGroupInUse,
        parameterGroupNotFound: CacheParameterGroupNotFoundFault,
        parameterGroupExists: CacheParameterGroupAlreadyExistsFault,
        parameterGroupInUse: InvalidCacheParameterGroupStateFault,
        invalidParameter: InvalidParameterValueException,
      },
      inUse: {
        subnetGroup: (name) =>
          [...state.replicationGroups.values()].some((g) => g.input.CacheSubnetGroupName === name),
        parameterGroup: (name) =>
          [...state.replicationGroups.values()].some((g) => g.parameterGroup === name),
      },
    }),

    CreateReplicationGroup(input: CreateReplicationGroupMessage) {
      const id = input.ReplicationGroupId ?? '';
      if (state.replicationGroups.has(id)) {
        throw new ReplicationGroupAlreadyExistsFault({
          message: `Replication group ${id} already exists.`,
          ...metadata,
        });
      }
      if (!state.subnetGroups.has(input.CacheSubnetGroupName ?? '')) {
        throw new CacheSubnetGroupNotFoundFault({
          message: `Cache subnet group ${input.CacheSubnetGroupName} not found.`,
          ...metadata,
        });
      }
      const parameters = state.parameterGroups.get(input.CacheParameterGroupName ?? '');
      if (parameters === undefined)
        throw new CacheParameterGroupNotFoundFault({ message: 'not found', ...metadata });
      if (input.AuthToken !== undefined && !input.TransitEncryptionEnabled) {
        throw new InvalidParameterValueException({
          message: 'AuthToken requires TransitEncryptionEnabled',
          ...metadata,
        });
      }
      if (input.AuthToken !== undefined && !/^[^\s"/@]{16,128}$/.test(input.AuthToken)) {
        throw new InvalidParameterValueException({ message: 'Invalid AuthToken provided.', ...metadata });
      }
      if (input.MultiAZEnabled && (input.NumCacheClusters ?? 1) < 2) {
        throw new InvalidParameterValueException({
          message: 'Multi-AZ needs at least one replica',
          ...metadata,
        });
      }
      const group: FakeReplicationGroup = {
        id,
        status: 'creating',
        pendingDescribes: transitionAfter,
        input: { ...input, AuthToken: undefined },
        nodeType: input.CacheNodeType ?? '',
        parameterGroup: input.CacheParameterGroupName ?? '',
        securityGroupIds: input.SecurityGroupIds ?? [],
        authToken: input.AuthToken,
      };
      state.replicationGroups.set(id, group);
      return { ReplicationGroup: describe(group, group.status), ...metadata };
    },
    DescribeReplicationGroups(input: { ReplicationGroupId?: string }) {
      const group = requireGroup(input.ReplicationGroupId);
      return { ReplicationGroups: [describe(group, advance(group))], ...metadata };
    },
    DescribeCacheClusters(input: { CacheClusterId?: string }) {
      const group = [...state.replicationGroups.values()].find((g) =>
        members(g).includes(input.CacheClusterId ?? ''),
      );
      if (group === undefined)
        throw new CacheClusterNotFoundFault({
          message: `CacheCluster ${input.CacheClusterId} not found.`,
          ...metadata,
        });
      return {
        CacheClusters: [
          {
            CacheClusterId: input.CacheClusterId,
            ReplicationGroupId: group.id,
            EngineVersion: group.input.EngineVersion,
            CacheParameterGroup: {
              CacheParameterGroupName: group.parameterGroup,
              ParameterApplyStatus: 'in-sync',
            },
            SecurityGroups: group.securityGroupIds.map((SecurityGroupId) => ({
              SecurityGroupId,
              Status: 'active',
            })),
          },
        ],
        ...metadata,
      };
    },
    ModifyReplicationGroup(input: ModifyReplicationGroupMessage) {
      const group = requireGroup(input.ReplicationGroupId);
      if (group.status !== 'available') {
        throw new InvalidReplicationGroupStateFault({
          message: `Replication group ${group.id} is ${group.status}.`,
          ...metadata,
        });
      }
      if (input.CacheNodeType) group.nodeType = input.CacheNodeType;
      if (input.CacheParameterGroupName) group.parameterGroup = input.CacheParameterGroupName;
      if (input.SecurityGroupIds) group.securityGroupIds = input.SecurityGroupIds;
      if (input.AuthToken) group.authToken = input.AuthToken;
      group.status = 'modifying';
      group.pendingDescribes = transitionAfter;
      return { ReplicationGroup: describe(group, group.status), ...metadata };
    },
    DeleteReplicationGroup(input: { ReplicationGroupId?: string }) {
      const group = requireGroup(input.ReplicationGroupId);
      if (group.status !== 'available') {
        throw new InvalidReplicationGroupStateFault({
          message: `Replication group ${group.id} is ${group.status}.`,
          ...metadata,
        });
      }
      group.status = 'deleting';
      group.pendingDescribes = transitionAfter;
      return { ReplicationGroup: describe(group, group.status), ...metadata };
    },
  });
  return { state, restore: installed.restore };
}
