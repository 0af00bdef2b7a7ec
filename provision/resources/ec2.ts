import type { EC2Client, Filter } from '@aws-sdk/client-ec2';
import { TimeoutError } from '../../lib/errors.ts';
import { type PollOptions, retryWhile } from '../../lib/poll.ts';
import { type Ctx, type Resource, step } from '../../lib/reconcile.ts';
import { toTagList } from '../tags.ts';

// What the network's resources share: EC2's error codes, tag-based lookup,
// tagging on create, and the waits.

// EC2 has no modeled exception classes: its errors carry the documented error
// code as `name` (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
// so matching `error.name` is the SDK's own way to tell them apart.
export const Ec2Error = {
  vpcNotFound: 'InvalidVpcID.NotFound',
  subnetNotFound: 'InvalidSubnetID.NotFound',
  subnetConflict: 'InvalidSubnet.Conflict',
  routeTableNotFound: 'InvalidRouteTableID.NotFound',
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

// Tags go on in the create call itself: the deployer may create network
// resources only with this stack's app/stage tags in the request
// (aws:RequestTag conditions in docs/deployer-policy.json), which also needs ec2:CreateTags.
export function tagSpecification(ctx: Ctx, resourceType: string, name: string) {
  return [{ ResourceType: resourceType as never, Tags: toTagList({ Name: name, ...ctx.names.tags }) }];
}

// Network resources have no names of their own: they are found by their Name
// tag plus this stack's app/stage tags, so two stages in one account never
// pick up each other's resources; inside a VPC, also by the VPC's id.
// `describe` sends the filters in the resource's own Describe call; in plan
// mode nothing is found inside a VPC that does not exist yet.
export async function findTagged<Output extends object>(
  ctx: Ctx,
  name: string,
  vpcId: string | undefined,
  describe: (Filters: Filter[]) => Promise<Output>,
): Promise<Partial<Output>> {
  if (vpcId !== undefined && isPendingId(vpcId)) return {};
  return describe([
    { Name: 'tag:Name', Values: [name] },
    { Name: 'tag:app', Values: [ctx.config.stack.app] },
    { Name: 'tag:stage', Values: [ctx.config.stack.stage] },
    ...(vpcId === undefined ? [] : [{ Name: 'vpc-id', Values: [vpcId] }]),
  ]);
}

// China regions prefix AWS service endpoint and prefix list names with `cn.` (VPC endpoints guide)
export function awsServiceName(ctx: Ctx, service: string): string {
  return `${ctx.identity.partition === 'aws-cn' ? 'cn.' : ''}com.amazonaws.${ctx.identity.region}.${service}`;
}

// In plan mode the id of a resource that does not exist yet is a `pending(...)`
// placeholder: nothing can be inside it yet, so there is nothing to look up.
export function isPendingId(id: string): boolean {
  return id.startsWith('(');
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

export interface NetworkOptions {
  // tests shorten the waits; production uses networkWaits
  waits?: Partial<NetworkWaits>;
}

export function resolveWaits(options: NetworkOptions = {}): NetworkWaits {
  return { ...networkWaits, ...options.waits };
}

// Options for lib/poll.ts (EC2 has no SDK waiter for VPC endpoints or for
// network interfaces to let go): `what` for the timeout, `doing` for progress.
export function pollOptions(
  ctx: Ctx,
  waits: NetworkWaits,
  what: string,
  doing: string,
  timeoutSeconds = waits.maxWaitSeconds,
): PollOptions {
  return {
    what,
    timeoutMs: timeoutSeconds * 1000,
    intervalMs: waits.minDelaySeconds * 1000,
    maxIntervalMs: waits.maxDelaySeconds * 1000,
    onProgress: (elapsed) => ctx.log.progress(`${doing}: ${Math.round(elapsed / 1000)} s`),
  };
}

// The loop's wait for what EC2 creates `pending` (a VPC, a subnet): `waiter`
// runs the SDK's waiter (waitUntilVpcAvailable, waitUntilSubnetAvailable) for the id.
export function untilAvailable(
  waits: NetworkWaits,
  waiter: (
    options: { client: EC2Client; maxWaitTime: number; minDelay: number; maxDelay: number },
    id: string,
  ) => Promise<unknown>,
) {
  return async (ctx: Ctx, _desired: unknown, actual: { id: string; state: string }): Promise<undefined> => {
    if (actual.state !== 'available') {
      const { maxWaitSeconds: maxWaitTime, minDelaySeconds: minDelay, maxDelaySeconds: maxDelay } = waits;
      await waiter({ client: ctx.clients.ec2, maxWaitTime, minDelay, maxDelay }, actual.id);
    }
    return undefined;
  };
}

// EC2 creates some resources with settings the create call cannot choose (a
// VPC with DNS hostnames off, a security group with an allow-all egress rule,
// a route table with no subnets): their create is followed by the update's own
// calls and wording, which bring what it made in line with the desired state.
// The loop gets the state as created: it reads only its id and state from it.
export function settleCreated<Desired extends { name: string }, Live, Outputs>(
  resource: Resource<Desired, Live, Outputs>,
): Resource<Desired, Live, Outputs> {
  const { kind, permissions, drift, create, update } = resource;
  return {
    ...resource,
    async create(ctx, desired) {
      const created = await create(ctx, desired);
      if (created === undefined || update === undefined) return created;
      const changes = drift(desired, created);
      if (changes.length > 0) {
        await step(`update ${kind} ${desired.name}`, permissions?.update, () =>
          update(ctx, desired, created, changes),
        );
      }
      return created;
    },
  };
}

// The remove of what network interfaces may still hold: DependencyViolation is
// retried, with progress, until they are gone (Lambda releases a VPC
// function's up to ~20 min after the function is deleted; RDS and ElastiCache
// release theirs when deleted). `what` names the resource in messages,
// `idFilter` the describe-network-interfaces filter that lists them.
export function removeWhenReleased(
  waits: NetworkWaits,
  what: string,
  idFilter: string,
  remove: (ctx: Ctx, id: string) => Promise<unknown>,
) {
  return async (ctx: Ctx, name: string, { id }: { id: string }): Promise<void> => {
    const label = `${what} ${name}`;
    const inUse = (error: unknown) => isEc2Error(error, Ec2Error.dependencyViolation);
    try {
      await retryWhile(
        () => remove(ctx, id),
        inUse,
        pollOptions(
          ctx,
          waits,
          `${label} to be released by its network interfaces`,
          `${label} is still in use by network interfaces (Lambda releases them up to ~20 min after deletion)`,
          waits.dependencyTimeoutSeconds,
        ),
      );
    } catch (error) {
      if (!inUse(error)) throw error;
      throw new TimeoutError(
        `network interfaces still use ${label} after ${waits.dependencyTimeoutSeconds} s: run teardown again later, or list them with aws ec2 describe-network-interfaces --filters Name=${idFilter},Values=${id}`,
        { cause: error },
      );
    }
  };
}
