import type { Clients } from './clients.ts';
import type { DeployConfig } from './config.ts';
import { stepError } from './errors.ts';
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
    if (!resource.isNotFound(error)) throw stepError(`delete ${resource.what}`, error, resource.hint);
  }
}
