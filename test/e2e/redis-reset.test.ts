import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ManifestEntry } from '../../generator/generate.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/redis-server.ts';
import {
  countRows,
  expectRecorded,
  planNamed,
  type Rig,
  startRig,
  uploadPlan,
  waitFor,
  watchWrites,
} from './harness.ts';

// Redis loses all its data three times during a run of a few hundred
// uploads: restarted empty (as a replaced or rebooted node comes back) or
// FLUSHALL, at moments drawn at random (the seed is printed with any
// failure). An upload's message is acknowledged only once its record is
// committed, so whatever Redis held at that moment (buffered records, marks,
// the lock) costs at most a redelivery: every file is recorded, none twice,
// and ops/audit.ts is not needed.
//
// The function runs on a redis-server of this test's own: the shared one
// serves other tests and is never restarted or flushed.

const files = 300;
const concurrency = 3;
// shortened timings: a message that failed (its invocation lost Redis mid-way) is back after 1 s
const visibilityTimeoutSeconds = 1;
const seed = Number(process.env.FAULT_SEED ?? Date.now() % 1_000_000);

// mulberry32: a small seeded generator, so a failing run can be replayed
function random(state: number): () => number {
  let s = state;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

let redis: PrivateRedis;
let rig: Rig;

before(async () => {
  redis = await startPrivateRedis();
  rig = await startRig({
    label: 'e2e_reset',
    env: { REDIS_URL: redis.url, MAX_CONCURRENCY: String(concurrency) },
    visibilityTimeoutSeconds,
  });
});

after(async () => {
  await rig?.stop();
  await redis?.stop();
});

test('Redis restarted empty or flushed at three random moments: every file recorded once, without an audit', async () => {
  const next = random(seed);
  const context = `seed ${seed} (FAULT_SEED=${seed} replays it)`;
  // three moments, as numbers of rows committed, at least a tenth of the run apart
  const moments = [0.15 + next() * 0.15, 0.4 + next() * 0.15, 0.65 + next() * 0.2].map((f) =>
    Math.round(f * files),
  );
  const faults = ['restart', 'flushall', next() < 0.5 ? 'restart' : 'flushall'].sort(() => next() - 0.5);
  const writes = await watchWrites(rig.db);

  const entries: ManifestEntry[] = [];
  const uploading = (async () => {
    // eight uploads at once, as the generator does
    let index = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (index < files) {
          const i = index++;
          entries.push(
            await uploadPlan(
              rig,
              planNamed(`uploads/reset/file ${i}.txt`, Math.floor(next() * 60), seed + i),
            ),
          );
        }
      }),
    );
  })();

  const done: string[] = [];
  for (const [i, at] of moments.entries()) {
    await waitFor(
      `${at} rows before fault ${i + 1} (${context})`,
      async () => (await countRows(rig.db)) >= at,
      30_000,
    );
    const fault = faults[i] as string;
    if (fault === 'restart') await redis.restart();
    else await redis.flushAll();
    done.push(`${fault} at ${await countRows(rig.db)} rows`);
  }
  await uploading;
  assert.equal(entries.length, files);
  await expectRecorded(rig.pipeline, entries, 45_000);
  assert.equal(await countRows(rig.db), files, context);
  assert.deepEqual(await writes.doubled(), [], `no row written twice (${done.join(', ')}; ${context})`);
  const { stack } = rig.pipeline;
  await waitFor('every message acknowledged', async () => {
    const depth = await rig.pipeline.queueDepth(stack.outputs.queueUrl);
    return depth.visible + depth.inFlight === 0;
  });
  assert.deepEqual(await rig.pipeline.queueDepth(stack.outputs.dlqUrl), { visible: 0, inFlight: 0 }, context);
});
