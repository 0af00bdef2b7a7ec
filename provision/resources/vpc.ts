import {
  CreateVpcCommand,
  DeleteVpcCommand,
  DescribeVpcAttributeCommand,
  DescribeVpcsCommand,
  ModifyVpcAttributeCommand,
  waitUntilVpcAvailable,
} from '@aws-sdk/client-ec2';
import { UsageError } from '../../lib/errors.ts';
import {
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  pending,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import {
  Ec2Error,
  findTagged,
  isEc2Error,
  type NetworkWaits,
  settleCreated,
  tagSpecification,
  untilAvailable,
} from './ec2.ts';

export interface DesiredVpc {
  name: string;
  cidr: string;
  // DNS support and hostnames let the Secrets Manager interface endpoint's
  // private DNS name resolve inside the VPC (VPC endpoints guide, "Private DNS")
  enableDnsSupport: boolean;
  enableDnsHostnames: boolean;
}

export type ActualVpc = Omit<DesiredVpc, 'name'> & { id: string; state: string };

export function desiredVpc(ctx: Ctx): DesiredVpc {
  return {
    name: ctx.names.vpc,
    cidr: ctx.config.provision.vpcCidr,
    enableDnsSupport: true,
    enableDnsHostnames: true,
  };
}

export function vpcDrift(desired: DesiredVpc, actual: ActualVpc): FieldChange[] {
  if (actual.cidr !== desired.cidr) {
    // a VPC's primary CIDR block cannot be changed (ModifyVpcAttribute has no such attribute)
    throw new UsageError(
      `VPC ${desired.name} (${actual.id}) has CIDR ${actual.cidr} but VPC_CIDR is ${desired.cidr}; set VPC_CIDR=${actual.cidr} or tear the stack down first`,
    );
  }
  const { name, cidr, ...dns } = desired;
  return diffFields(dns, actual);
}

const permissions = {
  find: 'ec2:DescribeVpcs and ec2:DescribeVpcAttribute',
  create: 'ec2:CreateVpc and ec2:CreateTags',
  update: 'ec2:ModifyVpcAttribute',
};

export async function findVpc(ctx: Ctx): Promise<ActualVpc | undefined> {
  const { ec2 } = ctx.clients;
  const { Vpcs = [] } = await findTagged(ctx, ctx.names.vpc, undefined, (Filters) =>
    ec2.send(new DescribeVpcsCommand({ Filters })),
  );
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

// the VPC as deleteNetwork reads it, a step of its own
export const readVpc = (ctx: Ctx) => step(`read vpc ${ctx.names.vpc}`, permissions.find, () => findVpc(ctx));

const vpc = (waits: NetworkWaits) => {
  const wait = untilAvailable(waits, (options, id) => waitUntilVpcAvailable(options, { VpcIds: [id] }));
  return settleCreated<DesiredVpc, ActualVpc, { vpcId: string }>({
    kind: 'vpc',
    permissions,
    find: (ctx) => findVpc(ctx),
    drift: vpcDrift,
    // A new VPC has DNS support on and hostnames off (VPC user guide, "DNS
    // attributes"), and CreateVpc cannot choose them: they are set once it is available.
    async create(ctx, desired) {
      const { Vpc } = await ctx.clients.ec2.send(
        new CreateVpcCommand({
          CidrBlock: desired.cidr,
          TagSpecifications: tagSpecification(ctx, 'vpc', desired.name),
        }),
      );
      const created = {
        id: Vpc?.VpcId ?? '',
        cidr: desired.cidr,
        state: 'pending',
        enableDnsSupport: true,
        enableDnsHostnames: false,
      };
      await step(`wait for vpc ${desired.name}`, permissions.find, () => wait(ctx, desired, created));
      return { ...created, state: 'available' };
    },
    // ModifyVpcAttribute takes one attribute per call; hostnames need support on, so support goes first
    async update(ctx, _desired, actual, drift) {
      for (const change of drift) {
        const attribute = change.field === 'enableDnsSupport' ? 'EnableDnsSupport' : 'EnableDnsHostnames';
        await ctx.clients.ec2.send(
          new ModifyVpcAttributeCommand({ VpcId: actual.id, [attribute]: { Value: change.to as boolean } }),
        );
      }
    },
    wait,
    outputs: (_ctx, _desired, actual) => ({ vpcId: actual?.id ?? pending('vpc id') }),
  });
};

export const ensureVpc = (ctx: Ctx, waits: NetworkWaits) => reconcile(ctx, vpc(waits), desiredVpc(ctx));

// Takes the id deleteNetwork already found, so the VPC is not described again.
// Its main route table, default network ACL and default security group go with it.
export async function deleteVpc(ctx: Ctx, vpcId: string | undefined): Promise<void> {
  await deleteFound(ctx, {
    kind: 'vpc',
    name: ctx.names.vpc,
    found: vpcId !== undefined,
    remove: () => ctx.clients.ec2.send(new DeleteVpcCommand({ VpcId: vpcId })),
    isNotFound: (error) => isEc2Error(error, Ec2Error.vpcNotFound),
    what: `VPC ${ctx.names.vpc} (${vpcId})`,
    hint: `check ec2:DeleteVpc permission; on DependencyViolation something outside this stack still uses it: list its network interfaces with aws ec2 describe-network-interfaces --filters Name=vpc-id,Values=${vpcId}`,
  });
}
