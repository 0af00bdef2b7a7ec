import { stepError } from '../../lib/errors.ts';
import { withProgress } from '../../lib/poll.ts';
import { type Ctx, isPlan } from '../../lib/reconcile.ts';

// What the RDS and ElastiCache resources share: reads whose not-found
// exception means absent, SDK waiters on changes that take minutes, and how
// each service names its groups.

type ErrorClass = abstract new (...args: never[]) => Error;

// The read's answer, or undefined when it fails with the call's not-found exception.
export async function orAbsent<T>(read: () => Promise<T>, NotFound: ErrorClass): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof NotFound) return undefined;
    throw error;
  }
}

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

interface WaiterTiming {
  maxWaitTime: number;
  minDelay: number;
  maxDelay: number;
}

// How to wait on one kind of RDS or ElastiCache resource.
interface Waited<Live, Client, Input> {
  // `RDS instance`
  what: string;
  // whose console shows its events
  console: string;
  client(ctx: Ctx): Client;
  input(name: string): Input;
  // SDK waiters: waitUntilDBInstanceAvailable, waitUntilReplicationGroupDeleted, ...
  available(params: { client: Client } & WaiterTiming, input: Input): Promise<unknown>;
  deleted(params: { client: Client } & WaiterTiming, input: Input): Promise<unknown>;
  find(ctx: Ctx, name: string): Promise<Live | undefined>;
}

// The waits of a resource that takes minutes to change: until available (and
// read again, for its endpoint appears only then) and until deleted, with
// progress lines, failing as `cannot wait for <what> to ...: ... (see its
// events in the <console> console)`.
export function storeWaits<Live extends { status: string }, Client, Input>(
  waits: Waits,
  target: Waited<Live, Client, Input>,
) {
  const timing = {
    maxWaitTime: waits.maxWaitSeconds,
    minDelay: waits.minDelaySeconds,
    maxDelay: waits.maxDelaySeconds,
  };
  const waitUntil = async (ctx: Ctx, name: string, until: 'available' | 'deleted') => {
    const what = `${target.what} ${name}`;
    const deleted = `${what} to be deleted`;
    const waiter = until === 'available' ? target.available : target.deleted;
    try {
      await withProgress(
        until === 'available' ? what : deleted,
        ctx.log.progress,
        waiter({ client: target.client(ctx), ...timing }, target.input(name)),
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
  return {
    available,
    // Resource.wait and Resource.waitGone
    wait: async (ctx: Ctx, desired: { name: string }, actual: Live) =>
      actual.status === 'available' ? undefined : available(ctx, desired.name),
    waitGone: (ctx: Ctx, name: string) => waitUntil(ctx, name, 'deleted'),
    // A resource that is creating or modifying refuses changes and deletion
    // (InvalidDBInstanceState, InvalidReplicationGroupStateFault) until it is
    // available again: what a delete finds is waited out first.
    settled: async (ctx: Ctx, name: string, found: Live | undefined) =>
      found === undefined || isPlan(ctx) || found.status === 'available' || found.status === 'deleting'
        ? found
        : available(ctx, name),
  };
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
