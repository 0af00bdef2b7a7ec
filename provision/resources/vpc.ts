import {
  CreateVpcCommand,
  DeleteVpcCommand,
  DescribeVpcAttributeCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type Filter,
  ModifyVpcAttributeCommand,
  type Tag,
  waitUntilVpcAvailable,
} from '@aws-sdk/client-ec2';
import { stepError, UsageError } from '../../lib/errors.ts';
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

// EC2 has no modeled exception classes: its errors carry the documented error
// code as `name` (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
// so matching `error.name` is the SDK's own way to tell them apart.
export const Ec2Error = {
  vpcNotFound: 'InvalidVpcID.NotFound',
  subnetNotFound: 'InvalidSubnetID.NotFound',
  subnetConflict: 'InvalidSubnet.Conflict',
  routeTableNotFound: 'InvalidRouteTableID.NotFound',
  associationNotFound: 'InvalidAssociationID.NotFound',
  alreadyAssociated: 'Resource.AlreadyAssociated',
  groupNotFound: 'InvalidGroup.NotFound',
  groupDuplicate: 'InvalidGroup.Duplicate',
  permissionDuplicate: 'InvalidPermission.Duplicate',
  permissionNotFound: 'InvalidPermission.NotFound',
  ruleNotFound: 'InvalidSecurityGroupRuleId.NotFound',
  endpointNotFound: 'InvalidVpcEndpointId.NotFound',
  // DeleteVpcEndpoints' per-item `Unsuccessful` codes are not listed in the API
  // reference; both not-found spellings mean the endpoint is already gone
  endpointGone: 'InvalidVpcEndpoint.NotFound',
  dependencyViolation: 'DependencyViolation',
} as const;
export type Ec2Error = (typeof Ec2Error)[keyof typeof Ec2Error];

export function isEc2Error(error: unknown, ...codes: Ec2Error[]): boolean {
  return error instanceof Error && (codes as string[]).includes(error.name);
}

export function ec2Tags(ctx: Ctx, name: string): Tag[] {
  return toTagList({ Name: name, ...ctx.names.tags });
}

export function tagSpecification(ctx: Ctx, resourceType: string, name: string) {
  return [{ ResourceType: resourceType as never, Tags: ec2Tags(ctx, name) }];
}

// Network resources have no names of their own: they are found by their Name
// tag plus this stack's app/stage tags, so two stages in one account never
// pick up each other's resources.
export function tagFilters(ctx: Ctx, name: string): Filter[] {
  return [
    { Name: 'tag:Name', Values: [name] },
    { Name: 'tag:app', Values: [ctx.config.stack.app] },
    { Name: 'tag:stage', Values: [ctx.config.stack.stage] },
  ];
}

export const networkWaits = {
  // a VPC, subnet or endpoint is usually ready within seconds; endpoints take ~2 min
  maxWaitSeconds: 600,
  minDelaySeconds: 2,
  maxDelaySeconds: 15,
  // Lambda keeps a VPC function's network interfaces for up to ~20 minutes
  // after the function is deleted (Lambda developer guide, "VPC networking"):
  // security groups and subnets cannot be deleted until then.
  dependencyTimeoutSeconds: 30 * 60,
};
export type NetworkWaits = typeof networkWaits;

export interface DesiredVpc {
  name: string;
  cidr: string;
  // DNS support and hostnames let the Secrets Manager interface endpoint's
  // private DNS name resolve inside the VPC (VPC endpoints guide, "Private DNS")
  enableDnsSupport: boolean;
  enableDnsHostnames: boolean;
}

export interface ActualVpc {
  id: string;
  cidr: string;
  state: string;
  enableDnsSupport: boolean;
  enableDnsHostnames: boolean;
}

export function desiredVpc(ctx: Ctx): DesiredVpc {
  return {
    name: ctx.names.vpc,
    cidr: ctx.config.provision.vpcCidr,
    enableDnsSupport: true,
    enableDnsHostnames: true,
  };
}

export function vpcDrift(desired: DesiredVpc, actual: ActualVpc): FieldChange[] {
  return diffFields(
    { enableDnsSupport: desired.enableDnsSupport, enableDnsHostnames: desired.enableDnsHostnames },
    { enableDnsSupport: actual.enableDnsSupport, enableDnsHostnames: actual.enableDnsHostnames },
  );
}

