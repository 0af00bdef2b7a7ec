import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { ManifestEntry } from '../../generator/generate.ts';
import { eventIdentity } from '../../lambda-image/events.ts';
import { qualifiedQuarantineTable } from '../../lambda-image/schema.ts';
import { MetricName } from '../../lib/metrics.ts';
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
} from './harness.ts';

// One upload among 50 makes a row PostgreSQL cannot store: its key holds
// U+0000, which S3 accepts and a text column refuses. The 50 others are
// committed; the refused row is quarantined with its record and the reason;
// its message fails on every delivery and the queue moves it to the DLQ after
// maxReceiveCount receives, where its reason is found by its identity.

const maxReceiveCount = 5;
const poisonKey = 'uploads/poison/bad\u0000name.txt';

let rig: Rig;

before(async () => {
  rig = await startRig({
    label: 'e2e_poison',
    env: { MAX_RECEIVE_COUNT: String(maxReceiveCount) },
    // shortened timings: redeliveries after 1 s instead of the queue's 61 s
    visibilityTimeoutSeconds: 1,
    // everything queued first, so the poison shares its batches
    paused: true,
  });
});

after(async () => {
  await rig?.stop();
});

test('a row PostgreSQL refuses among 50: the 50 are committed, it is quarantined, and its message reaches the DLQ with the reason', async () => {
  const { pipeline } = rig;
  const { stack } = pipeline;
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < 50; i++) {
    if (i === 25) await uploadPlan(rig, planNamed(poisonKey, 3, 999));
    entries.push(await uploadPlan(rig, planNamed(`uploads/poison/good ${i}.txt`, i % 9, 100 + i)));
  }
  await stack.emulator.settled();
  pipeline.start();

  await expectRecorded(pipeline, entries);
  await waitFor(
    'the poison message in the DLQ',
    async () => (await pipeline.queueDepth(stack.outputs.dlqUrl)).visible === 1,
    30_000,
  );
  assert.equal(await countRows(rig.db), 50);

  const poisonHandled = () =>
    handledRecords(rig.invocations).filter((h) => uploadOf(h.record)?.key === poisonKey);
  await waitFor('each delivery of the poison answered', () => poisonHandled().length >= maxReceiveCount);
  assert.ok(poisonHandled().every((h) => h.failed));
  const firstBatch = poisonHandled()[0]?.response?.batchItemFailures ?? [];
  assert.equal(firstBatch.length, 1, 'the poison failed alone in its batch');

  const dead = await stack.clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: stack.outputs.dlqUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
    }),
  );
  assert.equal(dead.Messages?.length, 1);
  const deadUpload = uploadOf({ body: dead.Messages?.[0]?.Body ?? '' } as SQSRecord);
  assert.equal(deadUpload?.key, poisonKey);

  // the reason of the dead letter, by the identity of the event it carries
  const { rows } = await rig.db.pool.query(
    `SELECT file_name, record, error, message_id, attempts FROM ${qualifiedQuarantineTable(rig.db.schema)} WHERE identity = $1`,
    [eventIdentity(deadUpload as NonNullable<typeof deadUpload>)],
  );
  assert.equal(rows.length, 1, 'quarantined, under the identity of the dead letter');
  const held = rows[0];
  assert.equal(held.file_name, null);
  assert.equal(JSON.parse(held.record).key, poisonKey);
  assert.equal(JSON.parse(held.record).lines, 3, 'with its count');
  assert.match(held.error, /key contains U\+0000 \(NUL\), which a PostgreSQL text column cannot store/);
  assert.equal(held.message_id, poisonHandled()[0]?.record.messageId);
  // A delivery that finds it quarantined tries PostgreSQL once more. With the
  // shortened visibility timeout (as short as the batching window) two
  // deliveries can overlap, in one gathered batch or in two invocations, and
  // share one try: at most one try per invocation that got it.
  const invocations = rig.invocations.filter((i) =>
    i.event.Records.some((r) => uploadOf(r)?.key === poisonKey),
  ).length;
  assert.ok(
    held.attempts >= 1 && held.attempts <= invocations,
    `${held.attempts} tries, ${invocations} invocations`,
  );
  assert.equal(pipeline.metrics()[MetricName.rowsQuarantined], held.attempts, 'each try counted once');
});
