import {
  CreateVpcEndpointCommand,
  DeleteVpcEndpointsCommand,
  DescribeVpcEndpointsCommand,
  ModifyVpcEndpointCommand,
  type ModifyVpcEndpointCommandInput,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import { pollUntil } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  diffFields,
  type FieldChange,
  isPlan,
  pending,
  type Resource,
  reconcile,
  record,
  step,
} from '../../lib/reconcile.ts';
import {
  awsServiceName,
  Ec2Error,
  findTagged,
  type NetworkOptions,
  type NetworkWaits,
  pollOptions,
  resolveWaits,
  tagSpecification,
} from './ec2.ts';

// With no NAT and no internet gateway, the function reaches AWS APIs only
// through endpoints: S3 through a gateway endpoint (free, a route in the route
// table) and Secrets Manager through an interface endpoint (an ENI per subnet,
// billed per hour per AZ). Private DNS makes the normal
// secretsmanager.<region>.amazonaws.com name resolve to those ENIs, so the SDK
// needs no endpoint override.
export type EndpointRole = 's3' | 'secretsmanager';

export interface DesiredEndpoint {
  name: string;
  serviceName: string;
  type: 'Gateway' | 'Interface';
  routeTableIds?: string[];
  subnetIds?: string[];
  securityGroupIds?: string[];
  privateDnsEnabled?: boolean;
}

export type ActualEndpoint = { id: string; state: string } & Required<
  Pick<DesiredEndpoint, 'routeTableIds' | 'subnetIds' | 'securityGroupIds' | 'privateDnsEnabled'>
>;

// What the endpoints go into: the base network's outputs
export interface EndpointInputs {
  vpcId: string;
  routeTableId: string;
  subnetIds: readonly string[];
  securityGroups: { endpoint: string };
}

export function endpointName(ctx: Ctx, role: EndpointRole): string {
  return `${ctx.names.base}-${role}`;
}

export function desiredEndpoints(ctx: Ctx, inputs: EndpointInputs): Record<EndpointRole, DesiredEndpoint> {
  return {
    s3: {
      name: endpointName(ctx, 's3'),
      serviceName: awsServiceName(ctx, 's3'),
      type: 'Gateway',
      routeTableIds: [inputs.routeTableId],
    },
    secretsmanager: {
      name: endpointName(ctx, 'secretsmanager'),
      serviceName: awsServiceName(ctx, 'secretsmanager'),
      type: 'Interface',
      subnetIds: [...inputs.subnetIds],
      securityGroupIds: [inputs.securityGroups.endpoint],
      privateDnsEnabled: true,
    },
  };
}

// the list fields and the ModifyVpcEndpoint parameters that add to and remove from them
const listFields = {
  routeTableIds: ['AddRouteTableIds', 'RemoveRouteTableIds'],
  subnetIds: ['AddSubnetIds', 'RemoveSubnetIds'],
  securityGroupIds: ['AddSecurityGroupIds', 'RemoveSecurityGroupIds'],
} as const;

const comparable = (endpoint: Partial<Omit<ActualEndpoint, 'id' | 'state'>>) => ({
  routeTableIds: endpoint.routeTableIds?.toSorted(),
  subnetIds: endpoint.subnetIds?.toSorted(),
  securityGroupIds: endpoint.securityGroupIds?.toSorted(),
  privateDnsEnabled: endpoint.privateDnsEnabled,
});

export function endpointDrift(desired: DesiredEndpoint, actual: ActualEndpoint): FieldChange[] {
  return diffFields(comparable(desired), comparable(actual));
}

// Turns drift into one ModifyVpcEndpoint: add what is missing, remove what is extra.
export function modifyEndpointInput(
  id: string,
  drift: readonly FieldChange[],
): ModifyVpcEndpointCommandInput {
  const input: ModifyVpcEndpointCommandInput = { VpcEndpointId: id };
  for (const change of drift) {
    if (change.field === 'privateDnsEnabled') {
      input.PrivateDnsEnabled = change.to as boolean;
      continue;
    }
    const [addKey, removeKey] = listFields[change.field as keyof typeof listFields];
    const from = (change.from as string[] | undefined) ?? [];
    const to = change.to as string[];
    const add = to.filter((v) => !from.includes(v));
    const remove = from.filter((v) => !to.includes(v));
    if (add.length) input[addKey] = add;
    if (remove.length) input[removeKey] = remove;
  }
  return input;
}

const goneStates = new Set(['deleting', 'deleted', 'failed', 'rejected', 'expired']);

function toActual(endpoint: VpcEndpoint): ActualEndpoint {
  return {
    id: endpoint.VpcEndpointId ?? '',
    state: (endpoint.State ?? 'available').toLowerCase(),
    routeTableIds: endpoint.RouteTableIds ?? [],
    subnetIds: endpoint.SubnetIds ?? [],
    securityGroupIds: (endpoint.Groups ?? []).map((g) => g.GroupId ?? ''),
    privateDnsEnabled: endpoint.PrivateDnsEnabled ?? false,
  };
}

async function describeEndpoints(ctx: Ctx, vpcId: string, name: string): Promise<ActualEndpoint[]> {
  const { VpcEndpoints = [] } = await findTagged(ctx, name, vpcId, (Filters) =>
    ctx.clients.ec2.send(new DescribeVpcEndpointsCommand({ Filters })),
  );
  return VpcEndpoints.map(toActual);
}

