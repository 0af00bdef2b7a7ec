import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteMessageBatchCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { MalformedMessageError, parseMessageBody } from '../lambda-image/events.ts';
import { ExitCode, isMain, readWholeNumber, runCommand } from '../lib/cli.ts';
import { createClient } from '../lib/clients.ts';
import { type Env, loadOpsConfig } from '../lib/config.ts';
import { stepError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import type { StackOutputs } from '../lib/outputs.ts';
import { type Io, plural, processIo, readQueueDepth, resolveStack } from './common.ts';

// Moves the dead-letter queue's messages back to the queue, after showing
// what it will move. In AWS: StartMessageMoveTask, followed to its end with
// ListMessageMoveTasks. Where the service has no such action (the local
// emulator) or only some messages are to move (--max), the same thing by
// hand: receive from the DLQ, send the same body and attributes to the
// queue, then delete from the DLQ, in that order: a crash in between leaves
// the message in both queues, a duplicate the function's dedupe absorbs,
// never a lost message.

const RedriveMethod = { moveTask: 'move-task', copy: 'copy' } as const;
type RedriveMethod = (typeof RedriveMethod)[keyof typeof RedriveMethod];

interface SampleMessage {
  messageId: string;
  receiveCount: number;
  // s3://bucket/key per ObjectCreated record, 's3:TestEvent', or why the body cannot be processed
  describes: string[];
  malformed: boolean;
}

interface RedrivePreview {
  dlqUrl: string;
  queueUrl: string;
  waiting: number;
  inFlight: number;
  sample: SampleMessage[];
}

export interface RedriveResult extends RedrivePreview {
  dryRun: boolean;
  confirmed: boolean;
  method?: RedriveMethod;
  // messages now in the queue
  moved: number;
  // messages that could not be sent; they return to the DLQ after the visibility timeout
  failed: number;
  task?: { handle: string; status: string; failureReason?: string };
}

const help = `Usage: npx tsx ops/redrive.ts [options]

Moves the dead-letter queue's messages back to the queue, so the function
processes them again. Fix what made them fail first (ops/status.ts, the
function's logs). It first shows how many messages will move and a sample of
the uploads they announce, and asks before moving (on a terminal).

In AWS it starts an SQS message move task (StartMessageMoveTask) and follows
its progress; where the endpoint has no message move tasks (the local
emulator), or with --max, it moves the messages itself: receive from the
dead-letter queue, send the same body and attributes to the queue, delete
from the dead-letter queue. A crash in between duplicates a message, never
loses one, and the function's dedupe records a duplicate once.

Options:
  --dry-run      show what would move, move nothing
  --yes, -y      move without asking
  --max N        move at most N messages (receive, send, delete)
  --no-wait      start the move task and return without following it
  --json         the outcome as JSON
  -h, --help     show this help

The queues are the stage's .ada/outputs.<stage>.json (STAGE, default dev).
`;

// A sample large enough to show the pattern, small enough to read.
const sampleSize = 5;
// SQS: at most 10 messages per ReceiveMessage and per batch call.
const maxBatch = 10;
// Long enough to send and delete a batch; if the command dies, the messages
// reappear in the DLQ after this and can be moved again.
const copyVisibilitySeconds = 60;
// One second of long polling asks every SQS server; an empty answer then
// means the queue has no visible message (short polls sample a subset).
const receiveWaitSeconds = 1;
const taskPollMs = 2_000;

// An endpoint without StartMessageMoveTask answers with an unknown action
// (the local emulator: InvalidAction); nothing was started.
const unsupportedActions = new Set(['InvalidAction', 'UnknownOperationException', 'UnsupportedOperation']);

function isUnsupportedAction(error: unknown): boolean {
  return error instanceof Error && unsupportedActions.has(error.name);
}

function describeMessage(message: Message): SampleMessage {
  const base = {
    messageId: message.MessageId ?? '',
    receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 0),
  };
  try {
    const parsed = parseMessageBody(message.Body ?? '');
    if (parsed.kind === 'test') return { ...base, describes: ['s3:TestEvent'], malformed: false };
    return {
      ...base,
      describes: parsed.uploads.map((u) => `s3://${u.bucket}/${u.key} (${u.size} bytes, ${u.eventName})`),
      malformed: false,
    };
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) throw error;
    return { ...base, describes: [`cannot be processed: ${error.message}`], malformed: true };
  }
}

