import {
  AssociateRouteTableCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  DeleteRouteTableCommand,
  DeleteSubnetCommand,
  DescribeAvailabilityZonesCommand,
  DescribeRouteTablesCommand,
  DescribeSubnetsCommand,
  DisassociateRouteTableCommand,
  type EC2Client,
  ReplaceRouteTableAssociationCommand,
  waitUntilSubnetAvailable,
} from '@aws-sdk/client-ec2';
import { stepError, UsageError } from '../../lib/errors.ts';
import { retryWhile } from '../../lib/poll.ts';
import { Action, type Ctx, type FieldChange, isPlan, pending, record } from '../../lib/reconcile.ts';
import {
  Ec2Error,
  isEc2Error,
  type NetworkWaits,
  networkWaits,
  tagFilters,
  tagSpecification,
} from './vpc.ts';

// Two subnets in two availability zones: RDS requires a DB subnet group to
// cover at least two AZs (CreateDBSubnetGroup), and ElastiCache Multi-AZ
// places the replica in another AZ than the primary.
export const subnetCount = 2;

export interface DesiredSubnet {
  name: string;
  cidr: string;
  availabilityZone: string;
}

export interface ActualSubnet {
  id: string;
  name: string;
  cidr: string;
  availabilityZone: string;
  state: string;
}

export function subnetName(ctx: Ctx, index: number): string {
  return `${ctx.names.base}-private-${index + 1}`;
}

