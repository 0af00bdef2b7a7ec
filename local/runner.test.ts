import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type Emulator, emulatorCredentials, startEmulator } from './emulator.ts';
import { type BatchHandler, type RunnerOptions, startRunner, succeededMessages } from './runner.ts';

let emulator: Emulator;
let sqs: SQSClient;
before(async () => {
  emulator = await startEmulator({ port: 0 });
  sqs = new SQSClient({ endpoint: emulator.endpoint, region: 'us-east-1', credentials: emulatorCredentials });
});
after(async () => {
  sqs.destroy();
  await emulator.stop();
});

const maxReceiveCount = 3;
let queues = 0;

// A queue with a DLQ, its redrive after maxReceiveCount receives, as provisioned.
async function createQueues(...bodies: string[]) {
  queues += 1;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `runner-${queues}-dlq` }));
  const dlqArn = `arn:aws:sqs:us-east-1:000000000000:runner-${queues}-dlq`;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `runner-${queues}`,
      Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }) },
    }),
  );
  const queueUrl = queue.QueueUrl ?? '';
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
      }),
    );
  }
  return {
    queueUrl,
    dlqUrl: dlq.QueueUrl ?? '',
    queueArn: `arn:aws:sqs:us-east-1:000000000000:runner-${queues}`,
  };
}

async function depth(queueUrl: string): Promise<number> {
  const result = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(result.Attributes?.ApproximateNumberOfMessages) +
    Number(result.Attributes?.ApproximateNumberOfMessagesNotVisible)
  );
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// records every invocation; `decide` returns the batch response (or throws)
function recordingHandler(decide: (records: SQSRecord[], call: number) => SQSBatchResponse | undefined) {
  const batches: SQSRecord[][] = [];
  const handler: BatchHandler = async (event: SQSEvent) => {
    batches.push(event.Records);
    return decide(event.Records, batches.length);
  };
  const seen = (body: string) => batches.flat().filter((r) => r.body === body);
  return { handler, batches, seen };
}

function options(queueUrl: string, handler: BatchHandler, extra: Partial<RunnerOptions> = {}): RunnerOptions {
  return {
    sqs,
    queueUrl,
    queueArn: `arn:aws:sqs:us-east-1:000000000000:${queueUrl.split('/').pop()}`,
    handler,
    batchSize: 10,
    batchingWindowMs: 0,
    visibilityTimeoutSeconds: 1,
    ...extra,
  };
}

test('succeeded messages are deleted, and records look like Lambda SQS records', async () => {
  const bodies = ['a', 'b', 'c', 'd', 'e'];
  const { queueUrl, queueArn } = await createQueues(...bodies);
  const recorder = recordingHandler(() => ({ batchItemFailures: [] }));
  const runner = startRunner(options(queueUrl, recorder.handler));
  await waitFor('five records', () => recorder.batches.flat().length >= 5);
  await waitFor('the queue to empty', async () => (await depth(queueUrl)) === 0);
  await runner.stop();
  assert.deepEqual(
    recorder.batches
      .flat()
      .map((r) => r.body)
      .sort(),
    bodies,
  );
  const record = recorder.batches[0]?.[0];
  assert.equal(record?.eventSource, 'aws:sqs');
  assert.equal(record?.eventSourceARN, queueArn);
  assert.equal(record?.awsRegion, 'us-east-1');
  assert.equal(record?.attributes.ApproximateReceiveCount, '1');
  assert.match(record?.attributes.SentTimestamp ?? '', /^\d+$/);
  assert.match(record?.md5OfBody ?? '', /^[0-9a-f]{32}$/);
  assert.equal(runner.stats.deleted, 5);
});

test('records are gathered up to the batch size within the batching window', async () => {
  const bodies = Array.from({ length: 12 }, (_, i) => `m${i}`);
  const { queueUrl } = await createQueues(...bodies);
  const recorder = recordingHandler(() => undefined);
  const runner = startRunner(options(queueUrl, recorder.handler, { batchSize: 5, batchingWindowMs: 300 }));
  await waitFor('twelve records', () => recorder.batches.flat().length >= 12);
  await runner.stop();
  assert.deepEqual(
    recorder.batches.map((b) => b.length),
    [5, 5, 2],
  );
});

test('a full batch is invoked at once, without waiting out the batching window', async () => {
  const bodies = Array.from({ length: 5 }, (_, i) => `full-${i}`);
  const { queueUrl } = await createQueues(...bodies);
  const recorder = recordingHandler(() => undefined);
  const started = Date.now();
  // Lambda invokes when the batch is full, the window is only an upper bound
  const runner = startRunner(options(queueUrl, recorder.handler, { batchSize: 5, batchingWindowMs: 10_000 }));
  try {
    await waitFor('a batch', () => recorder.batches.length > 0, 5_000);
  } finally {
    await runner.stop();
  }
  const elapsedMs = Date.now() - started;
  assert.equal(recorder.batches[0]?.length, 5);
  assert.ok(elapsedMs < 5_000, `the full batch waited ${elapsedMs} ms`);
});

test('a message named in batchItemFailures comes back after the visibility timeout, the others do not', async () => {
  const { queueUrl } = await createQueues('ok-1', 'flaky', 'ok-2');
  const recorder = recordingHandler((records) => {
    const flaky = records.find((r) => r.body === 'flaky' && r.attributes.ApproximateReceiveCount === '1');
    return { batchItemFailures: flaky ? [{ itemIdentifier: flaky.messageId }] : [] };
  });
  const runner = startRunner(options(queueUrl, recorder.handler));
  await waitFor('the flaky message to be retried', () => recorder.seen('flaky').length >= 2);
  await waitFor('the queue to empty', async () => (await depth(queueUrl)) === 0);
  await runner.stop();
  assert.equal(recorder.seen('ok-1').length, 1);
  assert.equal(recorder.seen('ok-2').length, 1);
  assert.deepEqual(
    recorder.seen('flaky').map((r) => r.attributes.ApproximateReceiveCount),
    ['1', '2'],
  );
});

