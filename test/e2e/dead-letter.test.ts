import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { ManifestEntry } from '../../generator/generate.ts';
import { MetricName } from '../../lib/metrics.ts';
import {
  countRows,
  expectRecorded,
  handledRecords,
  planNamed,
  type Rig,
  startRig,
  uploadPlan,
  waitFor,
} from './harness.ts';

// A message that can never succeed is retried until the queue's redrive
// policy moves it to the DLQ (maxReceiveCount receives), and it never holds up
// the uploads that share its batches: the function reports it alone in
// batchItemFailures, so the runner deletes the others.

const maxReceiveCount = 5; // the smallest the configuration accepts (AWS recommends ≥ 5)
const poisonBody = '{"Records": [{"s3": "this is not an S3 event record"}]';

let rig: Rig;

before(async () => {
  rig = await startRig({
    label: 'e2e_dlq',
    env: { MAX_RECEIVE_COUNT: String(maxReceiveCount) },
    // redeliveries after 1 s instead of the queue's 61 s
    visibilityTimeoutSeconds: 1,
    // messages are queued first, so the poison shares its first batch
    paused: true,
  });
});

after(async () => {
  await rig?.stop();
});

test('a message that always fails lands in the DLQ after maxReceiveCount receives while its batch-mates are recorded', async () => {
  const { stack } = rig.pipeline;
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < 4; i++)
    entries.push(await uploadPlan(rig, planNamed(`uploads/dlq/before ${i}.txt`, i * 3, 100 + i)));
  const poison = await stack.clients.sqs.send(
    new SendMessageCommand({ QueueUrl: stack.outputs.queueUrl, MessageBody: poisonBody }),
  );
  for (let i = 0; i < 4; i++)
    entries.push(await uploadPlan(rig, planNamed(`uploads/dlq/after ${i}.txt`, i + 1, 200 + i)));
  await stack.emulator.settled();
  rig.pipeline.start();

  // more uploads while the poison is being retried, so later batches mix too
  const trickle = (async () => {
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 700));
      entries.push(await uploadPlan(rig, planNamed(`uploads/dlq/during ${i}.txt`, 10 + i, 300 + i)));
    }
  })();

  await waitFor(
    'the poison message in the DLQ',
    async () => (await rig.pipeline.queueDepth(stack.outputs.dlqUrl)).visible === 1,
    // about 6 s on a quiet machine (5 receives, 1 s apart); each receive also
    // waits for its batch's commit, which a loaded machine stretches
    90_000,
  );
  await trickle;
  await expectRecorded(rig.pipeline, entries);

  const handledPoison = () =>
    handledRecords(rig.invocations).filter((h) => h.record.messageId === poison.MessageId);
  // The last receive's invocation can still be running (its flush, on a loaded
  // machine) when the next receive moves the message to the DLQ: wait for it to
  // be recorded before counting.
  await waitFor(
    'the last invocation with the poison message to finish',
    async () => handledPoison().length >= maxReceiveCount,
    15_000,
  );
  const poisonHandled = handledPoison();
  assert.equal(poisonHandled.length, maxReceiveCount, 'handled once per receive, then dead-lettered');
  assert.ok(poisonHandled.every((h) => h.failed));
  assert.deepEqual(
    poisonHandled.map((h) => h.record.attributes.ApproximateReceiveCount),
    ['1', '2', '3', '4', '5'],
  );
  // its first batch held the eight uploads queued around it, all recorded
  const firstBatch = poisonHandled[0]?.response?.batchItemFailures ?? [];
  assert.deepEqual(firstBatch, [{ itemIdentifier: poison.MessageId }]);
  const firstInvocation = rig.invocations.find((i) =>
    i.event.Records.some((r) => r.messageId === poison.MessageId),
  );
  assert.ok((firstInvocation?.event.Records.length ?? 0) >= 9, 'the poison shared its first batch');
  assert.equal(rig.pipeline.metrics()[MetricName.malformedMessages], maxReceiveCount);

  const dead = await stack.clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: stack.outputs.dlqUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
    }),
  );
  assert.deepEqual(
    dead.Messages?.map((m) => m.Body),
    [poisonBody],
  );
  assert.equal(await countRows(rig.db), entries.length);
  // a row is committed by the invocation's flush just before the runner deletes its message
  await waitFor('nothing left in the source queue', async () => {
    const source = await rig.pipeline.queueDepth(stack.outputs.queueUrl);
    return source.visible + source.inFlight === 0;
  });
});
