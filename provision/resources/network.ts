import type { Ctx } from '../../lib/reconcile.ts';
import { deleteEndpoints, ensureEndpoints } from './endpoints.ts';
import { deleteSecurityGroups, ensureSecurityGroups, type SecurityGroupIds } from './security-groups.ts';
import { deleteRouteTable, deleteSubnets, ensureRouteTable, ensureSubnets } from './subnets.ts';
import { deleteVpc, ensureVpc, findVpc, type NetworkWaits, networkWaits } from './vpc.ts';

export { type NetworkWaits, networkWaits } from './vpc.ts';

export interface NetworkOutputs {
  vpcId: string;
  subnetIds: string[];
  securityGroups: SecurityGroupIds;
}

export interface NetworkOptions {
  // tests shorten the waits; production uses networkWaits
  waits?: Partial<NetworkWaits>;
}

// A private network and nothing public: a VPC, two private subnets in two
// zones sharing one route table, the S3 gateway and Secrets Manager interface
// endpoints, and four security groups. No internet gateway, no NAT gateway.
export async function ensureNetwork(ctx: Ctx, options: NetworkOptions = {}): Promise<NetworkOutputs> {
  const waits = { ...networkWaits, ...options.waits };
  const { vpcId } = await ensureVpc(ctx, waits);
  const { subnetIds } = await ensureSubnets(ctx, vpcId, waits);
  const { routeTableId } = await ensureRouteTable(ctx, vpcId, subnetIds);
  const securityGroups = await ensureSecurityGroups(ctx, vpcId);
  await ensureEndpoints(
    ctx,
    vpcId,
    { routeTableId, subnetIds, endpointGroupId: securityGroups.endpoint },
    waits,
  );
  return { vpcId, subnetIds, securityGroups };
}

// Reverse order, waiting where the next deletion depends on it: endpoints
// (their ENIs hold the endpoint group and the subnets) → security groups
// (retrying while Lambda's ENIs linger) → subnets → route table → VPC.
export async function deleteNetwork(ctx: Ctx, options: NetworkOptions = {}): Promise<void> {
  const waits = { ...networkWaits, ...options.waits };
  const vpc = await findVpc(ctx);
  if (vpc !== undefined) {
    await deleteEndpoints(ctx, vpc.id, waits);
    await deleteSecurityGroups(ctx, vpc.id, waits);
    await deleteSubnets(ctx, vpc.id, waits);
    await deleteRouteTable(ctx, vpc.id);
  }
  await deleteVpc(ctx, vpc?.id);
}
