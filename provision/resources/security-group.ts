import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribePrefixListsCommand,
  DescribeSecurityGroupsCommand,
  type IpPermission,
  paginateDescribeSecurityGroupRules,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { type Ctx, destroy, type FieldChange, pending, reconcile, step } from '../../lib/reconcile.ts';
import {
  awsServiceName,
  Ec2Error,
  isEc2Error,
  isPendingId,
  type NetworkWaits,
  networkWaits,
  removeWhenReleased,
  settleCreated,
  tagSpecification,
} from './ec2.ts';

export const Port = { https: 443, postgres: 5432, redis: 6379 } as const;

export type Peer = { cidr: string } | { prefixList: string } | { group: string };

export interface Rule {
  direction: 'ingress' | 'egress';
  protocol: string;
  fromPort: number;
  toPort: number;
  peer: Peer;
  description?: string;
}

export interface ActualRule extends Rule {
  id: string;
}

export type SecurityGroupIds = Record<GroupRole, string>;

export interface DesiredGroup {
  name: string;
  description: string;
  rules: Rule[];
}

export interface ActualGroup {
  id: string;
  rules: ActualRule[];
}

const descriptions = {
  function: 'line-count function: egress only, to the VPC and S3',
  cache: 'ElastiCache: Redis port from the function only',
  database: 'RDS PostgreSQL: from the function only',
  endpoint: 'Secrets Manager endpoint: HTTPS from the function only',
};
export type GroupRole = keyof typeof descriptions;

export function groupName(ctx: Ctx, role: GroupRole): string {
  return `${ctx.names.base}-${role}`;
}

// Least privilege. The function has no ingress (nothing calls into it over the
// network; Lambda invokes it through its own control plane) and egress only
// where it must go: the data stores and the Secrets Manager endpoint inside the
// VPC, and S3 through the gateway endpoint (S3's prefix list). The other groups
// accept one port from the function's group and send nothing: security groups
// are stateful, so replies need no egress rule. The default allow-all egress
// rule of every new group is revoked.
export function desiredRules(
  vpcCidr: string,
  s3PrefixListId: string,
  functionGroupId: string,
): Record<GroupRole, Rule[]> {
  const tcp = (direction: Rule['direction'], port: number, peer: Peer, description: string): Rule => ({
    direction,
    protocol: 'tcp',
    fromPort: port,
    toPort: port,
    peer,
    description,
  });
  return {
    function: [
      tcp('egress', Port.https, { cidr: vpcCidr }, 'Secrets Manager interface endpoint'),
      tcp('egress', Port.postgres, { cidr: vpcCidr }, 'RDS PostgreSQL'),
      tcp('egress', Port.redis, { cidr: vpcCidr }, 'ElastiCache'),
      tcp('egress', Port.https, { prefixList: s3PrefixListId }, 'S3 through the gateway endpoint'),
    ],
    cache: [tcp('ingress', Port.redis, { group: functionGroupId }, 'from the function')],
    database: [tcp('ingress', Port.postgres, { group: functionGroupId }, 'from the function')],
    endpoint: [tcp('ingress', Port.https, { group: functionGroupId }, 'from the function')],
  };
}

// The identity of a rule: everything but its description (EC2 treats two rules
// that differ only in description as the same permission).
export function ruleKey(rule: Rule): string {
  const [peerKind, peerValue] = Object.entries(rule.peer)[0] as [string, string];
  const peer = `${peerKind === 'prefixList' ? 'prefix-list' : peerKind} ${peerValue}`;
  const ports = rule.fromPort === rule.toPort ? `${rule.fromPort}` : `${rule.fromPort}-${rule.toPort}`;
  const protocol = rule.protocol === '-1' ? 'all' : rule.protocol;
  return `${rule.direction} ${protocol} ${ports} ${peer}`;
}

// A rule removed out of band is added back; a rule nobody asked for is revoked.
export function ruleDrift(desired: readonly Rule[], actual: readonly ActualRule[]) {
  const wanted = new Set(desired.map(ruleKey));
  const present = new Set(actual.map(ruleKey));
  return {
    add: desired.filter((rule) => !present.has(ruleKey(rule))),
    remove: actual.filter((rule) => !wanted.has(ruleKey(rule))),
  };
}