// Peeks at the DLQ: VisibilityTimeout 0 leaves the messages visible at once.
// Receiving raises their receive count, which matters nowhere on a DLQ
// (it has no redrive policy of its own).
async function previewRedrive(sqs: SQSClient, dlqUrl: string, queueUrl: string): Promise<RedrivePreview> {
  const depth = await readQueueDepth(sqs, dlqUrl);
  const sample: SampleMessage[] = [];
  if (depth.visible > 0) {
    const reply = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: sampleSize,
        VisibilityTimeout: 0,
        WaitTimeSeconds: receiveWaitSeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    for (const message of reply.Messages ?? []) sample.push(describeMessage(message));
  }
  return { dlqUrl, queueUrl, waiting: depth.visible, inFlight: depth.inFlight, sample };
}

// SendMessage takes the attributes as received, minus the list fields that
// SQS reserves and rejects when present.
function copyAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): Record<string, MessageAttributeValue> | undefined {
  if (attributes === undefined || Object.keys(attributes).length === 0) return undefined;
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      {
        DataType: value.DataType,
        ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
        ...(value.BinaryValue === undefined ? {} : { BinaryValue: value.BinaryValue }),
      },
    ]),
  );
}

export async function copyMessages(
  sqs: SQSClient,
  from: string,
  to: string,
  max: number,
  progress: (moved: number) => void = () => {},
): Promise<{ moved: number; failed: number }> {
  let moved = 0;
  let failed = 0;
  while (moved + failed < max) {
    const reply = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: from,
        MaxNumberOfMessages: Math.min(maxBatch, max - moved - failed),
        VisibilityTimeout: copyVisibilitySeconds,
        WaitTimeSeconds: receiveWaitSeconds,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = reply.Messages ?? [];
    if (messages.length === 0) break;
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: to,
        Entries: messages.map((message, i) => ({
          Id: String(i),
          MessageBody: message.Body ?? '',
          MessageAttributes: copyAttributes(message.MessageAttributes),
        })),
      }),
    );
    const delivered = (sent.Successful ?? []).map((entry) => messages[Number(entry.Id)] as Message);
    failed += messages.length - delivered.length;
    if (delivered.length > 0) {
      // delete only what the queue now holds; a failed send stays in the DLQ
      const deleted = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: from,
          Entries: delivered.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
        }),
      );
      // a message sent but not deleted is in both queues: the dedupe absorbs it
      moved += deleted.Successful?.length ?? 0;
      failed += deleted.Failed?.length ?? 0;
    }
    progress(moved);
  }
  return { moved, failed };
}

