import type { Clients } from './clients.ts';
import type { DeployConfig } from './config.ts';
import { AwsStepError, stepError, TimeoutError, UsageError } from './errors.ts';
import type { Identity, StackNames } from './names.ts';

// The shared shape of every resource module under provision/resources/:
//   desiredX(ctx, inputs)  pure data: what the resource should look like
//   findX(ctx)             the live resource, or undefined (the only place that catches not-found)
//   xDrift(desired, actual) pure: the fields to change, [] when in sync
//   ensureX(ctx, inputs)   find → create if absent → update what drifted → wait → outputs
//   deleteX(ctx)           NotFound means done
// In plan mode an ensure records what it would do and makes no mutating call;
// outputs of resources that do not exist yet are `pending(...)` placeholders.

export const Action = {
  create: 'create',
  update: 'update',
  unchanged: 'unchanged',
  delete: 'delete',
  absent: 'absent',
} as const;
export type Action = (typeof Action)[keyof typeof Action];

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface Change {
  kind: string;
  name: string;
  action: Action;
  fields?: FieldChange[];
}

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  // a transient line for long waits (rewritten in place on a terminal)
  progress(message: string): void;
}

export type Mode = 'apply' | 'plan';

export interface Ctx {
  config: DeployConfig;
  clients: Clients;
  log: Log;
  mode: Mode;
  identity: Identity;
  names: StackNames;
  changes: Change[];
}

export function record(ctx: Ctx, change: Change): void {
  ctx.changes.push(change);
  const detail = change.fields?.length
    ? `: ${change.fields.map((f) => `${f.field} ${show(f.from)} → ${show(f.to)}`).join(', ')}`
    : '';
  if (change.action !== Action.unchanged && change.action !== Action.absent) {
    ctx.log.info(
      `${ctx.mode === 'plan' ? 'would ' : ''}${change.action} ${change.kind} ${change.name}${detail}`,
    );
  }
}

export function isPlan(ctx: Ctx): boolean {
  return ctx.mode === 'plan';
}

export function pending(what: string): string {
  return `(${what} known after apply)`;
}

export function show(value: unknown): string {
  if (value === undefined) return '(none)';
  if (typeof value === 'string') return value.length > 80 ? `${value.slice(0, 77)}...` : value;
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

// Field-by-field comparison used by drift functions: desired fields that are
// undefined are not managed and never reported.
export function diffFields(desired: Record<string, unknown>, actual: Record<string, unknown>): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const [field, to] of Object.entries(desired)) {
    if (to === undefined) continue;
    const from = actual[field];
    if (!sameValue(from, to)) changes.push({ field, from, to });
  }
  return changes;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

// JSON with sorted object keys, so policies that differ only in key order compare equal
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

// Tags are merged, never replaced: tags someone else added (cost allocation)
// stay; only ours are enforced. Returns ours that are missing or different.
export function missingTags(
  desired: Record<string, string>,
  actual: Record<string, string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(desired).filter(([key, value]) => actual[key] !== value));
}

// The common tail of a delete: record delete/absent and, outside plan mode,
// delete what was found, treating not-found (someone else deleted it first) as done.
export async function deleteFound(
  ctx: Ctx,
  resource: {
    kind: string;
    name: string;
    found: boolean;
    remove: () => Promise<unknown>;
    isNotFound: (error: unknown) => boolean;
    what: string;
    // what to check when the delete fails, e.g. the IAM permission
    hint?: string;
  },
): Promise<void> {
  record(ctx, {
    kind: resource.kind,
    name: resource.name,
    action: resource.found ? Action.delete : Action.absent,
  });
  if (!resource.found || isPlan(ctx)) return;
  try {
    await resource.remove();
  } catch (error) {
    if (resource.isNotFound(error)) return;
    if (isWorded(error)) throw error;
    throw stepError(`delete ${resource.what}`, error, resource.hint);
  }
}

