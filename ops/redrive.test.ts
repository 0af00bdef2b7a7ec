import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  CreateQueueCommand,
  GetQueueUrlCommand,
  type ListMessageMoveTasksResultEntry,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type StartMessageMoveTaskRequest,
} from '@aws-sdk/client-sqs';
import { ExitCode } from '../lib/cli.ts';
import { emulatorCredentials } from '../local/emulator.ts';
import { type Flow, run, startFlow } from '../test/support/ops/flow.ts';
import { capture } from '../test/support/ops/io.ts';
import { copyMessages, type RedriveResult, redrive, runRedrive } from './redrive.ts';
import { runStatus } from './status.ts';

let flow: Flow;
before(async () => {
  flow = await startFlow('redrive');
});
after(async () => {
  await flow.stop();
});

const testEvent = JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' });

test('a message that failed while Redis was down is dead-lettered, and once redriven it is recorded', async () => {
  const { dlqUrl, queueUrl, bucket } = flow.stack.outputs;
  const key = 'uploads/redrive/during outage.txt';
  flow.proxy.cutConnections();
  try {
    await flow.upload(key, 'one\ntwo\nthree\n');
    // MAX_RECEIVE_COUNT (5) failed receives, one second apart, then the queue dead-letters it
    await flow.waitFor('the dead letter', async () => (await flow.depth(dlqUrl)) === 1, 30_000);
  } finally {
    flow.proxy.restore();
  }
  assert.equal(await flow.rowFor(key), undefined);
  assert.equal((await run(runStatus, flow, ['--skip', 'buffer'])).code, ExitCode.attention);

  const dryRun = await run(runRedrive, flow, ['--dry-run']);
  assert.equal(dryRun.code, ExitCode.ok, dryRun.err);
  assert.match(dryRun.out, /1 waiting, 0 in flight/);
  assert.match(
    dryRun.out,
    new RegExp(`s3://${bucket}/uploads/redrive/during outage\\.txt \\(14 bytes, ObjectCreated:Put\\)`),
  );
  assert.match(dryRun.out, /dry run: nothing moved/);
  assert.equal(await flow.depth(dlqUrl), 1);

  const noTerminal = await run(runRedrive, flow, []);
  assert.equal(noTerminal.code, ExitCode.usage);
  assert.match(noTerminal.err, /pass --yes to move, or --dry-run to look/);

  const questions: string[] = [];
  const declining = capture(flow.root, async (question) => {
    questions.push(question);
    return false;
  });
  assert.equal(await runRedrive([], declining, flow.env), ExitCode.ok);
  assert.deepEqual(questions, ['move 1 message back to the queue?']);
  assert.match(declining.stdout(), /nothing moved/);
  assert.equal(await flow.depth(dlqUrl), 1);

  const moved = await run(runRedrive, flow, ['--yes', '--json']);
  assert.equal(moved.code, ExitCode.ok, moved.err);
  const result = JSON.parse(moved.out) as RedriveResult;
  assert.equal(result.method, 'copy');
  assert.equal(result.moved, 1);
  assert.equal(result.queueUrl, queueUrl);
  assert.match(moved.err, /has no message move tasks: moving the messages here/);
  await flow.waitFor('the row', async () => (await flow.rowFor(key)) !== undefined);
  assert.equal((await flow.rowFor(key))?.line_count, '3');
  assert.equal(await flow.depth(dlqUrl), 0);
  assert.equal((await run(runStatus, flow, [])).code, ExitCode.ok);
});

test('--max moves only that many', async () => {
  const { dlqUrl, queueUrl } = flow.stack.outputs;
  await flow.stack.clients.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: dlqUrl,
      Entries: [0, 1, 2].map((i) => ({
        Id: String(i),
        MessageBody: testEvent,
        MessageAttributes: { origin: { DataType: 'String', StringValue: `test-${i}` } },
      })),
    }),
  );
  const first = await run(runRedrive, flow, ['--yes', '--max', '2']);
  assert.equal(first.code, ExitCode.ok, first.err);
  assert.match(first.out, /2 to move/);
  assert.match(first.out, /moved 2 messages/);
  // the runner acknowledges test events; the third is still dead-lettered
  await flow.waitFor('the queue to drain', async () => (await flow.depth(queueUrl)) === 0);
  assert.equal(await flow.depth(dlqUrl), 1);
  const rest = await run(runRedrive, flow, ['--yes']);
  assert.match(rest.out, /moved 1 message\n/);
  assert.equal(await flow.depth(dlqUrl), 0);
  const nothing = await run(runRedrive, flow, ['--yes']);
  assert.equal(nothing.code, ExitCode.ok);
  assert.match(nothing.out, /nothing to move/);
  const bad = await run(runRedrive, flow, ['--max', '0']);
  assert.equal(bad.code, ExitCode.usage);
  assert.match(bad.err, /--max=0 must be ≥ 1/);
});

async function createPair(name: string, sqs: SQSClient) {
  const from = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-from` }));
  const to = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-to` }));
  return { from: from.QueueUrl ?? '', to: to.QueueUrl ?? '' };
}