async function followTask(
  sqs: SQSClient,
  dlqArn: string,
  handle: string,
  progress: (task: ListMessageMoveTasksResultEntry) => void,
): Promise<ListMessageMoveTasksResultEntry> {
  for (;;) {
    const reply = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
    // Only a running task carries its handle; the list is most recent first,
    // and one task at a time may run per source queue, so once ours has
    // finished it is the first entry.
    const task = reply.Results?.find((t) => t.TaskHandle === handle) ?? reply.Results?.[0];
    if (task !== undefined) {
      progress(task);
      if (task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') return task;
    }
    await sleep(taskPollMs);
  }
}

function formatPreview(preview: RedrivePreview, toMove: number): string {
  const lines = [
    `dead-letter queue ${preview.dlqUrl}: ${preview.waiting} waiting, ${preview.inFlight} in flight`,
    `${toMove} to move to ${preview.queueUrl}${preview.sample.length > 0 ? '; a sample:' : ''}`,
  ];
  for (const message of preview.sample) {
    lines.push(`  ${message.messageId} (received ${message.receiveCount}×): ${message.describes.join('; ')}`);
  }
  if (preview.sample.some((m) => m.malformed)) {
    lines.push(
      'malformed messages fail again and return to the dead-letter queue after MAX_RECEIVE_COUNT tries',
    );
  }
  if (preview.inFlight > 0) {
    lines.push('messages in flight are being read (or were just peeked at) and move once visible again');
  }
  return `${lines.join('\n')}\n`;
}

export function parseRedriveArgs(argv: string[]) {
  const values = parseFlags(argv, {
    'dry-run': { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    max: { type: 'string' },
    'no-wait': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const max = values.max === undefined ? undefined : readWholeNumber('max', values.max, 1);
  return {
    help: values.help === true,
    dryRun: values['dry-run'] === true,
    yes: values.yes === true,
    wait: values['no-wait'] !== true,
    json: values.json === true,
    max,
  };
}

type RedriveArgs = ReturnType<typeof parseRedriveArgs>;

// The command's body, on a given client: the preview, the confirmation, then
// the move by task or by hand.
export async function redrive(
  sqs: SQSClient,
  outputs: StackOutputs,
  args: RedriveArgs,
  io: Io,
): Promise<ExitCode> {
  // progress goes to stderr when stdout carries the JSON
  const say = (text: string) => (args.json ? io.err(text) : io.out(text));
  const preview = await previewRedrive(sqs, outputs.dlqUrl, outputs.queueUrl).catch((error) => {
    throw stepError(
      `read the dead-letter queue ${outputs.dlqUrl}`,
      error,
      'check sqs:ReceiveMessage permission',
    );
  });
  // In flight counts too: a peek (this command's own, a moment ago, or
  // another's) hides messages briefly, and the move takes them once visible.
  const toMove = Math.min(preview.waiting + preview.inFlight, args.max ?? Number.POSITIVE_INFINITY);
  say(formatPreview(preview, toMove));
  const result: RedriveResult = {
    ...preview,
    dryRun: args.dryRun,
    confirmed: false,
    moved: 0,
    failed: 0,
  };
  const finish = (code: ExitCode) => {
    if (args.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
    return code;
  };
  if (toMove === 0 || args.dryRun) {
    say(toMove === 0 ? 'nothing to move\n' : 'dry run: nothing moved\n');
    return finish(ExitCode.ok);
  }
  if (!args.yes) {
    if (io.confirm === undefined) {
      throw new UsageError(
        'not on a terminal, so nobody can confirm: pass --yes to move, or --dry-run to look',
      );
    }
    if (!(await io.confirm(`move ${plural(toMove, 'message')} back to the queue?`))) {
      say('nothing moved\n');
      return finish(ExitCode.ok);
    }
  }
  result.confirmed = true;

  let handle: string | undefined;
  if (args.max === undefined) {
    try {
      // SourceArn and DestinationArn: move from our DLQ to our queue (StartMessageMoveTask API)
      const started = await sqs.send(
        new StartMessageMoveTaskCommand({ SourceArn: outputs.dlqArn, DestinationArn: outputs.queueArn }),
      );
      handle = started.TaskHandle;
    } catch (error) {
      if (!isUnsupportedAction(error)) {
        throw stepError(
          `start moving messages from ${outputs.dlqArn}`,
          error,
          'check sqs:StartMessageMoveTask, sqs:ReceiveMessage and sqs:DeleteMessage on the DLQ and sqs:SendMessage on the queue; only one move task may run per queue',
        );
      }
      say(`${outputs.endpoint ?? 'this endpoint'} has no message move tasks: moving the messages here\n`);
    }
  }
  if (handle !== undefined) {
    result.method = RedriveMethod.moveTask;
    result.task = { handle, status: 'RUNNING' };
    say(`move task started (${handle})\n`);
    if (!args.wait) return finish(ExitCode.ok);
    const task = await followTask(sqs, outputs.dlqArn, handle, (t) =>
      say(
        `  ${t.Status}: ${t.ApproximateNumberOfMessagesMoved ?? 0} of ${t.ApproximateNumberOfMessagesToMove ?? '?'} moved\n`,
      ),
    );
    result.moved = task.ApproximateNumberOfMessagesMoved ?? 0;
    result.task = {
      handle,
      status: task.Status ?? 'unknown',
      ...(task.FailureReason === undefined ? {} : { failureReason: task.FailureReason }),
    };
    if (task.Status === 'FAILED') {
      say(`the move task failed: ${task.FailureReason ?? 'no reason given'}\n`);
      return finish(ExitCode.failed);
    }
    say(`moved ${plural(result.moved, 'message')}\n`);
    return finish(task.Status === 'COMPLETED' ? ExitCode.ok : ExitCode.attention);
  }

  result.method = RedriveMethod.copy;
  const copied = await copyMessages(sqs, outputs.dlqUrl, outputs.queueUrl, toMove, (moved) =>
    say(`  ${moved} of ${toMove} moved\n`),
  ).catch((error: unknown) => {
    throw stepError(
      `move messages from ${outputs.dlqUrl} to ${outputs.queueUrl}`,
      error,
      'messages already sent may also still be in the DLQ; the function records a duplicate once',
    );
  });
  result.moved = copied.moved;
  result.failed = copied.failed;
  say(
    `moved ${plural(copied.moved, 'message')}${copied.failed > 0 ? `; ${copied.failed} could not be moved and return to the dead-letter queue in ${copyVisibilitySeconds} s` : ''}\n`,
  );
  return finish(copied.failed > 0 ? ExitCode.attention : ExitCode.ok);
}

export function runRedrive(argv: string[], io: Io = processIo, env?: Env): Promise<ExitCode> {
  return runCommand(async () => {
    const args = parseRedriveArgs(argv);
    if (args.help) {
      io.out(help);
      return ExitCode.ok;
    }
    const config = loadOpsConfig(env);
    const target = await resolveStack(config, io.root);
    const sqs = createClient(target.aws, 'sqs');
    try {
      return await redrive(sqs, target.outputs, args, io);
    } finally {
      sqs.destroy();
    }
  }, io);
}

if (isMain(import.meta.url)) {
  process.exitCode = await runRedrive(process.argv.slice(2));
}
