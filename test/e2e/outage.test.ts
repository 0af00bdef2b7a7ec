import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ManifestEntry } from '../../generator/generate.ts';
import { describeBuffer } from '../../lambda-image/buffer.ts';
import { MetricName } from '../../lib/metrics.ts';
import { CuttableProxy } from '../support/proxy.ts';
import { countRows, expectRecorded, planNamed, type Rig, startRig, uploadPlan, waitFor } from './harness.ts';

// PostgreSQL unreachable for part of the run: the function's connections go
// through a proxy that the test cuts and restores (the machine's shared
// server keeps running). Uploads keep being counted and buffered in Redis;
// the flushes fail and leave the buffer intact; once PostgreSQL is back,
// everything is written exactly once.

// the event source mapping's minimum: few environments to warm before the cut
const concurrency = 2;

let proxy: CuttableProxy;
let rig: Rig;

before(async () => {
  proxy = await new CuttableProxy('127.0.0.1', 5432).start();
  rig = await startRig({
    label: 'e2e_outage',
    databaseUrl: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
    env: { MAX_CONCURRENCY: String(concurrency) },
  });
});

after(async () => {
  proxy?.restore();
  await rig?.stop();
  await proxy?.stop();
});

async function uploadBatch(label: string, count: number, seed: number): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push(
      await uploadPlan(rig, planNamed(`uploads/outage/${label} ${i}.txt`, (i * 7) % 50, seed + i)),
    );
  }
  return entries;
}

test('with PostgreSQL unreachable for a while, nothing is lost and nothing is doubled', async () => {
  const { pipeline } = rig;
  const { stack } = pipeline;
  // Every environment has run (and so migrated) before the cut: the migration
  // holds a checked-out client across statements, and pg raises a connection
  // lost at that moment as an uncaught 'error' event on the client.
  const before: ManifestEntry[] = [];
  for (let round = 0; round < 5 && pipeline.environments < concurrency; round++) {
    const entries = await uploadBatch(`before ${round}`, 25, 1_000 + round * 10);
    await expectRecorded(pipeline, entries);
    before.push(...entries);
  }
  assert.equal(pipeline.environments, concurrency, 'all environments warm before the cut');

  proxy.cutConnections();
  const during = await uploadBatch('during', 30, 2_000);
  await stack.emulator.settled();
  // every message is still handled and deleted: the records are safe in Redis
  await waitFor('the queue to drain during the outage', async () => {
    const depth = await pipeline.queueDepth(stack.outputs.queueUrl);
    return depth.visible + depth.inFlight === 0;
  });
  const failuresBefore = pipeline.stats?.flushErrors ?? 0;
  await waitFor(
    'a scheduled flush to fail',
    () => (pipeline.stats?.flushErrors ?? 0) > failuresBefore,
    10_000,
  );
  assert.equal(await countRows(rig.db), before.length, 'nothing written while PostgreSQL is away');
  const buffered = await describeBuffer(rig.cache.redis, pipeline.runtime.buffer);
  assert.equal(buffered.pending, during.length, 'the outage uploads wait in the Redis buffer');
  assert.ok((pipeline.metrics()[MetricName.flushFailures] ?? 0) > 0);

  proxy.restore();
  const afterwards = await uploadBatch('after', 10, 3_000);
  await expectRecorded(pipeline, [...before, ...during, ...afterwards], 30_000);
  assert.equal(await countRows(rig.db), before.length + during.length + afterwards.length);
  await waitFor(
    'the buffer to drain',
    async () => (await describeBuffer(rig.cache.redis, pipeline.runtime.buffer)).pending === 0,
  );
  assert.deepEqual(await pipeline.queueDepth(stack.outputs.dlqUrl), { visible: 0, inFlight: 0 });
});