export function groupDrift(desired: DesiredGroup, actual: ActualGroup): FieldChange[] {
  const { add, remove } = ruleDrift(desired.rules, actual.rules);
  const change = (from: string, to: string) => (rule: Rule) => ({ field: ruleKey(rule), from, to });
  return [...add.map(change('absent', 'present')), ...remove.map(change('present', 'absent'))];
}

export function fromSecurityGroupRule(rule: SecurityGroupRule): ActualRule {
  const peer: Peer =
    rule.ReferencedGroupInfo?.GroupId !== undefined
      ? { group: rule.ReferencedGroupInfo.GroupId }
      : rule.PrefixListId !== undefined
        ? { prefixList: rule.PrefixListId }
        : { cidr: rule.CidrIpv4 ?? rule.CidrIpv6 ?? '' };
  return {
    id: rule.SecurityGroupRuleId ?? '',
    direction: rule.IsEgress ? 'egress' : 'ingress',
    protocol: rule.IpProtocol ?? '-1',
    fromPort: rule.FromPort ?? -1,
    toPort: rule.ToPort ?? -1,
    peer,
    ...(rule.Description === undefined ? {} : { description: rule.Description }),
  };
}

export function toIpPermission(rule: Rule): IpPermission {
  const Description = rule.description;
  return {
    IpProtocol: rule.protocol,
    FromPort: rule.fromPort,
    ToPort: rule.toPort,
    ...('cidr' in rule.peer
      ? { IpRanges: [{ CidrIp: rule.peer.cidr, Description }] }
      : 'prefixList' in rule.peer
        ? { PrefixListIds: [{ PrefixListId: rule.peer.prefixList, Description }] }
        : { UserIdGroupPairs: [{ GroupId: rule.peer.group, Description }] }),
  };
}

export async function findS3PrefixList(ctx: Ctx): Promise<string> {
  const name = awsServiceName(ctx, 's3');
  const { PrefixLists = [] } = await ctx.clients.ec2.send(
    new DescribePrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: [name] }] }),
  );
  const id = PrefixLists[0]?.PrefixListId;
  if (id === undefined) throw new Error(`DescribePrefixLists returned no prefix list named ${name}`);
  return id;
}

export async function findSecurityGroup(ctx: Ctx, vpcId: string, name: string): Promise<string | undefined> {
  if (isPendingId(vpcId)) return undefined;
  // group names are unique within a VPC (CreateSecurityGroup), so name + VPC finds it
  const { SecurityGroups = [] } = await ctx.clients.ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'group-name', Values: [name] },
      ],
    }),
  );
  return SecurityGroups[0]?.GroupId;
}

export async function findRules(ctx: Ctx, groupId: string): Promise<ActualRule[]> {
  const rules: ActualRule[] = [];
  const pages = paginateDescribeSecurityGroupRules(
    { client: ctx.clients.ec2 },
    { Filters: [{ Name: 'group-id', Values: [groupId] }] },
  );
  for await (const page of pages) rules.push(...(page.SecurityGroupRules ?? []).map(fromSecurityGroupRule));
  return rules;
}

// Adds before it revokes, so an update never leaves a moment with neither rule.
async function applyRuleDrift(ctx: Ctx, groupId: string, drift: ReturnType<typeof ruleDrift>): Promise<void> {
  const { ec2 } = ctx.clients;
  for (const rule of drift.add) {
    const input = { GroupId: groupId, IpPermissions: [toIpPermission(rule)] };
    try {
      if (rule.direction === 'ingress') await ec2.send(new AuthorizeSecurityGroupIngressCommand(input));
      else await ec2.send(new AuthorizeSecurityGroupEgressCommand(input));
    } catch (error) {
      // added by a concurrent run: the rule is there, which is what we wanted
      if (!isEc2Error(error, Ec2Error.permissionDuplicate)) throw error;
    }
  }
  for (const direction of ['ingress', 'egress'] as const) {
    const ruleIds = drift.remove.filter((rule) => rule.direction === direction).map((rule) => rule.id);
    if (ruleIds.length === 0) continue;
    const input = { GroupId: groupId, SecurityGroupRuleIds: ruleIds };
    try {
      if (direction === 'ingress') await ec2.send(new RevokeSecurityGroupIngressCommand(input));
      else await ec2.send(new RevokeSecurityGroupEgressCommand(input));
    } catch (error) {
      if (!isEc2Error(error, Ec2Error.ruleNotFound, Ec2Error.permissionNotFound)) throw error;
    }
  }
}

