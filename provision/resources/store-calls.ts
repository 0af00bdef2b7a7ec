import { stepError } from '../../lib/errors.ts';
import { withProgress } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  type ErrorClass,
  isPlan,
  orAbsent,
  type Resource,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import type { ParameterGroupSpec } from './parameter-group.ts';

// What the RDS and ElastiCache resources share: SDK waiters on changes that take minutes, the
// sequence of a store with its subnet and parameter groups, and how each
// service names and calls its groups.

export interface Waits {
  maxWaitSeconds: number;
  minDelaySeconds: number;
  maxDelaySeconds: number;
  // how often to say what is being waited on
  progressEveryMs: number;
}

// where the database and the cache are placed
export interface StoreInputs {
  subnetIds: readonly string[];
  securityGroupId: string;
}

export interface StoreOptions {
  waits?: Partial<Waits>;
}

// where clients connect to the database or the cache
export interface Endpoint {
  host: string;
  port: number;
}

// what a live RDS instance and a live replication group both say
export interface StoreState extends Partial<Endpoint> {
  status: string;
  parameterGroup: string | undefined;
  securityGroupIds: string[];
}

// An RDS instance or an ElastiCache replication group, with the subnet group
// it is placed in and the parameter group that configures it.
export interface Store<Desired extends { name: string }, Live extends StoreState, Outputs> {
  // `RDS instance`
  what: string;
  // whose console shows its events
  console: string;
  waits: Waits;
  // the SDK waiter: waitUntilDBInstanceAvailable, waitUntilReplicationGroupDeleted, ...
  waitUntil(
    ctx: Ctx,
    until: 'available' | 'deleted',
    timing: { maxWaitTime: number; minDelay: number; maxDelay: number },
    name: string,
  ): Promise<unknown>;
  // its state, or undefined when absent (what the resource's find checks besides is its own)
  find(ctx: Ctx, name: string): Promise<Live | undefined>;
  // its names among the stack's: `cache`, `cacheSubnetGroup`, `cacheParameterGroup`
  names: 'cache' | 'db';
  subnetGroups: Groups<[name: string, subnetIds: readonly string[]]>;
  parameterGroups: Groups<[spec: ParameterGroupSpec]>;
  // its parameter group, but for the name and the tags
  parameterGroup(ctx: Ctx): Omit<ParameterGroupSpec, 'name' | 'tags'>;
  // available: until the store is available, and its state then
  resource(available: (ctx: Ctx, name: string) => Promise<Live>): Resource<Desired, Live, Outputs>;
}

// The waits of a resource that takes minutes to change: until available (and
// read again, for its endpoint appears only then) and until deleted, with
// progress lines, failing as `cannot wait for <what> to ...: ... (see its
// events in the <console> console)`.
function storeWaits<Live extends StoreState>(target: Store<never, Live, unknown>, options: StoreOptions) {
  const waits = { ...target.waits, ...options.waits };
  const timing = {
    maxWaitTime: waits.maxWaitSeconds,
    minDelay: waits.minDelaySeconds,
    maxDelay: waits.maxDelaySeconds,
  };
  const waitUntil = async (ctx: Ctx, name: string, until: 'available' | 'deleted') => {
    const what = `${target.what} ${name}`;
    const deleted = `${what} to be deleted`;
    try {
      await withProgress(
        until === 'available' ? what : deleted,
        ctx.log.progress,
        target.waitUntil(ctx, until, timing, name),
        waits.progressEveryMs,
      );
    } catch (error) {
      throw stepError(
        `wait for ${until === 'available' ? `${what} to become available` : deleted}`,
        error,
        `see its events in the ${target.console} console`,
      );
    }
  };
  const available = async (ctx: Ctx, name: string): Promise<Live> => {
    await waitUntil(ctx, name, 'available');
    const ready = await target.find(ctx, name);
    if (ready === undefined) {
      throw stepError(
        `find ${target.what} ${name}`,
        new Error('it disappeared while being waited on'),
        'something deleted it meanwhile; run up again',
      );
    }
    return ready;
  };
  return { available, waitGone: (ctx: Ctx, name: string) => waitUntil(ctx, name, 'deleted') };
}

// The subnet group, the parameter group, then the store itself, waited on until available.
export async function ensureStore<Desired extends { name: string }, Live extends StoreState, Outputs>(
  ctx: Ctx,
  store: Store<Desired, Live, Outputs>,
  inputs: StoreInputs,
  options: StoreOptions,
  desired: Desired,
): Promise<Outputs> {
  const { available } = storeWaits(store, options);
  await store.subnetGroups.ensure(ctx, ctx.names[`${store.names}SubnetGroup`], inputs.subnetIds);
  await store.parameterGroups.ensure(ctx, {
    name: ctx.names[`${store.names}ParameterGroup`],
    tags: ctx.names.tags,
    ...store.parameterGroup(ctx),
  });
  return reconcile(
    ctx,
    {
      ...store.resource(available),
      wait: async (ctx, desired, actual) =>
        actual.status === 'available' ? undefined : available(ctx, desired.name),
    },
    desired,
  );
}