// The reconcile loop, written once. A resource module supplies what only it
// knows (how to read, create, update and delete its resource, and a pure
// drift); the loop does the rest in the same order for every resource:
//   find → absent: record create, stop in plan mode, create (a concurrent
//   creator's AlreadyExists is found and converged like any live resource)
//        → present: drift → record update/unchanged → update outside plan mode
//   → wait (outside plan mode) → outputs.
// Errors from a resource's own calls are wrapped once, here, as
// `cannot <step> <kind> <name>: ... (check <permissions>)`.
export interface Resource<Desired extends { name: string }, Live, Outputs> {
  kind: string;
  // IAM actions to name when a step fails, e.g. { create: 'sns:CreateTopic and sns:TagResource' }
  permissions?: { find?: string; create?: string; update?: string; delete?: string };
  // the live resource, or undefined when it does not exist (the only place that catches not-found)
  find(ctx: Ctx, name: string): Promise<Live | undefined>;
  // pure: the fields to change, [] when in sync
  drift(desired: Desired, actual: Live): FieldChange[];
  // the fields a plan shows for a resource it would create
  createFields?(desired: Desired): FieldChange[];
  // the live resource when the answer carries it; otherwise the loop finds it
  // again and converges what the create call could not set
  create(ctx: Ctx, desired: Desired): Promise<Live | undefined>;
  alreadyExists?(error: unknown): boolean;
  update?(ctx: Ctx, desired: Desired, actual: Live, drift: FieldChange[]): Promise<void>;
  // for a resource whose fields are set by calls of their own (instead of
  // update): the loop runs the writer of each field that drifted, in this
  // order, each as its own step, `set <field> on <kind> <name>`
  writers?: Writers<Desired, Live>;
  // until the resource is usable; returns its state then, when it changed
  wait?(ctx: Ctx, desired: Desired, actual: Live): Promise<Live | undefined>;
  // actual is undefined only in plan mode, for a resource that does not exist yet
  outputs(ctx: Ctx, desired: Desired, actual: Live | undefined): Outputs;
  remove?(ctx: Ctx, name: string, actual: Live): Promise<unknown>;
  // the resource does not exist: a find failing with it found nothing (the
  // resource, or what it belongs to, is gone), a remove failing with it is
  // done (someone else deleted it first)
  isNotFound?(error: unknown): boolean;
  // after remove, until it is gone (outside plan mode)
  waitGone?(ctx: Ctx, name: string, actual: Live): Promise<void>;
}

// field → the call that sets it and the IAM action that call needs
export type Writers<Desired, Live> = Record<
  string,
  { action: string; write(ctx: Ctx, desired: Desired, actual: Live): Promise<unknown> }
>;

// Runs the writers of the fields that drifted, in the writers' order.
async function writeDrifted<Desired, Live>(
  ctx: Ctx,
  label: string,
  writers: Writers<Desired, Live>,
  desired: Desired,
  actual: Live,
  drift: FieldChange[],
): Promise<void> {
  const drifted = new Set(drift.map((change) => change.field));
  for (const [field, { action, write }] of Object.entries(writers)) {
    if (drifted.has(field)) await step(`set ${field} on ${label}`, action, () => write(ctx, desired, actual));
  }
}

function permissionHint(actions: string | undefined): string | undefined {
  if (actions === undefined) return undefined;
  return `check ${actions} permission${/ and |, /.test(actions) ? 's' : ''}`;
}

export type ErrorClass = abstract new (...args: never[]) => Error;

// The read's answer, or undefined when it fails with the call's not-found exception.
export async function orAbsent<T>(read: () => Promise<T>, NotFound: ErrorClass): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof NotFound) return undefined;
    throw error;
  }
}

// A resource's find, where its not-found error means absent.
export async function findLive<Live>(
  ctx: Ctx,
  resource: Pick<Resource<{ name: string }, Live, unknown>, 'find' | 'isNotFound'>,
  name: string,
): Promise<Live | undefined> {
  try {
    return await resource.find(ctx, name);
  } catch (error) {
    if (resource.isNotFound?.(error)) return undefined;
    throw error;
  }
}