// a deleted endpoint stays visible for a while in state `deleted`
export const findEndpoint = async (ctx: Ctx, vpcId: string, name: string) =>
  (await describeEndpoints(ctx, vpcId, name)).find((e) => !goneStates.has(e.state));

const kind = 'vpc-endpoint';
const permissions = {
  find: 'ec2:DescribeVpcEndpoints',
  create: 'ec2:CreateVpcEndpoint and ec2:CreateTags',
  update: 'ec2:ModifyVpcEndpoint',
  delete: 'ec2:DeleteVpcEndpoints',
};

const endpoint = (vpcId: string, waits: NetworkWaits): Resource<DesiredEndpoint, ActualEndpoint, string> => ({
  kind,
  permissions,
  find: (ctx, name) => findEndpoint(ctx, vpcId, name),
  drift: endpointDrift,
  async create(ctx, desired) {
    const { VpcEndpoint = {} } = await ctx.clients.ec2.send(
      new CreateVpcEndpointCommand({
        VpcId: vpcId,
        VpcEndpointType: desired.type,
        ServiceName: desired.serviceName,
        RouteTableIds: desired.routeTableIds,
        SubnetIds: desired.subnetIds,
        SecurityGroupIds: desired.securityGroupIds,
        PrivateDnsEnabled: desired.privateDnsEnabled,
        TagSpecifications: tagSpecification(ctx, 'vpc-endpoint', desired.name),
      }),
    );
    // awaited below until DescribeVpcEndpoints reports it available
    return { ...toActual(VpcEndpoint), state: 'pending' };
  },
  async update(ctx, _desired, actual, drift) {
    await ctx.clients.ec2.send(new ModifyVpcEndpointCommand(modifyEndpointInput(actual.id, drift)));
  },
  // a modified endpoint is pending again until the change is applied
  wait: async (ctx, desired, actual) => {
    if (actual.state !== 'available' || endpointDrift(desired, actual).length > 0) {
      const { name } = desired;
      const available = async () => {
        const endpoint = await findEndpoint(ctx, vpcId, name);
        return endpoint?.state === 'available' ? endpoint : undefined;
      };
      await pollUntil(
        available,
        pollOptions(ctx, waits, `VPC endpoint ${name}`, `waiting for VPC endpoint ${name}`),
      );
    }
    return undefined;
  },
  outputs: (_ctx, desired, actual) => actual?.id ?? pending(`endpoint ${desired.name} id`),
});

// The slow part of the network (an interface endpoint takes ~2 min), apart so
// it can run beside the data stores: the S3 gateway endpoint, then the
// Secrets Manager interface endpoint.
export async function ensureEndpoints(
  ctx: Ctx,
  inputs: EndpointInputs,
  options: NetworkOptions = {},
): Promise<Record<EndpointRole, string>> {
  const resource = endpoint(inputs.vpcId, resolveWaits(options));
  const desired = desiredEndpoints(ctx, inputs);
  const s3 = await reconcile(ctx, resource, desired.s3);
  const secretsmanager = await reconcile(ctx, resource, desired.secretsmanager);
  return { s3, secretsmanager };
}

// Both endpoints are deleted in one call, then awaited: the interface
// endpoint's ENIs hold the endpoint security group and the subnets until gone.
export async function deleteEndpoints(ctx: Ctx, vpcId: string, waits: NetworkWaits): Promise<void> {
  const found: { name: string; id: string }[] = [];
  for (const role of ['secretsmanager', 's3'] as const) {
    const name = endpointName(ctx, role);
    const actual = await step(`read ${kind} ${name}`, permissions.find, () => findEndpoint(ctx, vpcId, name));
    record(ctx, { kind, name, action: actual ? Action.delete : Action.absent });
    if (actual) found.push({ name, id: actual.id });
  }
  if (found.length === 0 || isPlan(ctx)) return;
  const ids = found.map((e) => e.id).join(', ');
  await step(`delete VPC endpoints ${ids}`, permissions.delete, async () => {
    const { Unsuccessful = [] } = await ctx.clients.ec2.send(
      new DeleteVpcEndpointsCommand({ VpcEndpointIds: found.map((e) => e.id) }),
    );
    // DeleteVpcEndpoints reports per-endpoint failures in `Unsuccessful` instead of throwing
    const gone: readonly string[] = [Ec2Error.endpointNotFound, Ec2Error.endpointGone];
    const failed = Unsuccessful.filter((u) => !gone.includes(u.Error?.Code ?? ''));
    if (failed.length) {
      throw new Error(failed.map((u) => `${u.ResourceId}: ${u.Error?.Code} ${u.Error?.Message}`).join('; '));
    }
  });
  for (const { name } of found) {
    // `deleting` still holds the ENIs; only `deleted` (or gone) frees the subnets and group
    const deleted = async () =>
      (await describeEndpoints(ctx, vpcId, name)).every((e) => e.state === 'deleted') ? true : undefined;
    await step(`wait for ${kind} ${name} to be deleted`, permissions.find, () =>
      pollUntil(
        deleted,
        pollOptions(ctx, waits, `VPC endpoint ${name} to be deleted`, `deleting VPC endpoint ${name}`),
      ),
    );
  }
}