// The store, then its parameter group and its subnet group, which cannot be
// deleted while it uses them. `find` (by default the store's) may refuse the
// delete. A store that is creating or modifying refuses deletion
// (InvalidDBInstanceState, InvalidReplicationGroupStateFault) until it is
// available again, so what is found is waited out first; one that an
// earlier teardown is deleting is only waited on.
export async function deleteStore<Live extends StoreState>(
  ctx: Ctx,
  store: Store<never, Live, unknown>,
  options: StoreOptions,
  deletion: Partial<Pick<Store<never, Live, unknown>, 'find'>> &
    Required<Pick<Resource<never, Live, unknown>, 'remove'>>,
): Promise<void> {
  const { available, waitGone } = storeWaits(store, options);
  const find = deletion.find ?? store.find;
  await destroy(
    ctx,
    {
      ...store.resource(available),
      async find(ctx, name) {
        const found = await find(ctx, name);
        const settled =
          found === undefined || isPlan(ctx) || ['available', 'deleting'].includes(found.status);
        return settled ? found : available(ctx, name);
      },
      async remove(ctx, name, actual) {
        if (actual.status !== 'deleting') await deletion.remove(ctx, name, actual);
      },
      waitGone,
    },
    ctx.names[store.names],
  );
  await store.parameterGroups.delete(ctx, ctx.names[`${store.names}ParameterGroup`]);
  await store.subnetGroups.delete(ctx, ctx.names[`${store.names}SubnetGroup`]);
}

// How each service names its subnet and parameter groups: the kind
// `cache-subnet-group`, `DB subnet group` in messages, IAM actions such as
// `rds:CreateDBSubnetGroup`.
export function groupNaming(service: 'elasticache' | 'rds', noun: 'Subnet' | 'Parameter') {
  const prefix = service === 'rds' ? 'DB' : 'Cache';
  const action = (verb: string) => `${service}:${verb}${prefix}${noun}Group`;
  return {
    kind: `${prefix.toLowerCase()}-${noun.toLowerCase()}-group`,
    // as messages name it: `cannot read DB subnet group ...`
    what: `${service === 'rds' ? 'DB' : 'cache'} ${noun.toLowerCase()} group`,
    permissions: {
      find: `${action('Describe')}s`,
      create: action('Create'),
      update: action('Modify'),
      delete: action('Delete'),
    },
  };
}

export type GroupNaming = ReturnType<typeof groupNaming>;

// One service's calls on its subnet or parameter groups, and how it names them.
export interface GroupCalls<Found> extends GroupNaming {
  // the group; the not-found exception when it does not exist
  describe(ctx: Ctx, name: string): Promise<Found | undefined>;
  remove(ctx: Ctx, name: string): Promise<unknown>;
  NotFound: ErrorClass;
  AlreadyExists: ErrorClass;
}

// A group resource as the stores use it: ensure from arguments, delete by name.
export interface Groups<Args extends unknown[]> {
  kind: string;
  ensure(ctx: Ctx, ...args: Args): Promise<void>;
  delete(ctx: Ctx, name: string): Promise<void>;
}

// A subnet or parameter group: its service's calls give all but what the
// group itself knows: how to read the rest of a group that exists (`state`,
// within the read step), its drift, create and update, and its spec from the
// arguments of ensure.
export function groups<Spec extends { name: string }, State, Found, Args extends unknown[]>(
  api: GroupCalls<Found>,
  own: Pick<Resource<Spec, State, void>, 'drift' | 'create' | 'update'> & {
    state(ctx: Ctx, name: string, found: Found): Promise<State> | State;
  },
  spec: (ctx: Ctx, ...args: Args) => Spec,
): Groups<Args> {
  const resource: Resource<Spec, State, void> = {
    ...own,
    kind: api.kind,
    permissions: api.permissions,
    find: (ctx, name) =>
      step(`read ${api.what} ${name}`, api.permissions.find, async () => {
        const found = await orAbsent(() => api.describe(ctx, name), api.NotFound);
        return found === undefined ? undefined : own.state(ctx, name, found);
      }),
    alreadyExists: (error) => error instanceof api.AlreadyExists,
    outputs: () => undefined,
    remove: api.remove,
    isNotFound: (error) => error instanceof api.NotFound,
  };
  return {
    kind: api.kind,
    ensure: (ctx, ...args) => reconcile(ctx, resource, spec(ctx, ...args)),
    delete: (ctx, name) => destroy(ctx, resource, name),
  };
}
