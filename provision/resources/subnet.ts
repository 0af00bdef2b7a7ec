import {
  CreateSubnetCommand,
  DeleteSubnetCommand,
  DescribeAvailabilityZonesCommand,
  DescribeSubnetsCommand,
  waitUntilSubnetAvailable,
} from '@aws-sdk/client-ec2';
import { UsageError } from '../../lib/errors.ts';
import { type Ctx, destroy, pending, type Resource, reconcile } from '../../lib/reconcile.ts';
import {
  Ec2Error,
  findTagged,
  isEc2Error,
  type NetworkWaits,
  removeWhenReleased,
  tagSpecification,
  untilAvailable,
} from './ec2.ts';

// Two subnets in two availability zones: RDS requires a DB subnet group to
// cover at least two AZs (CreateDBSubnetGroup), and ElastiCache Multi-AZ
// places the replica in another AZ than the primary.
export const subnetCount = 2;

export interface DesiredSubnet {
  name: string;
  index: number;
  cidr: string;
}

export interface ActualSubnet {
  id: string;
  state: string;
}

export function subnetName(ctx: Ctx, index: number): string {
  return `${ctx.names.base}-private-${index + 1}`;
}

// The i-th /20 of the VPC's /16 (config guarantees a /16 like 10.42.0.0/16):
// 4,091 usable addresses each, room for Lambda's ENIs and the data stores.
export function carveSubnetCidr(vpcCidr: string, index: number): string {
  const [a, b] = vpcCidr.split('.');
  if (index < 0 || index >= 16) throw new RangeError(`a /16 holds 16 /20 subnets, not index ${index}`);
  return `${a}.${b}.${index * 16}.0/20`;
}

// Zones are sorted by name so every run picks the same two; local zones and
// wavelength zones are excluded (they offer neither RDS nor ElastiCache t4g).
export async function findAvailabilityZones(ctx: Ctx): Promise<string[]> {
  const { AvailabilityZones = [] } = await ctx.clients.ec2.send(
    new DescribeAvailabilityZonesCommand({
      Filters: [
        { Name: 'state', Values: ['available'] },
        { Name: 'zone-type', Values: ['availability-zone'] },
      ],
    }),
  );
  const zones = AvailabilityZones.map((z) => z.ZoneName ?? '')
    .filter(Boolean)
    .sort();
  if (zones.length < subnetCount) {
    throw new UsageError(
      `region ${ctx.identity.region} has ${zones.length} available zone(s); this stack needs ${subnetCount}: choose another AWS_REGION`,
    );
  }
  return zones.slice(0, subnetCount);
}

export async function findSubnet(ctx: Ctx, vpcId: string, name: string): Promise<ActualSubnet | undefined> {
  const { Subnets = [] } = await findTagged(ctx, name, vpcId, (Filters) =>
    ctx.clients.ec2.send(new DescribeSubnetsCommand({ Filters })),
  );
  const subnet = Subnets[0];
  if (subnet?.SubnetId === undefined) return undefined;
  return { id: subnet.SubnetId, state: subnet.State ?? 'available' };
}

// A subnet's CIDR and zone cannot be changed, so an existing subnet is kept as
// it is: a subnet never drifts. To create missing subnets, the zones are
// looked up once, and only when a subnet is missing (an existing subnet keeps
// the zone it was made in); a delete needs none.
const subnet = (
  vpcId: string,
  waits: NetworkWaits,
  createsMissing = false,
): Resource<DesiredSubnet, ActualSubnet, string> => {
  let zones: string[] | undefined;
  return {
    kind: 'subnet',
    permissions: {
      find: 'ec2:DescribeSubnets and ec2:DescribeAvailabilityZones',
      create: 'ec2:CreateSubnet and ec2:CreateTags',
      delete: 'ec2:DeleteSubnet',
    },
    async find(ctx, name) {
      const found = await findSubnet(ctx, vpcId, name);
      if (found === undefined && createsMissing) zones ??= await findAvailabilityZones(ctx);
      return found;
    },
    drift: () => [],
    createFields: (desired) => [{ field: 'availabilityZone', from: undefined, to: zones?.[desired.index] }],
    async create(ctx, desired) {
      try {
        const { Subnet = {} } = await ctx.clients.ec2.send(
          new CreateSubnetCommand({
            VpcId: vpcId,
            CidrBlock: desired.cidr,
            AvailabilityZone: zones?.[desired.index],
            TagSpecifications: tagSpecification(ctx, 'subnet', desired.name),
          }),
        );
        // awaited below until DescribeSubnets reports it available
        return { id: Subnet.SubnetId ?? '', state: 'pending' };
      } catch (error) {
        // a concurrent run created the same CIDR first: use that subnet (a
        // conflict with a subnet that is not ours stays an error)
        const raced = isEc2Error(error, Ec2Error.subnetConflict)
          ? await findSubnet(ctx, vpcId, desired.name)
          : undefined;
        if (raced === undefined) throw error;
        return raced;
      }
    },
    wait: untilAvailable(waits, (options, id) => waitUntilSubnetAvailable(options, { SubnetIds: [id] })),
    outputs: (_ctx, desired, actual) => actual?.id ?? pending(`subnet ${desired.name} id`),
    remove: removeWhenReleased(waits, 'subnet', 'subnet-id', (ctx, SubnetId) =>
      ctx.clients.ec2.send(new DeleteSubnetCommand({ SubnetId })),
    ),
    isNotFound: (error) => isEc2Error(error, Ec2Error.subnetNotFound),
  };
};

export async function ensureSubnets(ctx: Ctx, vpcId: string, waits: NetworkWaits) {
  const resource = subnet(vpcId, waits, true);
  const subnetIds: string[] = [];
  for (let index = 0; index < subnetCount; index++) {
    const cidr = carveSubnetCidr(ctx.config.provision.vpcCidr, index);
    subnetIds.push(await reconcile(ctx, resource, { name: subnetName(ctx, index), index, cidr }));
  }
  return { subnetIds };
}

// Subnets fail with DependencyViolation while Lambda's network interfaces
// linger (up to ~20 min after the function is deleted): retried, with progress.
export async function deleteSubnets(ctx: Ctx, vpcId: string, waits: NetworkWaits): Promise<void> {
  const resource = subnet(vpcId, waits);
  for (let index = 0; index < subnetCount; index++) await destroy(ctx, resource, subnetName(ctx, index));
}
