import assert from 'node:assert/strict';
import { after, beforeEach, test } from 'node:test';
import type { Env } from '../../lib/config.ts';
import { Action, type Change, type Ctx, type FieldChange, type Mode } from '../../lib/reconcile.ts';
import { callNames, type InstalledFake, mutatingCalls, resetCalls } from '../fakes/calls.ts';
import { type CollectingLog, testContext, testIdentity } from '../provision/context.ts';
import { denyActions } from './iam/deny.ts';

// The setup the RDS and ElastiCache resource tests share: a context over the
// fakes for stage `test`, waits short enough for the fakes' transitions, a
// check that a denied call stops a run with the step and the permission, and
// the runs every store is tested with (plan then apply, a rerun, a second delete).

export const fastWaits = {
  minDelaySeconds: 0.01,
  maxDelaySeconds: 0.02,
  maxWaitSeconds: 5,
  progressEveryMs: 5,
};

export type StoreCtx = Ctx & { log: CollectingLog };

export function storeContext(env: Env = {}, mode: Mode = 'apply'): StoreCtx {
  return testContext(mode, { STAGE: 'test', ...env }) as StoreCtx;
}

const summary = (ctx: Ctx) => ctx.changes.map((c) => `${c.action} ${c.kind} ${c.name}`);

// For a describe block: the fakes stay installed until its end, and each test starts with an empty call log.
export function useFakes(...fakes: InstalledFake[]): void {
  after(() => {
    for (const fake of fakes) fake.restore();
  });
  beforeEach(() => resetCalls());
}

// Without `action`, `run` fails with `message`.
export async function rejectsWithout(
  action: string,
  run: () => Promise<unknown>,
  message: RegExp,
): Promise<void> {
  const allow = denyActions({ partition: 'aws', region: 'us-east-1', accountId: testIdentity.accountId }, [
    action,
  ]);
  try {
    await assert.rejects(run(), (error: Error) => {
      assert.match(error.message, message);
      return true;
    });
  } finally {
    allow();
  }
}

// One test per case: the fields `drift` reports for `actual` changed by `change`.
export function testDrift<Desired, Actual>(
  label: string,
  drift: (desired: Desired, actual: Actual) => FieldChange[],
  desired: Desired,
  actual: Actual,
  cases: { name: string; change: Partial<Actual>; fields: string[] }[],
): void {
  for (const { name, change, fields } of cases) {
    test(`${label}: ${name}`, () => {
      assert.deepEqual(
        drift(desired, { ...actual, ...change }).map((f) => f.field),
        fields,
      );
    });
  }
}

// `run` in plan mode, which makes no mutating call, then for real.
export async function planThenApply<T>(run: (ctx: StoreCtx) => Promise<T>, env: Env = {}) {
  const plan = storeContext(env, 'plan');
  const planned = await run(plan);
  assert.deepEqual(mutatingCalls(), []);
  const apply = storeContext(env);
  return { plan, planned, apply, out: await run(apply) };
}

// The first run creates everything, as its plan listed.
export async function planThenCreate<T>(run: (ctx: StoreCtx) => Promise<T>) {
  const ran = await planThenApply(run);
  assert.deepEqual(summary(ran.apply), summary(ran.plan));
  assert.ok(ran.apply.changes.every((c) => c.action === Action.create));
  return ran;
}

// A changed setting: the run changes what its plan reported, one update made by one call.
export async function planThenUpdate(
  run: (ctx: StoreCtx) => Promise<unknown>,
  env: Env,
  expected: { change: Change; call: string; input: unknown },
): Promise<void> {
  const { plan, apply } = await planThenApply(run, env);
  assert.deepEqual(apply.changes, plan.changes);
  assert.deepEqual(
    apply.changes.filter((c) => c.action !== Action.unchanged),
    [expected.change],
  );
  assert.deepEqual(callNames(mutatingCalls()), [expected.call]);
  assert.deepEqual(mutatingCalls()[0]?.input, expected.input);
}

// A run over what is in place (`unchanged`) or a delete of what is gone
// (`absent`): no mutating call, and every resource reported so.
export async function rerun(
  action: typeof Action.unchanged | typeof Action.absent,
  run: (ctx: StoreCtx) => Promise<unknown>,
): Promise<void> {
  resetCalls();
  const ctx = storeContext();
  await run(ctx);
  assert.deepEqual(mutatingCalls(), []);
  assert.ok(ctx.changes.every((c) => c.action === action));
}