export function routeTableName(ctx: Ctx): string {
  return `${ctx.names.base}-private`;
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

export function desiredSubnets(ctx: Ctx, zones: readonly string[]): DesiredSubnet[] {
  return zones.slice(0, subnetCount).map((availabilityZone, index) => ({
    name: subnetName(ctx, index),
    cidr: carveSubnetCidr(ctx.config.provision.vpcCidr, index),
    availabilityZone,
  }));
}

export async function findSubnet(ctx: Ctx, vpcId: string, name: string): Promise<ActualSubnet | undefined> {
  const { Subnets = [] } = await ctx.clients.ec2.send(
    new DescribeSubnetsCommand({ Filters: [...tagFilters(ctx, name), { Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const subnet = Subnets[0];
  if (subnet?.SubnetId === undefined) return undefined;
  return {
    id: subnet.SubnetId,
    name,
    cidr: subnet.CidrBlock ?? '',
    availabilityZone: subnet.AvailabilityZone ?? '',
    state: subnet.State ?? 'available',
  };
}

// A subnet's CIDR and zone cannot be changed, so an existing subnet is kept as
// it is: ensureSubnets never reports drift on it.
export async function ensureSubnets(
  ctx: Ctx,
  vpcId: string,
  waits: NetworkWaits = networkWaits,
): Promise<{ subnetIds: string[] }> {
  const vpcExists = !vpcId.startsWith('(');
  const subnetIds: string[] = [];
  let zones: string[] | undefined;
  for (let index = 0; index < subnetCount; index++) {
    const name = subnetName(ctx, index);
    let actual = vpcExists ? await findSubnet(ctx, vpcId, name) : undefined;
    if (actual !== undefined) {
      record(ctx, { kind: 'subnet', name, action: Action.unchanged });
      if (!isPlan(ctx) && actual.state !== 'available')
        await waitForSubnet(ctx.clients.ec2, actual.id, waits);
      subnetIds.push(actual.id);
      continue;
    }
    zones ??= await findAvailabilityZones(ctx);
    const desired = desiredSubnets(ctx, zones)[index] as DesiredSubnet;
    record(ctx, {
      kind: 'subnet',
      name,
      action: Action.create,
      fields: [{ field: 'availabilityZone', from: undefined, to: desired.availabilityZone }],
    });
    if (isPlan(ctx)) {
      subnetIds.push(pending(`subnet ${name} id`));
      continue;
    }
    actual = await createSubnet(ctx, vpcId, desired);
    await waitForSubnet(ctx.clients.ec2, actual.id, waits);
    subnetIds.push(actual.id);
  }
  return { subnetIds };
}

async function createSubnet(ctx: Ctx, vpcId: string, desired: DesiredSubnet): Promise<ActualSubnet> {
  try {
    const { Subnet } = await ctx.clients.ec2.send(
      new CreateSubnetCommand({
        VpcId: vpcId,
        CidrBlock: desired.cidr,
        AvailabilityZone: desired.availabilityZone,
        TagSpecifications: tagSpecification(ctx, 'subnet', desired.name),
      }),
    );
    return {
      id: Subnet?.SubnetId ?? '',
      name: desired.name,
      cidr: desired.cidr,
      availabilityZone: desired.availabilityZone,
      state: Subnet?.State ?? 'pending',
    };
  } catch (error) {
    // a concurrent run created the same CIDR first: use that subnet
    if (isEc2Error(error, Ec2Error.subnetConflict)) {
      const raced = await findSubnet(ctx, vpcId, desired.name);
      if (raced !== undefined) return raced;
    }
    throw stepError(`create subnet ${desired.name} (${desired.cidr} in ${desired.availabilityZone})`, error);
  }
}

async function waitForSubnet(ec2: EC2Client, subnetId: string, waits: NetworkWaits): Promise<void> {
  await waitUntilSubnetAvailable(
    {
      client: ec2,
      maxWaitTime: waits.maxWaitSeconds,
      minDelay: waits.minDelaySeconds,
      maxDelay: waits.maxDelaySeconds,
    },
    { SubnetIds: [subnetId] },
  );
}

export interface ActualRouteTable {
  id: string;
  // subnet id → association id, explicit associations only
  associations: Record<string, string>;
}

export async function findRouteTable(ctx: Ctx, vpcId: string): Promise<ActualRouteTable | undefined> {
  const { RouteTables = [] } = await ctx.clients.ec2.send(
    new DescribeRouteTablesCommand({
      Filters: [...tagFilters(ctx, routeTableName(ctx)), { Name: 'vpc-id', Values: [vpcId] }],
    }),
  );
  const table = RouteTables[0];
  if (table?.RouteTableId === undefined) return undefined;
  const associations: Record<string, string> = {};
  for (const association of table.Associations ?? []) {
    if (association.SubnetId !== undefined && association.RouteTableAssociationId !== undefined) {
      associations[association.SubnetId] = association.RouteTableAssociationId;
    }
  }
  return { id: table.RouteTableId, associations };
}

// The subnets the route table should be associated with but is not.
export function routeTableDrift(subnetIds: readonly string[], actual: ActualRouteTable): FieldChange[] {
  const associated = Object.keys(actual.associations).sort();
  const missing = subnetIds.filter((id) => !(id in actual.associations));
  if (missing.length === 0) return [];
  return [{ field: 'subnets', from: associated, to: [...new Set([...associated, ...subnetIds])].sort() }];
}

// One route table for both private subnets: it holds only the VPC's local
// route and the S3 gateway endpoint's prefix-list route. No internet gateway,
// no NAT: nothing in these subnets can reach the internet.
export async function ensureRouteTable(
  ctx: Ctx,
  vpcId: string,
  subnetIds: readonly string[],
): Promise<{ routeTableId: string }> {
  const name = routeTableName(ctx);
  const kind = 'route-table';
  let actual = vpcId.startsWith('(') ? undefined : await findRouteTable(ctx, vpcId);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.create });
    if (isPlan(ctx)) return { routeTableId: pending('route table id') };
    try {
      const { RouteTable } = await ctx.clients.ec2.send(
        new CreateRouteTableCommand({
          VpcId: vpcId,
          TagSpecifications: tagSpecification(ctx, 'route-table', name),
        }),
      );
      actual = { id: RouteTable?.RouteTableId ?? '', associations: {} };
    } catch (error) {
      throw stepError(`create route table ${name}`, error, 'check ec2:CreateRouteTable permission');
    }
    await associateSubnets(ctx, actual, subnetIds);
    return { routeTableId: actual.id };
  }
  const drift = routeTableDrift(subnetIds, actual);
  record(ctx, { kind, name, action: drift.length ? Action.update : Action.unchanged, fields: drift });
  if (!isPlan(ctx) && drift.length) await associateSubnets(ctx, actual, subnetIds);
  return { routeTableId: actual.id };
}

async function associateSubnets(
  ctx: Ctx,
  table: ActualRouteTable,
  subnetIds: readonly string[],
): Promise<void> {
  const ec2 = ctx.clients.ec2;
  for (const subnetId of subnetIds) {
    if (subnetId in table.associations) continue;
    try {
      await ec2.send(new AssociateRouteTableCommand({ RouteTableId: table.id, SubnetId: subnetId }));
    } catch (error) {
      if (!isEc2Error(error, Ec2Error.alreadyAssociated)) {
        throw stepError(`associate subnet ${subnetId} with route table ${table.id}`, error);
      }
      // associated out of band with another table: move it to ours
      const { RouteTables = [] } = await ec2.send(
        new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnetId] }] }),
      );
      const association = RouteTables.flatMap((t) => t.Associations ?? []).find(
        (a) => a.SubnetId === subnetId,
      );
      if (association?.RouteTableAssociationId === undefined)
        throw stepError(`associate subnet ${subnetId}`, error);
      await ec2.send(
        new ReplaceRouteTableAssociationCommand({
          AssociationId: association.RouteTableAssociationId,
          RouteTableId: table.id,
        }),
      );
    }
  }
}

