import {
  type AssociateRouteTableRequest,
  type AuthorizeSecurityGroupEgressRequest,
  type CreateRouteTableRequest,
  type CreateSecurityGroupRequest,
  type CreateSubnetRequest,
  type CreateVpcEndpointRequest,
  type CreateVpcRequest,
  type DeleteRouteTableRequest,
  type DeleteSecurityGroupRequest,
  type DeleteSubnetRequest,
  type DeleteVpcEndpointsRequest,
  type DeleteVpcRequest,
  type DescribeVpcAttributeRequest,
  type DisassociateRouteTableRequest,
  EC2Client,
  EC2ServiceException,
  type Filter,
  type IpPermission,
  type ModifyVpcAttributeRequest,
  type ModifyVpcEndpointRequest,
  type ReplaceRouteTableAssociationRequest,
  type RevokeSecurityGroupEgressRequest,
  type SecurityGroupRule,
  type Tag,
  type TagSpecification,
} from '@aws-sdk/client-ec2';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful EC2 control plane for the network resources: what is created is
// described back (with EC2's filters), async resources go pending → available
// after `transitionAfter` describes, and errors carry EC2's documented error
// codes as `name` (EC2 models no exception classes).

export interface Ec2FakeOptions {
  region?: string;
  // describes of a new resource that still show it pending (0: available at once)
  transitionAfter?: number;
  zones?: string[];
}

interface Tagged {
  Tags: Tag[];
}
export interface FakeVpc extends Tagged {
  VpcId: string;
  CidrBlock: string;
  State: string;
  enableDnsSupport: boolean;
  enableDnsHostnames: boolean;
  pendingDescribes: number;
}
export interface FakeSubnet extends Tagged {
  SubnetId: string;
  VpcId: string;
  CidrBlock: string;
  AvailabilityZone: string;
  State: string;
  pendingDescribes: number;
}
export interface FakeRouteTable extends Tagged {
  RouteTableId: string;
  VpcId: string;
  Associations: { RouteTableAssociationId: string; SubnetId: string; RouteTableId: string; Main: boolean }[];
}
export interface FakeSecurityGroup extends Tagged {
  GroupId: string;
  GroupName: string;
  Description: string;
  VpcId: string;
}
export interface FakeEndpoint extends Tagged {
  VpcEndpointId: string;
  VpcId: string;
  VpcEndpointType: string;
  ServiceName: string;
  State: string;
  RouteTableIds: string[];
  SubnetIds: string[];
  Groups: { GroupId: string; GroupName: string }[];
  PrivateDnsEnabled: boolean;
  pendingDescribes: number;
}

export interface Ec2State {
  vpcs: Map<string, FakeVpc>;
  subnets: Map<string, FakeSubnet>;
  routeTables: Map<string, FakeRouteTable>;
  securityGroups: Map<string, FakeSecurityGroup>;
  rules: Map<string, SecurityGroupRule>;
  endpoints: Map<string, FakeEndpoint>;
  // network interfaces still holding a security group or subnet (by id): each
  // delete attempt fails with DependencyViolation and releases one, as Lambda's
  // ENIs go away some minutes after the function
  lingeringEnis: Map<string, number>;
  prefixLists: Map<string, string>;
}

export interface Ec2Fake extends InstalledFake {
  state: Ec2State;
}

export function ec2Error(code: string, message: string): EC2ServiceException {
  return new EC2ServiceException({
    name: code,
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message,
  });
}

const metadata = { $metadata: {} };

