import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ManifestEntry } from '../../generator/generate.ts';
import { describeBuffer } from '../../lambda-image/buffer.ts';
import { MetricName } from '../../lib/metrics.ts';
import { CuttableProxy } from '../support/proxy.ts';
import {
  countRows,
  expectRecorded,
  handledRecords,
  planNamed,
  type Rig,
  startRig,
  uploadOf,
  uploadPlan,
  waitFor,
  watchWrites,
} from './harness.ts';

// PostgreSQL unreachable for longer than the function waits: the function's
// connections go through a proxy that the test cuts and restores (the
// machine's shared server keeps running). No message is acknowledged while
// its record cannot be committed: each fails, comes back after the
// visibility timeout and fails again, its record waiting in the Redis buffer.
// None reaches the DLQ, and once PostgreSQL is back everything is written
// exactly once.
//
// The runner's shortened timings: a visibility timeout of 2 s on receive,
// so with the default MAX_RECEIVE_COUNT of 5 a message is dead-lettered only
// after (5 - 1) × 2 = 8 s of failures. In AWS the same relation holds with
// the queue's own visibility timeout: (5 - 1) × 365 s, more than 15 minutes.

// the event source mapping's minimum: few environments to warm before the cut
const concurrency = 2;
const visibilityTimeoutSeconds = 2;

let proxy: CuttableProxy;
let rig: Rig;

before(async () => {
  proxy = await new CuttableProxy('127.0.0.1', 5432).start();
  rig = await startRig({
    label: 'e2e_outage',
    databaseUrl: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
    env: { MAX_CONCURRENCY: String(concurrency) },
    visibilityTimeoutSeconds,
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

test('with PostgreSQL unreachable for longer than the function waits, messages fail and come back, none is dead-lettered, and all are recorded once it returns', async () => {
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
  const writes = await watchWrites(rig.db);

  proxy.cutConnections();
  const during = await uploadBatch('during', 30, 2_000);
  const duringKeys = new Set(during.map((e) => e.key));
  // The outage lasts until every one of these messages has failed twice: it
  // was received, could not be committed, came back after the visibility
  // timeout, and failed again.
  const failedTwice = () => {
    const keys = new Set<string>();
    for (const handled of handledRecords(rig.invocations)) {
      const key = uploadOf(handled.record)?.key;
      if (key === undefined || !duringKeys.has(key) || !handled.failed) continue;
      if (Number(handled.record.attributes.ApproximateReceiveCount) >= 2) keys.add(key);
    }
    return keys.size === duringKeys.size;
  };
  await waitFor('every outage message to fail twice', failedTwice, 25_000);
  assert.equal(await countRows(rig.db), before.length, 'nothing written while PostgreSQL is away');
  assert.equal(
    (await describeBuffer(rig.cache.redis, pipeline.runtime.buffer)).pending,
    during.length,
    'the outage uploads wait in the Redis buffer, each once',
  );
  assert.ok((pipeline.metrics()[MetricName.flushFailures] ?? 0) > 0);
  assert.deepEqual(await pipeline.queueDepth(stack.outputs.dlqUrl), { visible: 0, inFlight: 0 });

  proxy.restore();
  const afterwards = await uploadBatch('after', 10, 3_000);
  await expectRecorded(pipeline, [...before, ...during, ...afterwards], 30_000);
  assert.equal(await countRows(rig.db), before.length + during.length + afterwards.length);
  await waitFor('every message acknowledged', async () => {
    const depth = await pipeline.queueDepth(stack.outputs.queueUrl);
    return depth.visible + depth.inFlight === 0;
  });
  assert.deepEqual(
    await pipeline.queueDepth(stack.outputs.dlqUrl),
    { visible: 0, inFlight: 0 },
    'none dead-lettered',
  );
  assert.deepEqual(await writes.doubled(), [], 'no row written twice');
  assert.equal(await writes.total(), during.length + afterwards.length);
  await waitFor(
    'the buffer to drain',
    async () => (await describeBuffer(rig.cache.redis, pipeline.runtime.buffer)).pending === 0,
  );
});
