import {
  AssociateRouteTableCommand,
  CreateRouteTableCommand,
  DeleteRouteTableCommand,
  DescribeRouteTablesCommand,
  DisassociateRouteTableCommand,
  ReplaceRouteTableAssociationCommand,
} from '@aws-sdk/client-ec2';
import { type Ctx, destroy, type FieldChange, pending, reconcile } from '../../lib/reconcile.ts';
import { Ec2Error, findTagged, isEc2Error, settleCreated, tagSpecification } from './ec2.ts';

export interface DesiredRouteTable {
  name: string;
  subnetIds: readonly string[];
}

export interface ActualRouteTable {
  id: string;
  // subnet id → association id, explicit associations only
  associations: Record<string, string>;
}

export function routeTableName(ctx: Ctx): string {
  return `${ctx.names.base}-private`;
}

export async function findRouteTable(ctx: Ctx, vpcId: string): Promise<ActualRouteTable | undefined> {
  const { RouteTables = [] } = await findTagged(ctx, routeTableName(ctx), vpcId, (Filters) =>
    ctx.clients.ec2.send(new DescribeRouteTablesCommand({ Filters })),
  );
  const table = RouteTables[0];
  if (table?.RouteTableId === undefined) return undefined;
  const associations = (table.Associations ?? [])
    .filter((a) => a.SubnetId !== undefined && a.RouteTableAssociationId !== undefined)
    .map((a) => [a.SubnetId, a.RouteTableAssociationId]);
  return { id: table.RouteTableId, associations: Object.fromEntries(associations) };
}

// The subnets the route table should be associated with but is not.
export function routeTableDrift(subnetIds: readonly string[], actual: ActualRouteTable): FieldChange[] {
  const associated = Object.keys(actual.associations).sort();
  if (subnetIds.every((id) => id in actual.associations)) return [];
  return [{ field: 'subnets', from: associated, to: [...new Set([...associated, ...subnetIds])].sort() }];
}

async function associateSubnets(ctx: Ctx, table: ActualRouteTable, subnetIds: readonly string[]) {
  const { ec2 } = ctx.clients;
  for (const subnetId of subnetIds) {
    if (subnetId in table.associations) continue;
    try {
      await ec2.send(new AssociateRouteTableCommand({ RouteTableId: table.id, SubnetId: subnetId }));
    } catch (error) {
      if (!isEc2Error(error, Ec2Error.alreadyAssociated)) throw error;
      // associated out of band with another table: move it to ours
      const { RouteTables = [] } = await ec2.send(
        new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnetId] }] }),
      );
      const association = RouteTables.flatMap((t) => t.Associations ?? []).find(
        (a) => a.SubnetId === subnetId,
      );
      if (association?.RouteTableAssociationId === undefined) throw error;
      await ec2.send(
        new ReplaceRouteTableAssociationCommand({
          AssociationId: association.RouteTableAssociationId,
          RouteTableId: table.id,
        }),
      );
    }
  }
}

// One route table for both private subnets: it holds only the VPC's local
// route and the S3 gateway endpoint's prefix-list route. No internet gateway,
// no NAT: nothing in these subnets can reach the internet.
const routeTable = (vpcId: string) =>
  settleCreated<DesiredRouteTable, ActualRouteTable, string>({
    kind: 'route-table',
    permissions: {
      find: 'ec2:DescribeRouteTables',
      create: 'ec2:CreateRouteTable and ec2:CreateTags',
      update: 'ec2:AssociateRouteTable, ec2:DescribeRouteTables and ec2:ReplaceRouteTableAssociation',
      delete: 'ec2:DisassociateRouteTable and ec2:DeleteRouteTable',
    },
    find: (ctx) => findRouteTable(ctx, vpcId),
    drift: (desired, actual) => routeTableDrift(desired.subnetIds, actual),
    async create(ctx, desired) {
      const { RouteTable } = await ctx.clients.ec2.send(
        new CreateRouteTableCommand({
          VpcId: vpcId,
          TagSpecifications: tagSpecification(ctx, 'route-table', desired.name),
        }),
      );
      return { id: RouteTable?.RouteTableId ?? '', associations: {} };
    },
    update: (ctx, desired, actual) => associateSubnets(ctx, actual, desired.subnetIds),
    outputs: (_ctx, _desired, actual) => actual?.id ?? pending('route table id'),
    // associations of deleted subnets are gone with them; any left (a subnet
    // someone added) would block DeleteRouteTable with DependencyViolation
    async remove(ctx, _name, actual) {
      for (const associationId of Object.values(actual.associations)) {
        await ctx.clients.ec2.send(new DisassociateRouteTableCommand({ AssociationId: associationId }));
      }
      await ctx.clients.ec2.send(new DeleteRouteTableCommand({ RouteTableId: actual.id }));
    },
    isNotFound: (error) => isEc2Error(error, Ec2Error.routeTableNotFound),
  });

export const ensureRouteTable = async (ctx: Ctx, vpcId: string, subnetIds: readonly string[]) => ({
  routeTableId: await reconcile(ctx, routeTable(vpcId), { name: routeTableName(ctx), subnetIds }),
});

export const deleteRouteTable = (ctx: Ctx, vpcId: string) =>
  destroy(ctx, routeTable(vpcId), routeTableName(ctx));
