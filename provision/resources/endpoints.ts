import {
  CreateVpcEndpointCommand,
  DeleteVpcEndpointsCommand,
  DescribeVpcEndpointsCommand,
  ModifyVpcEndpointCommand,
  type ModifyVpcEndpointCommandInput,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import { stepError } from '../../lib/errors.ts';
import { pollUntil } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  diffFields,
  type FieldChange,
  isPlan,
  pending,
  record,
} from '../../lib/reconcile.ts';
import { Ec2Error, type NetworkWaits, networkWaits, tagFilters, tagSpecification } from './vpc.ts';

// With no NAT and no internet gateway, the function reaches AWS APIs only
// through endpoints: S3 through a gateway endpoint (free, a route in the route
// table) and Secrets Manager through an interface endpoint (an ENI per subnet,
// billed per hour per AZ). Private DNS makes the normal
// secretsmanager.<region>.amazonaws.com name resolve to those ENIs, so the SDK
// needs no endpoint override.
export const EndpointRole = { s3: 's3', secretsManager: 'secretsmanager' } as const;
export type EndpointRole = (typeof EndpointRole)[keyof typeof EndpointRole];

export interface DesiredEndpoint {
  name: string;
  serviceName: string;
  type: 'Gateway' | 'Interface';
  routeTableIds?: string[];
  subnetIds?: string[];
  securityGroupIds?: string[];
  privateDnsEnabled?: boolean;
}

export interface ActualEndpoint {
  id: string;
  state: string;
  routeTableIds: string[];
  subnetIds: string[];
  securityGroupIds: string[];
  privateDnsEnabled: boolean;
}

export function endpointName(ctx: Ctx, role: EndpointRole): string {
  return `${ctx.names.base}-${role}`;
}

function serviceName(ctx: Ctx, service: string): string {
  // China regions prefix AWS service endpoint names with `cn.` (VPC endpoints guide)
  return `${ctx.identity.partition === 'aws-cn' ? 'cn.' : ''}com.amazonaws.${ctx.identity.region}.${service}`;
}

export function desiredEndpoints(
  ctx: Ctx,
  inputs: { routeTableId: string; subnetIds: readonly string[]; endpointGroupId: string },
): Record<EndpointRole, DesiredEndpoint> {
  return {
    s3: {
      name: endpointName(ctx, EndpointRole.s3),
      serviceName: serviceName(ctx, 's3'),
      type: 'Gateway',
      routeTableIds: [inputs.routeTableId],
    },
    secretsmanager: {
      name: endpointName(ctx, EndpointRole.secretsManager),
      serviceName: serviceName(ctx, 'secretsmanager'),
      type: 'Interface',
      subnetIds: [...inputs.subnetIds],
      securityGroupIds: [inputs.endpointGroupId],
      privateDnsEnabled: true,
    },
  };
}

const sorted = (values: readonly string[] | undefined) =>
  values === undefined ? undefined : [...values].sort();

export function endpointDrift(desired: DesiredEndpoint, actual: ActualEndpoint): FieldChange[] {
  return diffFields(
    {
      routeTableIds: sorted(desired.routeTableIds),
      subnetIds: sorted(desired.subnetIds),
      securityGroupIds: sorted(desired.securityGroupIds),
      privateDnsEnabled: desired.privateDnsEnabled,
    },
    {
      routeTableIds: sorted(actual.routeTableIds),
      subnetIds: sorted(actual.subnetIds),
      securityGroupIds: sorted(actual.securityGroupIds),
      privateDnsEnabled: actual.privateDnsEnabled,
    },
  );
}