export function installEc2Fake(options: Ec2FakeOptions = {}): Ec2Fake {
  const region = options.region ?? 'us-east-1';
  const transitionAfter = options.transitionAfter ?? 0;
  const zones = options.zones ?? [`${region}c`, `${region}a`, `${region}b`];
  const state: Ec2State = {
    vpcs: new Map(),
    subnets: new Map(),
    routeTables: new Map(),
    securityGroups: new Map(),
    rules: new Map(),
    endpoints: new Map(),
    lingeringEnis: new Map(),
    prefixLists: new Map([[`com.amazonaws.${region}.s3`, 'pl-63a5400a']]),
  };
  let counter = 0;
  const id = (prefix: string) => `${prefix}-${(++counter).toString(16).padStart(17, '0')}`;
  const tagsOf = (specs: TagSpecification[] | undefined, type: string) =>
    specs?.find((s) => s.ResourceType === type)?.Tags ?? [];

  // Filters: tag:<key>, and the named attributes each Describe supports here
  const matches = (
    resource: object,
    filters: Filter[] | undefined,
    fields: Record<string, (r: never) => unknown>,
  ) =>
    (filters ?? []).every((filter) => {
      const name = filter.Name ?? '';
      const values = filter.Values ?? [];
      if (name.startsWith('tag:')) {
        const tag = (resource as Tagged).Tags?.find((t) => t.Key === name.slice(4));
        return tag !== undefined && values.includes(tag.Value ?? '');
      }
      const field = fields[name];
      if (field === undefined)
        throw ec2Error('InvalidParameterValue', `the fake does not support filter ${name}`);
      const actual = field(resource as never);
      return (Array.isArray(actual) ? actual : [actual]).some((v) => values.includes(String(v)));
    });

  // a describe sees a pending resource, and moves it one step towards available
  const advance = <T extends { State: string; pendingDescribes: number }>(resource: T): T => {
    const seen = { ...resource };
    if (resource.State === 'pending') {
      if (resource.pendingDescribes <= 0) {
        resource.State = 'available';
        seen.State = 'available';
      } else resource.pendingDescribes -= 1;
    }
    return seen;
  };
  const strip = <T extends object>(resource: T) => {
    const { pendingDescribes: _ignored, ...rest } = resource as T & { pendingDescribes?: number };
    return rest;
  };

  const requireVpc = (vpcId: string | undefined) => {
    const vpc = state.vpcs.get(vpcId ?? '');
    if (vpc === undefined) throw ec2Error('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
    return vpc;
  };
  const requireGroup = (groupId: string | undefined) => {
    const group = state.securityGroups.get(groupId ?? '');
    if (group === undefined)
      throw ec2Error('InvalidGroup.NotFound', `The security group '${groupId}' does not exist`);
    return group;
  };
  const blockedByEnis = (resourceId: string) => {
    const left = state.lingeringEnis.get(resourceId) ?? 0;
    if (left <= 0) return false;
    state.lingeringEnis.set(resourceId, left - 1);
    return true;
  };

  const addRules = (groupId: string, isEgress: boolean, permissions: IpPermission[] | undefined) => {
    for (const permission of permissions ?? []) {
      const base = {
        GroupId: groupId,
        IsEgress: isEgress,
        IpProtocol: permission.IpProtocol ?? '-1',
        FromPort: permission.FromPort ?? -1,
        ToPort: permission.ToPort ?? -1,
      };
      const peers: Partial<SecurityGroupRule>[] = [
        ...(permission.IpRanges ?? []).map((r) => ({ CidrIpv4: r.CidrIp, Description: r.Description })),
        ...(permission.PrefixListIds ?? []).map((p) => ({
          PrefixListId: p.PrefixListId,
          Description: p.Description,
        })),
        ...(permission.UserIdGroupPairs ?? []).map((p) => {
          requireGroup(p.GroupId);
          return { ReferencedGroupInfo: { GroupId: p.GroupId }, Description: p.Description };
        }),
      ];
      for (const peer of peers) {
        const rule: SecurityGroupRule = { ...base, ...peer };
        const same = [...state.rules.values()].some(
          (r) =>
            r.GroupId === groupId &&
            r.IsEgress === isEgress &&
            r.IpProtocol === rule.IpProtocol &&
            r.FromPort === rule.FromPort &&
            r.ToPort === rule.ToPort &&
            r.CidrIpv4 === rule.CidrIpv4 &&
            r.PrefixListId === rule.PrefixListId &&
            r.ReferencedGroupInfo?.GroupId === rule.ReferencedGroupInfo?.GroupId,
        );
        if (same) throw ec2Error('InvalidPermission.Duplicate', 'the specified rule already exists');
        const ruleId = id('sgr');
        state.rules.set(ruleId, { ...rule, SecurityGroupRuleId: ruleId });
      }
    }
  };
  const revokeRules = (input: RevokeSecurityGroupEgressRequest, isEgress: boolean) => {
    requireGroup(input.GroupId);
    for (const ruleId of input.SecurityGroupRuleIds ?? []) {
      const rule = state.rules.get(ruleId);
      if (rule === undefined || rule.GroupId !== input.GroupId || rule.IsEgress !== isEgress) {
        throw ec2Error(
          'InvalidSecurityGroupRuleId.NotFound',
          `The security group rule ID '${ruleId}' does not exist`,
        );
      }
      state.rules.delete(ruleId);
    }
    return { Return: true, ...metadata };
  };

  const installed = installHandlers(EC2Client, 'ec2', {
    DescribeAvailabilityZones(input: { Filters?: Filter[] }) {
      const all = zones.map((ZoneName, i) => ({
        ZoneName,
        ZoneId: `use1-az${i + 1}`,
        State: 'available',
        ZoneType: 'availability-zone',
        RegionName: region,
      }));
      return {
        AvailabilityZones: all.filter((z) =>
          matches(z, input.Filters, {
            state: (r: typeof z) => r.State,
            'zone-type': (r: typeof z) => r.ZoneType,
          }),
        ),
        ...metadata,
      };
    },
    DescribePrefixLists(input: { Filters?: Filter[] }) {
      const lists = [...state.prefixLists].map(([PrefixListName, PrefixListId]) => ({
        PrefixListName,
        PrefixListId,
      }));
      return {
        PrefixLists: lists.filter((l) =>
          matches(l, input.Filters, { 'prefix-list-name': (r: typeof l) => r.PrefixListName }),
        ),
        ...metadata,
      };
    },

    CreateVpc(input: CreateVpcRequest) {
      const vpc: FakeVpc = {
        VpcId: id('vpc'),
        CidrBlock: input.CidrBlock ?? '',
        State: 'pending',
        Tags: tagsOf(input.TagSpecifications, 'vpc'),
        // a new VPC: DNS support on, hostnames off (VPC user guide, "DNS attributes")
        enableDnsSupport: true,
        enableDnsHostnames: false,
        pendingDescribes: transitionAfter,
      };
      state.vpcs.set(vpc.VpcId, vpc);
      // the main route table and the default security group come with every VPC
      const main: FakeRouteTable = { RouteTableId: id('rtb'), VpcId: vpc.VpcId, Tags: [], Associations: [] };
      main.Associations.push({
        RouteTableAssociationId: id('rtbassoc'),
        RouteTableId: main.RouteTableId,
        SubnetId: undefined as never,
        Main: true,
      });
      state.routeTables.set(main.RouteTableId, main);
      const group: FakeSecurityGroup = {
        GroupId: id('sg'),
        GroupName: 'default',
        Description: 'default VPC security group',
        VpcId: vpc.VpcId,
        Tags: [],
      };
      state.securityGroups.set(group.GroupId, group);
      return { Vpc: strip({ ...vpc }), ...metadata };
    },
    DescribeVpcs(input: { VpcIds?: string[]; Filters?: Filter[] }) {
      const found = [...state.vpcs.values()].filter(
        (v) =>
          (input.VpcIds === undefined || input.VpcIds.includes(v.VpcId)) &&
          matches(v, input.Filters, { 'vpc-id': (r: FakeVpc) => r.VpcId, state: (r: FakeVpc) => r.State }),
      );
      if (input.VpcIds?.some((vpcId) => !state.vpcs.has(vpcId))) {
        throw ec2Error('InvalidVpcID.NotFound', `The vpc ID '${input.VpcIds.join(',')}' does not exist`);
      }
      return {
        Vpcs: found.map((v) => {
          const { enableDnsSupport: _s, enableDnsHostnames: _h, ...rest } = strip(advance(v));
          return rest;
        }),
        ...metadata,
      };
    },
    DescribeVpcAttribute(input: DescribeVpcAttributeRequest) {
      const vpc = requireVpc(input.VpcId);
      return input.Attribute === 'enableDnsSupport'
        ? { VpcId: vpc.VpcId, EnableDnsSupport: { Value: vpc.enableDnsSupport }, ...metadata }
        : { VpcId: vpc.VpcId, EnableDnsHostnames: { Value: vpc.enableDnsHostnames }, ...metadata };
    },
    ModifyVpcAttribute(input: ModifyVpcAttributeRequest) {
      const vpc = requireVpc(input.VpcId);
      if ((input.EnableDnsSupport === undefined) === (input.EnableDnsHostnames === undefined)) {
        throw ec2Error('InvalidParameterCombination', 'exactly one attribute per ModifyVpcAttribute call');
      }
      if (input.EnableDnsSupport !== undefined) vpc.enableDnsSupport = input.EnableDnsSupport.Value ?? false;
      if (input.EnableDnsHostnames !== undefined) {
        if (input.EnableDnsHostnames.Value && !vpc.enableDnsSupport) {
          throw ec2Error('InvalidParameterValue', 'enableDnsHostnames requires enableDnsSupport');
        }
        vpc.enableDnsHostnames = input.EnableDnsHostnames.Value ?? false;
      }
      return metadata;
    },
    DeleteVpc(input: DeleteVpcRequest) {
      const vpc = requireVpc(input.VpcId);
      const inUse =
        [...state.subnets.values()].some((s) => s.VpcId === vpc.VpcId) ||
        [...state.securityGroups.values()].some((g) => g.VpcId === vpc.VpcId && g.GroupName !== 'default') ||
        [...state.routeTables.values()].some(
          (t) => t.VpcId === vpc.VpcId && !t.Associations.some((a) => a.Main),
        ) ||
        [...state.endpoints.values()].some((e) => e.VpcId === vpc.VpcId && e.State !== 'deleted');
      if (inUse)
        throw ec2Error(
          'DependencyViolation',
          `The vpc '${vpc.VpcId}' has dependencies and cannot be deleted.`,
        );
      state.vpcs.delete(vpc.VpcId);
      for (const [key, table] of state.routeTables)
        if (table.VpcId === vpc.VpcId) state.routeTables.delete(key);
      for (const [key, group] of state.securityGroups)
        if (group.VpcId === vpc.VpcId) state.securityGroups.delete(key);
      return metadata;
    },

    CreateSubnet(input: CreateSubnetRequest) {
      const vpc = requireVpc(input.VpcId);
      if ([...state.subnets.values()].some((s) => s.VpcId === vpc.VpcId && s.CidrBlock === input.CidrBlock)) {
        throw ec2Error(
          'InvalidSubnet.Conflict',
          `The CIDR '${input.CidrBlock}' conflicts with another subnet`,
        );
      }
      if (!zones.includes(input.AvailabilityZone ?? '')) {
        throw ec2Error(
          'InvalidParameterValue',
          `Value (${input.AvailabilityZone}) for parameter availabilityZone is invalid`,
        );
      }
      const subnet: FakeSubnet = {
        SubnetId: id('subnet'),
        VpcId: vpc.VpcId,
        CidrBlock: input.CidrBlock ?? '',
        AvailabilityZone: input.AvailabilityZone ?? '',
        State: 'pending',
        Tags: tagsOf(input.TagSpecifications, 'subnet'),
        pendingDescribes: transitionAfter,
      };
      state.subnets.set(subnet.SubnetId, subnet);
      return { Subnet: strip({ ...subnet }), ...metadata };
    },
    DescribeSubnets(input: { SubnetIds?: string[]; Filters?: Filter[] }) {
      const found = [...state.subnets.values()].filter(
        (s) =>
          (input.SubnetIds === undefined || input.SubnetIds.includes(s.SubnetId)) &&
          matches(s, input.Filters, { 'vpc-id': (r: FakeSubnet) => r.VpcId }),
      );
      return { Subnets: found.map((s) => strip(advance(s))), ...metadata };
    },
    DeleteSubnet(input: DeleteSubnetRequest) {
      const subnet = state.subnets.get(input.SubnetId ?? '');
      if (subnet === undefined) {
        throw ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${input.SubnetId}' does not exist`);
      }
      const endpointInside = [...state.endpoints.values()].some(
        (e) => e.State !== 'deleted' && e.SubnetIds.includes(subnet.SubnetId),
      );
      if (endpointInside || blockedByEnis(subnet.SubnetId)) {
        throw ec2Error(
          'DependencyViolation',
          `The subnet '${subnet.SubnetId}' has dependencies and cannot be deleted.`,
        );
      }
      state.subnets.delete(subnet.SubnetId);
      for (const table of state.routeTables.values()) {
        table.Associations = table.Associations.filter((a) => a.SubnetId !== subnet.SubnetId);
      }
      return metadata;
    },

    CreateRouteTable(input: CreateRouteTableRequest) {
      const vpc = requireVpc(input.VpcId);
      const table: FakeRouteTable = {
        RouteTableId: id('rtb'),
        VpcId: vpc.VpcId,
        Tags: tagsOf(input.TagSpecifications, 'route-table'),
        Associations: [],
      };
      state.routeTables.set(table.RouteTableId, table);
      return { RouteTable: { ...table }, ...metadata };
    },
    DescribeRouteTables(input: { RouteTableIds?: string[]; Filters?: Filter[] }) {
      const found = [...state.routeTables.values()].filter(
        (t) =>
          (input.RouteTableIds === undefined || input.RouteTableIds.includes(t.RouteTableId)) &&
          matches(t, input.Filters, {
            'vpc-id': (r: FakeRouteTable) => r.VpcId,
            'association.subnet-id': (r: FakeRouteTable) => r.Associations.map((a) => a.SubnetId),
          }),
      );
      return { RouteTables: found, ...metadata };
    },
    AssociateRouteTable(input: AssociateRouteTableRequest) {
      const table = state.routeTables.get(input.RouteTableId ?? '');
      if (table === undefined)
        throw ec2Error('InvalidRouteTableID.NotFound', `${input.RouteTableId} does not exist`);
      if (!state.subnets.has(input.SubnetId ?? '')) {
        throw ec2Error('InvalidSubnetID.NotFound', `${input.SubnetId} does not exist`);
      }
      if (
        [...state.routeTables.values()].some((t) => t.Associations.some((a) => a.SubnetId === input.SubnetId))
      ) {
        throw ec2Error('Resource.AlreadyAssociated', `the subnet ${input.SubnetId} is already associated`);
      }
      const association = {
        RouteTableAssociationId: id('rtbassoc'),
        RouteTableId: table.RouteTableId,
        SubnetId: input.SubnetId ?? '',
        Main: false,
      };
      table.Associations.push(association);
      return { AssociationId: association.RouteTableAssociationId, ...metadata };
    },
    DisassociateRouteTable(input: DisassociateRouteTableRequest) {
      for (const table of state.routeTables.values()) {
        const before = table.Associations.length;
        table.Associations = table.Associations.filter(
          (a) => a.RouteTableAssociationId !== input.AssociationId,
        );
        if (table.Associations.length < before) return metadata;
      }
      throw ec2Error(
        'InvalidAssociationID.NotFound',
        `The association ID '${input.AssociationId}' does not exist`,
      );
    },
    ReplaceRouteTableAssociation(input: ReplaceRouteTableAssociationRequest) {
      const target = state.routeTables.get(input.RouteTableId ?? '');
      if (target === undefined)
        throw ec2Error('InvalidRouteTableID.NotFound', `${input.RouteTableId} does not exist`);
      for (const table of state.routeTables.values()) {
        const association = table.Associations.find((a) => a.RouteTableAssociationId === input.AssociationId);
        if (association === undefined) continue;
        table.Associations = table.Associations.filter((a) => a !== association);
        const moved = {
          ...association,
          RouteTableAssociationId: id('rtbassoc'),
          RouteTableId: target.RouteTableId,
        };
        target.Associations.push(moved);
        return { NewAssociationId: moved.RouteTableAssociationId, ...metadata };
      }
      throw ec2Error(
        'InvalidAssociationID.NotFound',
        `The association ID '${input.AssociationId}' does not exist`,
      );
    },
    DeleteRouteTable(input: DeleteRouteTableRequest) {
      const table = state.routeTables.get(input.RouteTableId ?? '');
      if (table === undefined)
        throw ec2Error('InvalidRouteTableID.NotFound', `${input.RouteTableId} does not exist`);
      if (table.Associations.length > 0) {
        throw ec2Error(
          'DependencyViolation',
          `The routeTable '${table.RouteTableId}' has dependencies and cannot be deleted.`,
        );
      }
      if (
        [...state.endpoints.values()].some(
          (e) => e.State !== 'deleted' && e.RouteTableIds.includes(table.RouteTableId),
        )
      ) {
        throw ec2Error(
          'DependencyViolation',
          `The routeTable '${table.RouteTableId}' is used by a gateway endpoint.`,
        );
      }
      state.routeTables.delete(table.RouteTableId);
      return metadata;
    },

    CreateSecurityGroup(input: CreateSecurityGroupRequest) {
      const vpc = requireVpc(input.VpcId);
      if (
        [...state.securityGroups.values()].some(
          (g) => g.VpcId === vpc.VpcId && g.GroupName === input.GroupName,
        )
      ) {
        throw ec2Error(
          'InvalidGroup.Duplicate',
          `The security group '${input.GroupName}' already exists for VPC '${vpc.VpcId}'`,
        );
      }
      const group: FakeSecurityGroup = {
        GroupId: id('sg'),
        GroupName: input.GroupName ?? '',
        Description: input.Description ?? '',
        VpcId: vpc.VpcId,
        Tags: tagsOf(input.TagSpecifications, 'security-group'),
      };
      state.securityGroups.set(group.GroupId, group);
      // every new VPC security group allows all outbound traffic (VPC user guide, "Security group rules")
      addRules(group.GroupId, true, [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }]);
      return { GroupId: group.GroupId, Tags: group.Tags, ...metadata };
    },
    DescribeSecurityGroups(input: { GroupIds?: string[]; Filters?: Filter[] }) {
      const found = [...state.securityGroups.values()].filter(
        (g) =>
          (input.GroupIds === undefined || input.GroupIds.includes(g.GroupId)) &&
          matches(g, input.Filters, {
            'vpc-id': (r: FakeSecurityGroup) => r.VpcId,
            'group-name': (r: FakeSecurityGroup) => r.GroupName,
            'group-id': (r: FakeSecurityGroup) => r.GroupId,
          }),
      );
      return { SecurityGroups: found, ...metadata };
    },
    DescribeSecurityGroupRules(input: { Filters?: Filter[]; SecurityGroupRuleIds?: string[] }) {
      const found = [...state.rules.values()].filter(
        (r) =>
          (input.SecurityGroupRuleIds === undefined ||
            input.SecurityGroupRuleIds.includes(r.SecurityGroupRuleId ?? '')) &&
          matches(r, input.Filters, { 'group-id': (rule: SecurityGroupRule) => rule.GroupId }),
      );
      return { SecurityGroupRules: found, ...metadata };
    },
    AuthorizeSecurityGroupIngress(input: AuthorizeSecurityGroupEgressRequest) {
      requireGroup(input.GroupId);
      addRules(input.GroupId ?? '', false, input.IpPermissions);
      return { Return: true, ...metadata };
    },
    AuthorizeSecurityGroupEgress(input: AuthorizeSecurityGroupEgressRequest) {
      requireGroup(input.GroupId);
      addRules(input.GroupId ?? '', true, input.IpPermissions);
      return { Return: true, ...metadata };
    },
    RevokeSecurityGroupIngress: (input: RevokeSecurityGroupEgressRequest) => revokeRules(input, false),
    RevokeSecurityGroupEgress: (input: RevokeSecurityGroupEgressRequest) => revokeRules(input, true),
    DeleteSecurityGroup(input: DeleteSecurityGroupRequest) {
      const group = requireGroup(input.GroupId);
      const referenced = [...state.rules.values()].some(
        (r) => r.ReferencedGroupInfo?.GroupId === group.GroupId && r.GroupId !== group.GroupId,
      );
      const usedByEndpoint = [...state.endpoints.values()].some(
        (e) => e.State !== 'deleted' && e.Groups.some((g) => g.GroupId === group.GroupId),
      );
      if (referenced || usedByEndpoint || blockedByEnis(group.GroupId)) {
        throw ec2Error('DependencyViolation', `resource ${group.GroupId} has a dependent object`);
      }
      state.securityGroups.delete(group.GroupId);
      for (const [ruleId, rule] of state.rules)
        if (rule.GroupId === group.GroupId) state.rules.delete(ruleId);
      return metadata;
    },

    CreateVpcEndpoint(input: CreateVpcEndpointRequest) {
      const vpc = requireVpc(input.VpcId);
      if (
        input.VpcEndpointType === 'Interface' &&
        input.PrivateDnsEnabled &&
        !(vpc.enableDnsSupport && vpc.enableDnsHostnames)
      ) {
        // CreateVpcEndpoint: private DNS requires both VPC DNS attributes
        throw ec2Error(
          'InvalidParameter',
          'Enabling private DNS requires both enableDnsSupport and enableDnsHostnames',
        );
      }
      const endpoint: FakeEndpoint = {
        VpcEndpointId: id('vpce'),
        VpcId: vpc.VpcId,
        VpcEndpointType: input.VpcEndpointType ?? 'Gateway',
        ServiceName: input.ServiceName ?? '',
        State: 'pending',
        RouteTableIds: input.RouteTableIds ?? [],
        SubnetIds: input.SubnetIds ?? [],
        Groups: (input.SecurityGroupIds ?? []).map((g) => ({
          GroupId: g,
          GroupName: requireGroup(g).GroupName,
        })),
        PrivateDnsEnabled: input.PrivateDnsEnabled ?? false,
        Tags: tagsOf(input.TagSpecifications, 'vpc-endpoint'),
        pendingDescribes: transitionAfter,
      };
      state.endpoints.set(endpoint.VpcEndpointId, endpoint);
      return { VpcEndpoint: strip({ ...endpoint }), ...metadata };
    },
    DescribeVpcEndpoints(input: { VpcEndpointIds?: string[]; Filters?: Filter[] }) {
      const found = [...state.endpoints.values()].filter(
        (e) =>
          (input.VpcEndpointIds === undefined || input.VpcEndpointIds.includes(e.VpcEndpointId)) &&
          matches(e, input.Filters, {
            'vpc-id': (r: FakeEndpoint) => r.VpcId,
            'service-name': (r: FakeEndpoint) => r.ServiceName,
          }),
      );
      const seen = found.map((e) => {
        if (e.State === 'deleting') {
          if (e.pendingDescribes <= 0) e.State = 'deleted';
          else e.pendingDescribes -= 1;
          return strip({ ...e });
        }
        return strip(advance(e));
      });
      // a deleted endpoint stays listed as `deleted`, then disappears
      for (const e of found) if (e.State === 'deleted') state.endpoints.delete(e.VpcEndpointId);
      return { VpcEndpoints: seen, ...metadata };
    },
    ModifyVpcEndpoint(input: ModifyVpcEndpointRequest) {
      const endpoint = state.endpoints.get(input.VpcEndpointId ?? '');
      if (endpoint === undefined)
        throw ec2Error('InvalidVpcEndpointId.NotFound', `${input.VpcEndpointId} does not exist`);
      const apply = (list: string[], add?: string[], remove?: string[]) => [
        ...list.filter((v) => !(remove ?? []).includes(v)),
        ...(add ?? []).filter((v) => !list.includes(v)),
      ];
      endpoint.RouteTableIds = apply(
        endpoint.RouteTableIds,
        input.AddRouteTableIds,
        input.RemoveRouteTableIds,
      );
      endpoint.SubnetIds = apply(endpoint.SubnetIds, input.AddSubnetIds, input.RemoveSubnetIds);
      endpoint.Groups = apply(
        endpoint.Groups.map((g) => g.GroupId),
        input.AddSecurityGroupIds,
        input.RemoveSecurityGroupIds,
      ).map((g) => ({ GroupId: g, GroupName: requireGroup(g).GroupName }));
      if (input.PrivateDnsEnabled !== undefined) endpoint.PrivateDnsEnabled = input.PrivateDnsEnabled;
      return { Return: true, ...metadata };
    },
    DeleteVpcEndpoints(input: DeleteVpcEndpointsRequest) {
      const Unsuccessful = [];
      for (const endpointId of input.VpcEndpointIds ?? []) {
        const endpoint = state.endpoints.get(endpointId);
        if (endpoint === undefined) {
          Unsuccessful.push({
            ResourceId: endpointId,
            Error: {
              Code: 'InvalidVpcEndpoint.NotFound',
              Message: `The VpcEndpoint Id '${endpointId}' does not exist`,
            },
          });
          continue;
        }
        endpoint.State = 'deleting';
        endpoint.pendingDescribes = transitionAfter;
      }
      return { Unsuccessful, ...metadata };
    },
  });
  return { state, restore: installed.restore };
}