// The project's own errors, already worded with their step and hint.
function isWorded(error: unknown): boolean {
  return error instanceof AwsStepError || error instanceof UsageError || error instanceof TimeoutError;
}

// Runs one step of a resource, wrapping anything but the project's own
// errors (already worded) as `cannot <what>: ...`.
export async function step<T>(what: string, actions: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isWorded(error)) throw error;
    throw stepError(what, error, permissionHint(actions));
  }
}

export async function reconcile<Desired extends { name: string }, Live, Outputs>(
  ctx: Ctx,
  resource: Resource<Desired, Live, Outputs>,
  desired: Desired,
): Promise<Outputs> {
  const { kind, permissions: can = {} } = resource;
  const { name } = desired;
  const label = `${kind} ${name}`;
  const find = () => step(`read ${label}`, can.find, () => findLive(ctx, resource, name));
  const converge = async (live: Live, recorded: boolean) => {
    const drift = resource.drift(desired, live);
    if (recorded) {
      record(ctx, {
        kind,
        name,
        action: drift.length > 0 ? Action.update : Action.unchanged,
        ...(drift.length > 0 ? { fields: drift } : {}),
      });
    }
    if (drift.length === 0 || isPlan(ctx)) return;
    const { update, writers } = resource;
    if (writers !== undefined) await writeDrifted(ctx, label, writers, desired, live, drift);
    if (update !== undefined)
      await step(`update ${label}`, can.update, () => update(ctx, desired, live, drift));
  };
  let actual = await find();
  if (actual === undefined) {
    const fields = resource.createFields?.(desired);
    record(ctx, { kind, name, action: Action.create, ...(fields === undefined ? {} : { fields }) });
    if (isPlan(ctx)) return resource.outputs(ctx, desired, undefined);
    try {
      actual = await resource.create(ctx, desired);
    } catch (error) {
      if (!resource.alreadyExists?.(error)) {
        if (isWorded(error)) throw error;
        throw stepError(`create ${label}`, error, permissionHint(can.create));
      }
    }
    if (actual === undefined) {
      actual = await find();
      if (actual === undefined) throw stepError(`find ${label} after creating it`, 'not found');
      await converge(actual, false);
    }
  } else {
    await converge(actual, true);
  }
  if (resource.wait !== undefined && !isPlan(ctx)) {
    const wait = resource.wait;
    const live = actual;
    actual = (await step(`wait for ${label}`, can.find, () => wait(ctx, desired, live))) ?? actual;
  }
  return resource.outputs(ctx, desired, actual);
}

// The delete side of the loop: find, record delete/absent, remove outside plan
// mode (not-found meanwhile is done), then wait until it is gone.
export async function destroy<Live>(
  ctx: Ctx,
  resource: Pick<
    Resource<{ name: string }, Live, unknown>,
    'kind' | 'permissions' | 'find' | 'remove' | 'isNotFound' | 'waitGone'
  >,
  name: string,
): Promise<void> {
  const { kind, permissions: can = {}, remove } = resource;
  if (remove === undefined) throw new Error(`${kind} has no remove`);
  const label = `${kind} ${name}`;
  const actual = await step(`read ${label}`, can.find, () => findLive(ctx, resource, name));
  await deleteFound(ctx, {
    kind,
    name,
    found: actual !== undefined,
    remove: () => remove(ctx, name, actual as Live),
    isNotFound: resource.isNotFound ?? (() => false),
    what: label,
    ...(can.delete === undefined ? {} : { hint: permissionHint(can.delete) as string }),
  });
  if (actual !== undefined && !isPlan(ctx) && resource.waitGone !== undefined) {
    const waitGone = resource.waitGone;
    await step(`wait for ${label} to be deleted`, can.find, () => waitGone(ctx, name, actual));
  }
}
