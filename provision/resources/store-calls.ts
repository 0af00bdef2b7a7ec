import { stepError } from '../../lib/errors.ts';
import { withProgress } from '../../lib/poll.ts';
import type { Ctx } from '../../lib/reconcile.ts';

// What the RDS and ElastiCache resources share: reads whose not-found
// exception means absent, and SDK waiters on changes that take minutes.

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

interface WaiterTiming {
  maxWaitTime: number;
  minDelay: number;
  maxDelay: number;
}

interface Waited {
  // `RDS instance ada-linecount-dev-db`
  what: string;
  // whose console shows its events
  console: string;
}

// Runs an SDK waiter (waitUntilDBInstanceAvailable, waitUntilReplicationGroupDeleted, ...)
// with progress lines, failing as `cannot wait for <what> to ...: ... (see its events in the <console> console)`.
export async function waitUntil(
  ctx: Ctx,
  waits: Waits,
  target: Waited & { until: 'available' | 'deleted' },
  waiter: (timing: WaiterTiming) => Promise<unknown>,
): Promise<void> {
  const deleted = `${target.what} to be deleted`;
  const timing = {
    maxWaitTime: waits.maxWaitSeconds,
    minDelay: waits.minDelaySeconds,
    maxDelay: waits.maxDelaySeconds,
  };
  try {
    await withProgress(
      target.until === 'available' ? target.what : deleted,
      ctx.log.progress,
      waiter(timing),
      waits.progressEveryMs,
    );
  } catch (error) {
    throw stepError(
      `wait for ${target.until === 'available' ? `${target.what} to become available` : deleted}`,
      error,
      `see its events in the ${target.console} console`,
    );
  }
}

// Waits until available, then reads the resource again: its endpoint appears only then.
export async function waitAvailable<Live>(
  ctx: Ctx,
  waits: Waits,
  target: Waited,
  waiter: (timing: WaiterTiming) => Promise<unknown>,
  find: () => Promise<Live | undefined>,
): Promise<Live> {
  await waitUntil(ctx, waits, { ...target, until: 'available' }, waiter);
  const ready = await find();
  if (ready === undefined) {
    throw stepError(
      `find ${target.what}`,
      new Error('it disappeared while being waited on'),
      'something deleted it meanwhile; run up again',
    );
  }
  return ready;
}

// A resource that is creating or modifying refuses changes and deletion
// (InvalidDBInstanceState, InvalidReplicationGroupStateFault) until it is available again.
export function isSettled(status: string): boolean {
  return status === 'available' || status === 'deleting';
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