test('the local move keeps body and attributes, and a crash before the delete duplicates, never loses', async () => {
  const sqs = flow.stack.clients.sqs;
  const { from, to } = await createPair('copy', sqs);
  await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: from,
      Entries: [0, 1].map((i) => ({
        Id: String(i),
        MessageBody: `{"n":${i}}`,
        MessageAttributes: { origin: { DataType: 'String', StringValue: `test-${i}` } },
      })),
    }),
  );
  assert.deepEqual(await copyMessages(sqs, from, to, 10), { moved: 2, failed: 0 });
  const received = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: to, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
  );
  assert.deepEqual(
    (received.Messages ?? []).map((m) => [m.Body, m.MessageAttributes?.origin?.StringValue]).sort(),
    [
      ['{"n":0}', 'test-0'],
      ['{"n":1}', 'test-1'],
    ],
  );
  assert.equal(await flow.depth(from), 0);

  // a client that dies between SendMessageBatch and DeleteMessageBatch
  const crashing = new SQSClient({
    endpoint: flow.stack.endpoint,
    region: 'us-east-1',
    credentials: emulatorCredentials,
  });
  crashing.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DeleteMessageBatchCommand') throw new Error('process killed');
      return next(args);
    },
    { step: 'initialize', name: 'crashBeforeDelete' },
  );
  const pair = await createPair('crash', sqs);
  await sqs.send(
    new SendMessageBatchCommand({ QueueUrl: pair.from, Entries: [{ Id: '0', MessageBody: '{"n":2}' }] }),
  );
  try {
    await assert.rejects(copyMessages(crashing, pair.from, pair.to, 10), /process killed/);
  } finally {
    crashing.destroy();
  }
  // in the queue already, and back in the DLQ once its visibility lapses: a duplicate for the dedupe
  assert.equal(await flow.depth(pair.to), 1);
  assert.equal(await flow.depth(pair.from), 1);
});

// SQS message move tasks as the service runs them (StartMessageMoveTask,
// ListMessageMoveTasks), on top of the emulator's queues: one running task
// per source queue; only a running task lists its handle.
function withMoveTasks(endpoint: string) {
  const options = { endpoint, region: 'us-east-1', credentials: emulatorCredentials };
  const sqs = new SQSClient(options);
  const mover = new SQSClient(options);
  const tasks: ListMessageMoveTasksResultEntry[] = [];
  const started: StartMessageMoveTaskRequest[] = [];
  const urlOf = async (arn: string) =>
    (await mover.send(new GetQueueUrlCommand({ QueueName: arn.slice(arn.lastIndexOf(':') + 1) }))).QueueUrl ??
    '';
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'StartMessageMoveTaskCommand') {
        const input = args.input as StartMessageMoveTaskRequest;
        started.push(input);
        if (tasks.some((t) => t.Status === 'RUNNING')) throw new Error('a move task is already running');
        const task: ListMessageMoveTasksResultEntry = {
          TaskHandle: randomUUID(),
          Status: 'RUNNING',
          SourceArn: input.SourceArn,
          DestinationArn: input.DestinationArn,
          ApproximateNumberOfMessagesMoved: 0,
          StartedTimestamp: Date.now(),
        };
        tasks.unshift(task);
        const handle = task.TaskHandle;
        void (async () => {
          const from = await urlOf(input.SourceArn ?? '');
          task.ApproximateNumberOfMessagesToMove = await flow.depth(from);
          const { moved } = await copyMessages(mover, from, await urlOf(input.DestinationArn ?? ''), 1_000);
          Object.assign(task, {
            Status: 'COMPLETED',
            ApproximateNumberOfMessagesMoved: moved,
            TaskHandle: undefined,
          });
        })();
        return { output: { TaskHandle: handle, $metadata: {} }, response: {} } as never;
      }
      if (context.commandName === 'ListMessageMoveTasksCommand') {
        return { output: { Results: tasks.map((t) => ({ ...t })), $metadata: {} }, response: {} } as never;
      }
      return next(args);
    },
    { step: 'initialize', name: 'moveTasks' },
  );
  return {
    sqs,
    started,
    destroy() {
      sqs.destroy();
      mover.destroy();
    },
  };
}

test('where SQS has message move tasks, one is started from the DLQ to the queue and followed to its end', async () => {
  const { dlqUrl, dlqArn, queueArn, queueUrl } = flow.stack.outputs;
  await flow.stack.clients.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: dlqUrl,
      Entries: [0, 1].map((i) => ({ Id: String(i), MessageBody: testEvent })),
    }),
  );
  const aws = withMoveTasks(flow.stack.endpoint);
  const io = capture(flow.root);
  try {
    const code = await redrive(
      aws.sqs,
      flow.stack.outputs,
      { help: false, dryRun: false, yes: true, wait: true, json: false, max: undefined },
      io,
    );
    assert.equal(code, ExitCode.ok, io.stderr());
  } finally {
    aws.destroy();
  }
  assert.deepEqual(aws.started, [{ SourceArn: dlqArn, DestinationArn: queueArn }]);
  assert.match(io.stdout(), /move task started \([0-9a-f-]+\)/);
  assert.match(io.stdout(), /COMPLETED: 2 of 2 moved/);
  assert.match(io.stdout(), /moved 2 messages\n$/);
  assert.equal(await flow.depth(dlqUrl), 0);
  await flow.waitFor('the queue to drain', async () => (await flow.depth(queueUrl)) === 0);
});