// Subnets fail with DependencyViolation while Lambda's network interfaces
// linger (up to ~20 min after the function is deleted): retried, with progress.
export async function deleteSubnets(
  ctx: Ctx,
  vpcId: string,
  waits: NetworkWaits = networkWaits,
): Promise<void> {
  for (let index = 0; index < subnetCount; index++) {
    const name = subnetName(ctx, index);
    const actual = await findSubnet(ctx, vpcId, name);
    if (actual === undefined) {
      record(ctx, { kind: 'subnet', name, action: Action.absent });
      continue;
    }
    record(ctx, { kind: 'subnet', name, action: Action.delete });
    if (isPlan(ctx)) continue;
    await retryWhile(
      async () => {
        try {
          await ctx.clients.ec2.send(new DeleteSubnetCommand({ SubnetId: actual.id }));
        } catch (error) {
          if (isEc2Error(error, Ec2Error.subnetNotFound)) return;
          throw error;
        }
      },
      (error) => isEc2Error(error, Ec2Error.dependencyViolation),
      {
        what: `subnet ${name} to be free of network interfaces`,
        timeoutMs: waits.dependencyTimeoutSeconds * 1000,
        intervalMs: waits.minDelaySeconds * 1000,
        maxIntervalMs: waits.maxDelaySeconds * 1000,
        onProgress: (elapsed) =>
          ctx.log.progress(
            `subnet ${name} still has network interfaces (Lambda releases them up to ~20 min after deletion): ${Math.round(elapsed / 1000)} s`,
          ),
      },
    ).catch((error: unknown) => {
      throw stepError(
        `delete subnet ${name} (${actual.id})`,
        error,
        'network interfaces still use it: run teardown again later, or list them with aws ec2 describe-network-interfaces',
      );
    });
  }
}

export async function deleteRouteTable(ctx: Ctx, vpcId: string): Promise<void> {
  const name = routeTableName(ctx);
  const actual = await findRouteTable(ctx, vpcId);
  if (actual === undefined) {
    record(ctx, { kind: 'route-table', name, action: Action.absent });
    return;
  }
  record(ctx, { kind: 'route-table', name, action: Action.delete });
  if (isPlan(ctx)) return;
  try {
    // associations of deleted subnets are gone with them; any left (a subnet
    // someone added) would block DeleteRouteTable with DependencyViolation
    for (const associationId of Object.values(actual.associations)) {
      await ctx.clients.ec2.send(new DisassociateRouteTableCommand({ AssociationId: associationId }));
    }
    await ctx.clients.ec2.send(new DeleteRouteTableCommand({ RouteTableId: actual.id }));
  } catch (error) {
    if (isEc2Error(error, Ec2Error.routeTableNotFound)) return;
    throw stepError(`delete route table ${name} (${actual.id})`, error);
  }
}