export async function findVpc(ctx: Ctx): Promise<ActualVpc | undefined> {
  const ec2 = ctx.clients.ec2;
  const { Vpcs = [] } = await ec2.send(new DescribeVpcsCommand({ Filters: tagFilters(ctx, ctx.names.vpc) }));
  if (Vpcs.length > 1) {
    throw new UsageError(
      `found ${Vpcs.length} VPCs tagged Name=${ctx.names.vpc} (${Vpcs.map((v) => v.VpcId).join(', ')}); delete the extra ones so one remains`,
    );
  }
  const vpc = Vpcs[0];
  if (vpc?.VpcId === undefined) return undefined;
  const [support, hostnames] = await Promise.all([
    ec2.send(new DescribeVpcAttributeCommand({ VpcId: vpc.VpcId, Attribute: 'enableDnsSupport' })),
    ec2.send(new DescribeVpcAttributeCommand({ VpcId: vpc.VpcId, Attribute: 'enableDnsHostnames' })),
  ]);
  return {
    id: vpc.VpcId,
    cidr: vpc.CidrBlock ?? '',
    state: vpc.State ?? 'available',
    enableDnsSupport: support.EnableDnsSupport?.Value ?? false,
    enableDnsHostnames: hostnames.EnableDnsHostnames?.Value ?? false,
  };
}

export async function ensureVpc(ctx: Ctx, waits: NetworkWaits = networkWaits): Promise<{ vpcId: string }> {
  const desired = desiredVpc(ctx);
  const kind = 'vpc';
  let actual = await findVpc(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name: desired.name, action: Action.create });
    if (isPlan(ctx)) return { vpcId: pending('vpc id') };
    try {
      const created = await ctx.clients.ec2.send(
        new CreateVpcCommand({
          CidrBlock: desired.cidr,
          TagSpecifications: tagSpecification(ctx, 'vpc', desired.name),
        }),
      );
      actual = {
        id: created.Vpc?.VpcId ?? '',
        cidr: desired.cidr,
        state: created.Vpc?.State ?? 'pending',
        // a new VPC has DNS support on and hostnames off (VPC user guide, "DNS attributes")
        enableDnsSupport: true,
        enableDnsHostnames: false,
      };
    } catch (error) {
      throw stepError(
        `create VPC ${desired.name} (${desired.cidr})`,
        error,
        'check ec2:CreateVpc permission and the VPC quota',
      );
    }
    await waitForVpc(ctx.clients.ec2, actual.id, waits);
    await updateVpc(ctx.clients.ec2, actual.id, vpcDrift(desired, actual), desired.name);
    return { vpcId: actual.id };
  }
  if (actual.cidr !== desired.cidr) {
    // a VPC's primary CIDR block cannot be changed (ModifyVpcAttribute has no such attribute)
    throw new UsageError(
      `VPC ${desired.name} (${actual.id}) has CIDR ${actual.cidr} but VPC_CIDR is ${desired.cidr}; set VPC_CIDR=${actual.cidr} or tear the stack down first`,
    );
  }
  const drift = vpcDrift(desired, actual);
  record(ctx, {
    kind,
    name: desired.name,
    action: drift.length ? Action.update : Action.unchanged,
    fields: drift,
  });
  if (isPlan(ctx)) return { vpcId: actual.id };
  if (actual.state !== 'available') await waitForVpc(ctx.clients.ec2, actual.id, waits);
  await updateVpc(ctx.clients.ec2, actual.id, drift, desired.name);
  return { vpcId: actual.id };
}

async function updateVpc(ec2: EC2Client, vpcId: string, drift: FieldChange[], name: string): Promise<void> {
  // ModifyVpcAttribute takes one attribute per call; hostnames need support on, so support goes first
  for (const change of drift) {
    const value = { Value: change.to as boolean };
    try {
      await ec2.send(
        new ModifyVpcAttributeCommand(
          change.field === 'enableDnsSupport'
            ? { VpcId: vpcId, EnableDnsSupport: value }
            : { VpcId: vpcId, EnableDnsHostnames: value },
        ),
      );
    } catch (error) {
      throw stepError(`set ${change.field} on VPC ${name}`, error, 'check ec2:ModifyVpcAttribute permission');
    }
  }
}

async function waitForVpc(ec2: EC2Client, vpcId: string, waits: NetworkWaits): Promise<void> {
  await waitUntilVpcAvailable(
    {
      client: ec2,
      maxWaitTime: waits.maxWaitSeconds,
      minDelay: waits.minDelaySeconds,
      maxDelay: waits.maxDelaySeconds,
    },
    { VpcIds: [vpcId] },
  );
}

// Takes the id deleteNetwork already found, so the VPC is not described again.
export async function deleteVpc(ctx: Ctx, vpcId: string | undefined): Promise<void> {
  await deleteFound(ctx, {
    kind: 'vpc',
    name: ctx.names.vpc,
    found: vpcId !== undefined,
    // the VPC's main route table, default network ACL and default security group go with it
    remove: () => ctx.clients.ec2.send(new DeleteVpcCommand({ VpcId: vpcId })),
    isNotFound: (error) => isEc2Error(error, Ec2Error.vpcNotFound),
    what: `VPC ${ctx.names.vpc} (${vpcId})`,
    hint: `something outside this stack still uses it: list its network interfaces with aws ec2 describe-network-interfaces --filters Name=vpc-id,Values=${vpcId}`,
  });
}