test('a poison message lands in the DLQ after maxReceiveCount receives while its batch-mates are processed', async () => {
  const { queueUrl, dlqUrl } = await createQueues('good-1', 'poison', 'good-2', 'good-3');
  const recorder = recordingHandler((records) => ({
    batchItemFailures: records
      .filter((r) => r.body === 'poison')
      .map((r) => ({ itemIdentifier: r.messageId })),
  }));
  const runner = startRunner(options(queueUrl, recorder.handler));
  await waitFor('the poison message in the DLQ', async () => (await depth(dlqUrl)) === 1, 20_000);
  await runner.stop();
  assert.equal(recorder.seen('poison').length, maxReceiveCount);
  for (const body of ['good-1', 'good-2', 'good-3']) assert.equal(recorder.seen(body).length, 1, body);
  assert.equal(await depth(queueUrl), 0);
  const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10 }));
  assert.deepEqual(
    dead.Messages?.map((m) => m.Body),
    ['poison'],
  );
});

test('a throwing handler retries the whole batch', async () => {
  const { queueUrl } = await createQueues('x', 'y', 'z');
  const recorder = recordingHandler((_records, call) => {
    if (call === 1) throw new Error('database unreachable');
    return undefined;
  });
  const runner = startRunner(options(queueUrl, recorder.handler));
  await waitFor('the queue to empty', async () => (await depth(queueUrl)) === 0);
  await runner.stop();
  for (const body of ['x', 'y', 'z']) {
    assert.deepEqual(
      recorder.seen(body).map((r) => r.attributes.ApproximateReceiveCount),
      ['1', '2'],
      body,
    );
  }
  assert.equal(runner.stats.handlerErrors, 1);
});

test('an unknown itemIdentifier fails the whole batch, as Lambda does', async () => {
  const { queueUrl } = await createQueues('p', 'q');
  const recorder = recordingHandler((_records, call) =>
    call === 1 ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] } : undefined,
  );
  const runner = startRunner(options(queueUrl, recorder.handler));
  await waitFor('the queue to empty', async () => (await depth(queueUrl)) === 0);
  await runner.stop();
  assert.equal(recorder.seen('p').length, 2);
  assert.equal(recorder.seen('q').length, 2);
});

test('the batch response rules: empty list or none succeeds, empty identifier fails all', () => {
  const records = [{ messageId: 'm1' }, { messageId: 'm2' }] as SQSRecord[];
  assert.equal(succeededMessages(records, undefined).succeeded.length, 2);
  assert.equal(succeededMessages(records, { batchItemFailures: [] }).succeeded.length, 2);
  assert.deepEqual(
    succeededMessages(records, { batchItemFailures: [{ itemIdentifier: 'm2' }] }).succeeded.map(
      (r) => r.messageId,
    ),
    ['m1'],
  );
  assert.deepEqual(succeededMessages(records, { batchItemFailures: [{ itemIdentifier: '' }] }), {
    succeeded: [],
    wholeBatchFailed: true,
  });
});

test('the flush handler runs on its interval and not after stop', async () => {
  const { queueUrl } = await createQueues();
  let flushes = 0;
  const runner = startRunner(
    options(queueUrl, async () => undefined, {
      flushHandler: async () => {
        flushes += 1;
      },
      flushIntervalMs: 50,
    }),
  );
  await waitFor('three flushes', () => flushes >= 3);
  await runner.stop();
  const atStop = flushes;
  await sleep(200);
  assert.equal(flushes, atStop);
  assert.ok(runner.stats.flushes >= 3);
});

test('stop() resolves only after the batch in flight has finished and been deleted', async () => {
  const { queueUrl } = await createQueues('slow');
  let entered = false;
  let finished = false;
  const runner = startRunner(
    options(queueUrl, async () => {
      entered = true;
      await sleep(400);
      finished = true;
      return undefined;
    }),
  );
  await waitFor('the handler to start', () => entered);
  const started = Date.now();
  await runner.stop();
  assert.ok(finished, 'the handler finished before stop() resolved');
  assert.ok(Date.now() - started >= 300);
  assert.equal(await depth(queueUrl), 0);
});

test('stop() returns promptly while the runner waits on an empty queue', async () => {
  const { queueUrl } = await createQueues();
  const runner = startRunner(options(queueUrl, async () => undefined));
  await sleep(100);
  const started = Date.now();
  await runner.stop();
  assert.ok(Date.now() - started < 2_000, 'the long poll was aborted');
});

test('an invocation that outlives the function timeout fails its whole batch, as the Lambda timeout does', async () => {
  const { queueUrl } = await createQueues('late-1', 'late-2');
  let calls = 0;
  let slowFinished = false;
  const runner = startRunner(
    options(
      queueUrl,
      async (_event, context) => {
        calls += 1;
        if (calls === 1) {
          assert.ok(context.getRemainingTimeInMillis() <= 300);
          await sleep(800);
          slowFinished = true;
        }
        return undefined;
      },
      { functionTimeoutMs: 300 },
    ),
  );
  await waitFor('the queue to empty', async () => (await depth(queueUrl)) === 0);
  await runner.stop();
  assert.ok(slowFinished, 'stop() waited for the invocation past its timeout');
  assert.equal(runner.stats.timeouts, 1);
  assert.equal(runner.stats.deleted, 2, 'deleted once, after the second delivery');
  assert.ok(calls >= 2);
});
