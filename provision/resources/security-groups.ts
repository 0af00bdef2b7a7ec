import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribePrefixListsCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  type IpPermission,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
  type SecurityGroupRule,
} from '@aws-sdk/client-ec2';
import { stepError } from '../../lib/errors.ts';
import { retryWhile } from '../../lib/poll.ts';
import { Action, type Ctx, type FieldChange, isPlan, pending, record } from '../../lib/reconcile.ts';
import { Ec2Error, isEc2Error, type NetworkWaits, networkWaits, tagSpecification } from './vpc.ts';

export const GroupRole = {
  function: 'function',
  cache: 'cache',
  database: 'database',
  endpoint: 'endpoint',
} as const;
export type GroupRole = (typeof GroupRole)[keyof typeof GroupRole];

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

export function groupName(ctx: Ctx, role: GroupRole): string {
  return `${ctx.names.base}-${role}`;
}

const descriptions: Record<GroupRole, string> = {
  function: 'line-count function: egress only, to the VPC and S3',
  cache: 'ElastiCache: Redis port from the function only',
  database: 'RDS PostgreSQL: from the function only',
  endpoint: 'Secrets Manager endpoint: HTTPS from the function only',
};

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
  const peer =
    'cidr' in rule.peer
      ? `cidr ${rule.peer.cidr}`
      : 'prefixList' in rule.peer
        ? `prefix-list ${rule.peer.prefixList}`
        : `group ${rule.peer.group}`;
  const ports = rule.fromPort === rule.toPort ? `${rule.fromPort}` : `${rule.fromPort}-${rule.toPort}`;
  const protocol = rule.protocol === '-1' ? 'all' : rule.protocol;
  return `${rule.direction} ${protocol} ${ports} ${peer}`;
}

export interface RuleDrift {
  add: Rule[];
  remove: ActualRule[];
}

// A rule removed out of band is added back; a rule nobody asked for is revoked.
export function ruleDrift(desired: readonly Rule[], actual: readonly ActualRule[]): RuleDrift {
  const wanted = new Set(desired.map(ruleKey));
  const present = new Set(actual.map(ruleKey));
  return {
    add: desired.filter((rule) => !present.has(ruleKey(rule))),
    remove: actual.filter((rule) => !wanted.has(ruleKey(rule))),
  };
}

export function ruleDriftFields(drift: RuleDrift): FieldChange[] {
  return [
    ...drift.add.map((rule) => ({ field: ruleKey(rule), from: 'absent', to: 'present' })),
    ...drift.remove.map((rule) => ({ field: ruleKey(rule), from: 'present', to: 'absent' })),
  ];
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
  const name = `${ctx.identity.partition === 'aws-cn' ? 'cn.' : ''}com.amazonaws.${ctx.identity.region}.s3`;
  const { PrefixLists = [] } = await ctx.clients.ec2.send(
    new DescribePrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: [name] }] }),
  );
  const id = PrefixLists[0]?.PrefixListId;
  if (id === undefined) {
    throw stepError(`find the S3 prefix list ${name}`, new Error('DescribePrefixLists returned none'));
  }
  return id;
}

export async function findSecurityGroup(
  ctx: Ctx,
  vpcId: string,
  role: GroupRole,
): Promise<string | undefined> {
  // group names are unique within a VPC (CreateSecurityGroup), so name + VPC finds it
  const { SecurityGroups = [] } = await ctx.clients.ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'group-name', Values: [groupName(ctx, role)] },
      ],
    }),
  );
  return SecurityGroups[0]?.GroupId;
}

export async function findRules(ctx: Ctx, groupId: string): Promise<ActualRule[]> {
  const rules: ActualRule[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ctx.clients.ec2.send(
      new DescribeSecurityGroupRulesCommand({
        Filters: [{ Name: 'group-id', Values: [groupId] }],
        NextToken,
      }),
    );
    rules.push(...(page.SecurityGroupRules ?? []).map(fromSecurityGroupRule));
    NextToken = page.NextToken;
  } while (NextToken);
  return rules;
}

const order: readonly GroupRole[] = [
  GroupRole.function,
  GroupRole.cache,
  GroupRole.database,
  GroupRole.endpoint,
];

