import type { Ctx } from '../../lib/reconcile.ts';
import { type NetworkOptions, resolveWaits } from './ec2.ts';
import { deleteEndpoints, ensureEndpoints } from './endpoint.ts';
import { deleteRouteTable, ensureRouteTable } from './route-table.ts';
import { deleteSecurityGroups, ensureSecurityGroups, type SecurityGroupIds } from './security-group.ts';
import { deleteSubnets, ensureSubnets } from './subnet.ts';
import { deleteVpc, ensureVpc, readVpc } from './vpc.ts';

export { type NetworkOptions, type NetworkWaits, networkWaits } from './ec2.ts';
export { ensureEndpoints } from './endpoint.ts';

export interface NetworkOutputs {
  vpcId: string;
  subnetIds: string[];
  securityGroups: SecurityGroupIds;
}

export interface NetworkBase extends NetworkOutputs {
  routeTableId: string;
}

// A private network and nothing public: a VPC, two private subnets in two
// zones sharing one route table, four security groups, and the S3 gateway and
// Secrets Manager interface endpoints. No internet gateway, no NAT gateway.

// Everything but the endpoints: what the cache, the database and the
// functions are placed in.
export async function ensureNetworkBase(ctx: Ctx, options: NetworkOptions = {}): Promise<NetworkBase> {
  const waits = resolveWaits(options);
  const { vpcId } = await ensureVpc(ctx, waits);
  const { subnetIds } = await ensureSubnets(ctx, vpcId, waits);
  const { routeTableId } = await ensureRouteTable(ctx, vpcId, subnetIds);
  const securityGroups = await ensureSecurityGroups(ctx, vpcId);
  return { vpcId, subnetIds, routeTableId, securityGroups };
}

export async function ensureNetwork(ctx: Ctx, options: NetworkOptions = {}): Promise<NetworkOutputs> {
  const base = await ensureNetworkBase(ctx, options);
  await ensureEndpoints(ctx, base, options);
  const { vpcId, subnetIds, securityGroups } = base;
  return { vpcId, subnetIds, securityGroups };
}

// Reverse order, waiting where the next deletion depends on it: endpoints
// (their ENIs hold the endpoint group and the subnets) → security groups
// (retrying while Lambda's ENIs linger) → subnets → route table → VPC.
export async function deleteNetwork(ctx: Ctx, options: NetworkOptions = {}): Promise<void> {
  const waits = resolveWaits(options);
  const vpc = await readVpc(ctx);
  if (vpc !== undefined) {
    await deleteEndpoints(ctx, vpc.id, waits);
    await deleteSecurityGroups(ctx, vpc.id, waits);
    await deleteSubnets(ctx, vpc.id, waits);
    await deleteRouteTable(ctx, vpc.id);
  }
  await deleteVpc(ctx, vpc?.id);
}