// Turns drift into one ModifyVpcEndpoint: add what is missing, remove what is extra.
export function modifyEndpointInput(
  id: string,
  drift: readonly FieldChange[],
): ModifyVpcEndpointCommandInput {
  const input: ModifyVpcEndpointCommandInput = { VpcEndpointId: id };
  const delta = (change: FieldChange) => {
    const from = (change.from as string[] | undefined) ?? [];
    const to = change.to as string[];
    return { add: to.filter((v) => !from.includes(v)), remove: from.filter((v) => !to.includes(v)) };
  };
  for (const change of drift) {
    if (change.field === 'privateDnsEnabled') input.PrivateDnsEnabled = change.to as boolean;
    const { add, remove } = change.field === 'privateDnsEnabled' ? { add: [], remove: [] } : delta(change);
    if (change.field === 'routeTableIds') {
      if (add.length) input.AddRouteTableIds = add;
      if (remove.length) input.RemoveRouteTableIds = remove;
    } else if (change.field === 'subnetIds') {
      if (add.length) input.AddSubnetIds = add;
      if (remove.length) input.RemoveSubnetIds = remove;
    } else if (change.field === 'securityGroupIds') {
      if (add.length) input.AddSecurityGroupIds = add;
      if (remove.length) input.RemoveSecurityGroupIds = remove;
    }
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

async function describeEndpoints(ctx: Ctx, vpcId: string, role: EndpointRole): Promise<ActualEndpoint[]> {
  const { VpcEndpoints = [] } = await ctx.clients.ec2.send(
    new DescribeVpcEndpointsCommand({
      Filters: [...tagFilters(ctx, endpointName(ctx, role)), { Name: 'vpc-id', Values: [vpcId] }],
    }),
  );
  return VpcEndpoints.map(toActual);
}

export async function findEndpoint(
  ctx: Ctx,
  vpcId: string,
  role: EndpointRole,
): Promise<ActualEndpoint | undefined> {
  // a deleted endpoint stays visible for a while in state `deleted`
  return (await describeEndpoints(ctx, vpcId, role)).find((e) => !goneStates.has(e.state));
}

export async function ensureEndpoints(
  ctx: Ctx,
  vpcId: string,
  inputs: { routeTableId: string; subnetIds: readonly string[]; endpointGroupId: string },
  waits: NetworkWaits = networkWaits,
): Promise<Record<EndpointRole, string>> {
  const desired = desiredEndpoints(ctx, inputs);
  const ids = {} as Record<EndpointRole, string>;
  for (const role of [EndpointRole.s3, EndpointRole.secretsManager]) {
    ids[role] = await ensureEndpoint(ctx, vpcId, role, desired[role], waits);
  }
  return ids;
}

async function ensureEndpoint(
  ctx: Ctx,
  vpcId: string,
  role: EndpointRole,
  desired: DesiredEndpoint,
  waits: NetworkWaits,
): Promise<string> {
  const kind = 'vpc-endpoint';
  const actual = vpcId.startsWith('(') ? undefined : await findEndpoint(ctx, vpcId, role);
  if (actual === undefined) {
    record(ctx, { kind, name: desired.name, action: Action.create });
    if (isPlan(ctx)) return pending(`endpoint ${desired.name} id`);
    let id: string;
    try {
      const { VpcEndpoint } = await ctx.clients.ec2.send(
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
      id = VpcEndpoint?.VpcEndpointId ?? '';
    } catch (error) {
      throw stepError(
        `create VPC endpoint ${desired.name} (${desired.serviceName})`,
        error,
        'check ec2:CreateVpcEndpoint permission; private DNS needs the VPC DNS attributes on',
      );
    }
    await waitForEndpoint(ctx, vpcId, role, desired.name, waits);
    return id;
  }
  const drift = endpointDrift(desired, actual);
  record(ctx, {
    kind,
    name: desired.name,
    action: drift.length ? Action.update : Action.unchanged,
    fields: drift,
  });
  if (isPlan(ctx)) return actual.id;
  if (drift.length) {
    try {
      await ctx.clients.ec2.send(new ModifyVpcEndpointCommand(modifyEndpointInput(actual.id, drift)));
    } catch (error) {
      throw stepError(`update VPC endpoint ${desired.name}`, error, 'check ec2:ModifyVpcEndpoint permission');
    }
  }
  if (drift.length || actual.state !== 'available')
    await waitForEndpoint(ctx, vpcId, role, desired.name, waits);
  return actual.id;
}

// EC2 has no SDK waiter for VPC endpoints: poll until `available`.
async function waitForEndpoint(
  ctx: Ctx,
  vpcId: string,
  role: EndpointRole,
  name: string,
  waits: NetworkWaits,
): Promise<void> {
  await pollUntil(
    async () => {
      const endpoint = await findEndpoint(ctx, vpcId, role);
      return endpoint?.state === 'available' ? endpoint : undefined;
    },
    {
      what: `VPC endpoint ${name}`,
      timeoutMs: waits.maxWaitSeconds * 1000,
      intervalMs: waits.minDelaySeconds * 1000,
      maxIntervalMs: waits.maxDelaySeconds * 1000,
      onProgress: (elapsed) =>
        ctx.log.progress(`waiting for VPC endpoint ${name}: ${Math.round(elapsed / 1000)} s`),
    },
  );
}

// Both endpoints are deleted in one call, then awaited: the interface
// endpoint's ENIs hold the endpoint security group and the subnets until gone.
export async function deleteEndpoints(
  ctx: Ctx,
  vpcId: string,
  waits: NetworkWaits = networkWaits,
): Promise<void> {
  const found: { role: EndpointRole; id: string }[] = [];
  for (const role of [EndpointRole.secretsManager, EndpointRole.s3]) {
    const actual = await findEndpoint(ctx, vpcId, role);
    record(ctx, {
      kind: 'vpc-endpoint',
      name: endpointName(ctx, role),
      action: actual ? Action.delete : Action.absent,
    });
    if (actual) found.push({ role, id: actual.id });
  }
  if (found.length === 0 || isPlan(ctx)) return;
  let unsuccessful: {
    ResourceId?: string | undefined;
    Error?: { Code?: string | undefined; Message?: string | undefined } | undefined;
  }[];
  try {
    ({ Unsuccessful: unsuccessful = [] } = await ctx.clients.ec2.send(
      new DeleteVpcEndpointsCommand({ VpcEndpointIds: found.map((e) => e.id) }),
    ));
  } catch (error) {
    throw stepError(`delete VPC endpoints ${found.map((e) => e.id).join(', ')}`, error);
  }
  // DeleteVpcEndpoints reports per-endpoint failures in `Unsuccessful` instead of throwing
  const gone: readonly string[] = [Ec2Error.endpointNotFound, Ec2Error.endpointGone];
  const failed = unsuccessful.filter((u) => !gone.includes(u.Error?.Code ?? ''));
  if (failed.length) {
    throw stepError(
      'delete VPC endpoints',
      new Error(failed.map((u) => `${u.ResourceId}: ${u.Error?.Code} ${u.Error?.Message}`).join('; ')),
    );
  }
  for (const { role } of found) {
    const name = endpointName(ctx, role);
    // `deleting` still holds the ENIs; only `deleted` (or gone) frees the subnets and group
    const deleted = async () =>
      (await describeEndpoints(ctx, vpcId, role)).every((e) => e.state === 'deleted') ? true : undefined;
    await pollUntil(deleted, {
      what: `VPC endpoint ${name} to be deleted`,
      timeoutMs: waits.maxWaitSeconds * 1000,
      intervalMs: waits.minDelaySeconds * 1000,
      maxIntervalMs: waits.maxDelaySeconds * 1000,
      onProgress: (elapsed) =>
        ctx.log.progress(`deleting VPC endpoint ${name}: ${Math.round(elapsed / 1000)} s`),
    });
  }
}