export async function ensureSecurityGroups(ctx: Ctx, vpcId: string): Promise<SecurityGroupIds> {
  const vpcExists = !vpcId.startsWith('(');
  const ids = {} as SecurityGroupIds;
  const existing = {} as Record<GroupRole, boolean>;
  // groups first, rules second: the data stores' rules reference the function's group
  for (const role of order) {
    const name = groupName(ctx, role);
    const found = vpcExists ? await findSecurityGroup(ctx, vpcId, role) : undefined;
    existing[role] = found !== undefined;
    if (found !== undefined) {
      ids[role] = found;
    } else if (isPlan(ctx)) {
      ids[role] = pending(`security group ${name} id`);
    } else {
      ids[role] = await createSecurityGroup(ctx, vpcId, role);
    }
  }
  const prefixList = await findS3PrefixList(ctx);
  const rules = desiredRules(ctx.config.provision.vpcCidr, prefixList, ids.function);
  for (const role of order) {
    const name = groupName(ctx, role);
    if (!existing[role]) {
      record(ctx, { kind: 'security-group', name, action: Action.create });
      if (!isPlan(ctx))
        await applyRuleDrift(ctx, ids[role], name, ruleDrift(rules[role], await findRules(ctx, ids[role])));
      continue;
    }
    const drift = ruleDrift(rules[role], await findRules(ctx, ids[role]));
    const fields = ruleDriftFields(drift);
    record(ctx, {
      kind: 'security-group',
      name,
      action: fields.length ? Action.update : Action.unchanged,
      fields,
    });
    if (!isPlan(ctx)) await applyRuleDrift(ctx, ids[role], name, drift);
  }
  return ids;
}

async function createSecurityGroup(ctx: Ctx, vpcId: string, role: GroupRole): Promise<string> {
  const name = groupName(ctx, role);
  try {
    const { GroupId } = await ctx.clients.ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: name,
        Description: descriptions[role],
        VpcId: vpcId,
        TagSpecifications: tagSpecification(ctx, 'security-group', name),
      }),
    );
    return GroupId ?? '';
  } catch (error) {
    if (isEc2Error(error, Ec2Error.groupDuplicate)) {
      const raced = await findSecurityGroup(ctx, vpcId, role);
      if (raced !== undefined) return raced;
    }
    throw stepError(`create security group ${name}`, error, 'check ec2:CreateSecurityGroup permission');
  }
}

// Adds before it revokes, so an update never leaves a moment with neither rule.
async function applyRuleDrift(ctx: Ctx, groupId: string, name: string, drift: RuleDrift): Promise<void> {
  const ec2 = ctx.clients.ec2;
  for (const rule of drift.add) {
    const input = { GroupId: groupId, IpPermissions: [toIpPermission(rule)] };
    try {
      if (rule.direction === 'ingress') await ec2.send(new AuthorizeSecurityGroupIngressCommand(input));
      else await ec2.send(new AuthorizeSecurityGroupEgressCommand(input));
    } catch (error) {
      // added by a concurrent run: the rule is there, which is what we wanted
      if (isEc2Error(error, Ec2Error.permissionDuplicate)) continue;
      throw stepError(`add rule "${ruleKey(rule)}" to security group ${name}`, error);
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
      if (isEc2Error(error, Ec2Error.ruleNotFound, Ec2Error.permissionNotFound)) continue;
      throw stepError(`revoke ${direction} rules ${ruleIds.join(', ')} from security group ${name}`, error);
    }
  }
}

// The data stores' groups reference the function's group, so the function's
// goes last. Every group retries DependencyViolation while network interfaces
// still use it: Lambda releases a VPC function's ENIs up to ~20 minutes after
// the function is deleted, and RDS/ElastiCache release theirs when deleted.
export async function deleteSecurityGroups(
  ctx: Ctx,
  vpcId: string,
  waits: NetworkWaits = networkWaits,
): Promise<void> {
  for (const role of [GroupRole.endpoint, GroupRole.cache, GroupRole.database, GroupRole.function]) {
    const name = groupName(ctx, role);
    const groupId = await findSecurityGroup(ctx, vpcId, role);
    if (groupId === undefined) {
      record(ctx, { kind: 'security-group', name, action: Action.absent });
      continue;
    }
    record(ctx, { kind: 'security-group', name, action: Action.delete });
    if (isPlan(ctx)) continue;
    await retryWhile(
      async () => {
        try {
          await ctx.clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
        } catch (error) {
          if (isEc2Error(error, Ec2Error.groupNotFound)) return;
          throw error;
        }
      },
      (error) => isEc2Error(error, Ec2Error.dependencyViolation),
      {
        what: `security group ${name} to be released by its network interfaces`,
        timeoutMs: waits.dependencyTimeoutSeconds * 1000,
        intervalMs: waits.minDelaySeconds * 1000,
        maxIntervalMs: waits.maxDelaySeconds * 1000,
        onProgress: (elapsed) =>
          ctx.log.progress(
            `security group ${name} is still in use by network interfaces (Lambda releases them up to ~20 min after deletion): ${Math.round(elapsed / 1000)} s`,
          ),
      },
    ).catch((error: unknown) => {
      throw stepError(
        `delete security group ${name} (${groupId})`,
        error,
        `network interfaces still use it: run teardown again later, or list them with aws ec2 describe-network-interfaces --filters Name=group-id,Values=${groupId}`,
      );
    });
  }
}
