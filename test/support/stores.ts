import assert from 'node:assert/strict';
import { after, beforeEach } from 'node:test';
import type { Env } from '../../lib/config.ts';
import type { Ctx, Mode } from '../../lib/reconcile.ts';
import { type InstalledFake, resetCalls } from '../fakes/calls.ts';
import { type CollectingLog, testContext, testIdentity } from '../provision/context.ts';
import { denyActions } from './iam/deny.ts';

// The setup the RDS and ElastiCache resource tests share: a context over the
// fakes for stage `test`, waits short enough for the fakes' transitions, and
// a check that a denied call stops a run with the step and the permission.

export const fastWaits = {
  minDelaySeconds: 0.01,
  maxDelaySeconds: 0.02,
  maxWaitSeconds: 5,
  progressEveryMs: 5,
};

export type StoreCtx = Ctx & { log: CollectingLog };

export function storeContext(mode: Mode = 'apply', env: Env = {}): StoreCtx {
  return testContext(mode, { STAGE: 'test', ...env }) as StoreCtx;
}

export const summary = (ctx: Ctx) => ctx.changes.map((c) => `${c.action} ${c.kind} ${c.name}`);

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