// a delete needs only the group's id: its rules are not read
const securityGroup = (vpcId: string, waits: NetworkWaits, readRules = true) =>
  settleCreated<DesiredGroup, ActualGroup, string>({
    kind: 'security-group',
    permissions: {
      find: 'ec2:DescribeSecurityGroups and ec2:DescribeSecurityGroupRules',
      create: 'ec2:CreateSecurityGroup and ec2:CreateTags',
      update:
        'ec2:AuthorizeSecurityGroupIngress, ec2:AuthorizeSecurityGroupEgress, ec2:RevokeSecurityGroupIngress and ec2:RevokeSecurityGroupEgress',
      delete: 'ec2:DeleteSecurityGroup',
    },
    async find(ctx, name) {
      const id = await findSecurityGroup(ctx, vpcId, name);
      return id === undefined ? undefined : { id, rules: readRules ? await findRules(ctx, id) : [] };
    },
    drift: groupDrift,
    // A new group comes with an allow-all egress rule (VPC user guide,
    // "Security group rules"): create revokes it and adds ours.
    async create(ctx, desired) {
      const { GroupId = '' } = await ctx.clients.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: desired.name,
          Description: desired.description,
          VpcId: vpcId,
          TagSpecifications: tagSpecification(ctx, 'security-group', desired.name),
        }),
      );
      return { id: GroupId, rules: await findRules(ctx, GroupId) };
    },
    // a concurrent run created it first: the loop finds it and converges its rules
    alreadyExists: (error) => isEc2Error(error, Ec2Error.groupDuplicate),
    update: (ctx, desired, actual) => applyRuleDrift(ctx, actual.id, ruleDrift(desired.rules, actual.rules)),
    outputs: (_ctx, desired, actual) => actual?.id ?? pending(`security group ${desired.name} id`),
    remove: removeWhenReleased(waits, 'security group', 'group-id', (ctx, GroupId) =>
      ctx.clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId })),
    ),
    isNotFound: (error) => isEc2Error(error, Ec2Error.groupNotFound),
  });

// The data stores' rules reference the function's group, so the function's
// group comes first.
export async function ensureSecurityGroups(ctx: Ctx, vpcId: string): Promise<SecurityGroupIds> {
  const prefixList = await step('find the S3 prefix list', 'ec2:DescribePrefixLists', () =>
    findS3PrefixList(ctx),
  );
  const resource = securityGroup(vpcId, networkWaits);
  const desired = (role: GroupRole, functionGroupId: string): DesiredGroup => ({
    name: groupName(ctx, role),
    description: descriptions[role],
    rules: desiredRules(ctx.config.provision.vpcCidr, prefixList, functionGroupId)[role],
  });
  // the function's rules do not reference its own id
  const fn = await reconcile(ctx, resource, desired('function', ''));
  const ids = { function: fn } as SecurityGroupIds;
  for (const role of ['cache', 'database', 'endpoint'] as const) {
    ids[role] = await reconcile(ctx, resource, desired(role, fn));
  }
  return ids;
}

// The data stores' groups reference the function's group, so the function's
// goes last. Every group waits until network interfaces release it.
export async function deleteSecurityGroups(ctx: Ctx, vpcId: string, waits: NetworkWaits): Promise<void> {
  const resource = securityGroup(vpcId, waits, false);
  for (const role of ['endpoint', 'cache', 'database', 'function'] as const) {
    await destroy(ctx, resource, groupName(ctx, role));
  }
}
