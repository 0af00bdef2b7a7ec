import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueueTagsCommand,
  QueueDeletedRecently,
  QueueDoesNotExist,
  QueueNameExists,
  SetQueueAttributesCommand,
  SQSServiceException,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { AwsStepError, stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import { retryWhile } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  type FieldChange,
  isPlan,
  missingTags,
  pending,
  record,
  sameValue,
} from '../../lib/reconcile.ts';
import { tagDrift } from '../tags.ts';

const kind = { queue: 'queue', dlq: 'dead-letter queue' } as const;

export interface QueueSpec {
  name: string;
  arn: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
}

export interface QueueState {
  url: string;
  arn: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
}

export interface QueueOutputs {
  url: string;
  arn: string;
}

// SQS refuses a deleted queue's name for 60 s (CreateQueue API); wait it out once.
const deletedRecentlyWaitMs = 75_000;

export function desiredDeadLetterQueue(ctx: Pick<Ctx, 'config' | 'identity' | 'names'>): QueueSpec {
  const name = ctx.names.dlq;
  return {
    name,
    arn: arn(ctx.identity, 'sqs', name),
    attributes: {
      // A message moved to the DLQ keeps its original enqueue time, so this is
      // longer than the source queue's retention (checked in lib/config.ts).
      MessageRetentionPeriod: String(ctx.config.fn.dlqRetentionSeconds),
      SqsManagedSseEnabled: 'true',
    },
    tags: ctx.names.tags,
  };
}

export function desiredQueue(
  ctx: Pick<Ctx, 'config' | 'identity' | 'names'>,
  inputs: { dlqArn: string; topicArn: string },
): QueueSpec {
  const name = ctx.names.queue;
  const queueArn = arn(ctx.identity, 'sqs', name);
  const fn = ctx.config.fn;
  return {
    name,
    arn: queueArn,
    attributes: {
      // ≥ 6 × function timeout + batching window (Lambda's SQS event source
      // rule), enforced when the configuration is loaded.
      VisibilityTimeout: String(fn.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(fn.queueRetentionSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: inputs.dlqArn,
        maxReceiveCount: fn.maxReceiveCount,
      }),
      SqsManagedSseEnabled: 'true',
      // Only this stack's topic may send, and only on its own behalf
      // (aws:SourceArn stops another topic using SNS as a confused deputy).
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AllowUploadsTopic',
            Effect: 'Allow',
            Principal: { Service: 'sns.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Resource: queueArn,
            Condition: { ArnEquals: { 'aws:SourceArn': inputs.topicArn } },
          },
        ],
      }),
    },
    tags: ctx.names.tags,
  };
}

// JSON-valued attributes compare as data: SQS may return them re-serialised
// and maxReceiveCount as a string.
function comparable(name: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  if (name === 'Policy') return JSON.parse(value);
  if (name === 'RedrivePolicy') {
    const policy = JSON.parse(value) as { deadLetterTargetArn?: string; maxReceiveCount?: string | number };
    return {
      deadLetterTargetArn: policy.deadLetterTargetArn,
      maxReceiveCount: Number(policy.maxReceiveCount),
    };
  }
  return value;
}

export function queueDrift(desired: QueueSpec, actual: QueueState): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const [name, value] of Object.entries(desired.attributes)) {
    const from = comparable(name, actual.attributes[name]);
    const to = comparable(name, value);
    if (!sameValue(from, to)) changes.push({ field: name, from, to });
  }
  return [...changes, ...tagDrift(desired.tags, actual.tags)];
}

async function findQueueByName(ctx: Ctx, name: string): Promise<QueueState | undefined> {
  const { sqs } = ctx.clients;
  let url: string | undefined;
  try {
    url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  } catch (error) {
    if (error instanceof QueueDoesNotExist) return undefined;
    throw stepError(`read queue ${name}`, error, 'check sqs:GetQueueUrl permission');
  }
  if (url === undefined) return undefined;
  const [attributes, tags] = await Promise.all([
    sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })),
    sqs.send(new ListQueueTagsCommand({ QueueUrl: url })),
  ]);
  const all = attributes.Attributes ?? {};
  return { url, arn: all.QueueArn ?? '', attributes: all, tags: tags.Tags ?? {} };
}

export function findQueue(ctx: Ctx): Promise<QueueState | undefined> {
  return findQueueByName(ctx, ctx.names.queue);
}

export function findDeadLetterQueue(ctx: Ctx): Promise<QueueState | undefined> {
  return findQueueByName(ctx, ctx.names.dlq);
}

// The query-protocol code some SQS-compatible endpoints send instead of the
// JSON protocol's QueueNameExists type.
function isNameTaken(error: unknown): boolean {
  return (
    error instanceof QueueNameExists ||
    (error instanceof SQSServiceException && error.name === 'AWS.SimpleQueueService.QueueNameExists')
  );
}

async function createQueue(ctx: Ctx, desired: QueueSpec): Promise<void> {
  try {
    await retryWhile(
      () =>
        ctx.clients.sqs.send(
          new CreateQueueCommand({
            QueueName: desired.name,
            Attributes: desired.attributes,
            tags: desired.tags,
          }),
        ),
      (error) => error instanceof QueueDeletedRecently,
      {
        what: `SQS to release the name ${desired.name}`,
        timeoutMs: deletedRecentlyWaitMs,
        intervalMs: 5_000,
        onProgress: (ms) =>
          ctx.log.progress(`waiting for SQS to release ${desired.name} (${Math.round(ms / 1000)} s)`),
      },
    );
  } catch (error) {
    // a concurrent run created it with other attributes: the update below fixes them
    if (isNameTaken(error)) return;
    throw stepError(
      `create queue ${desired.name}`,
      error,
      'check sqs:CreateQueue and sqs:TagQueue permissions',
    );
  }
}

async function updateQueue(ctx: Ctx, desired: QueueSpec, actual: QueueState, drift: FieldChange[]) {
  const attributes = Object.fromEntries(
    drift
      .filter((change) => change.field !== 'tags')
      .map((change) => [change.field, desired.attributes[change.field] ?? '']),
  );
  try {
    // CreateQueue with different attributes fails: drift is fixed in place.
    if (Object.keys(attributes).length > 0) {
      await ctx.clients.sqs.send(
        new SetQueueAttributesCommand({ QueueUrl: actual.url, Attributes: attributes }),
      );
    }
    const tags = missingTags(desired.tags, actual.tags);
    if (Object.keys(tags).length > 0) {
      await ctx.clients.sqs.send(new TagQueueCommand({ QueueUrl: actual.url, Tags: tags }));
    }
  } catch (error) {
    throw stepError(`update queue ${desired.name}`, error, 'check sqs:SetQueueAttributes permission');
  }
}

async function reconcileQueue(ctx: Ctx, label: string, desired: QueueSpec): Promise<QueueOutputs> {
  const find = () => findQueueByName(ctx, desired.name);
  let actual = await find();
  if (actual === undefined) {
    const fields = Object.entries(desired.attributes).map(([field, to]) => ({
      field,
      from: undefined,
      to: comparable(field, to),
    }));
    record(ctx, { kind: label, name: desired.name, action: Action.create, fields });
    if (isPlan(ctx)) return { url: pending(`${desired.name} url`), arn: desired.arn };
    await createQueue(ctx, desired);
    actual = await find();
    if (actual === undefined) {
      throw new AwsStepError(`queue ${desired.name} is missing right after CreateQueue succeeded; run again`);
    }
    const drift = queueDrift(desired, actual);
    if (drift.length > 0) await updateQueue(ctx, desired, actual, drift);
    return { url: actual.url, arn: actual.arn };
  }
  const drift = queueDrift(desired, actual);
  record(ctx, {
    kind: label,
    name: desired.name,
    action: drift.length > 0 ? Action.update : Action.unchanged,
    ...(drift.length > 0 ? { fields: drift } : {}),
  });
  if (!isPlan(ctx) && drift.length > 0) await updateQueue(ctx, desired, actual, drift);
  return { url: actual.url, arn: actual.arn };
}

export function ensureDeadLetterQueue(ctx: Ctx): Promise<QueueOutputs> {
  return reconcileQueue(ctx, kind.dlq, desiredDeadLetterQueue(ctx));
}

export function ensureQueue(ctx: Ctx, inputs: { dlqArn: string; topicArn: string }): Promise<QueueOutputs> {
  return reconcileQueue(ctx, kind.queue, desiredQueue(ctx, inputs));
}

async function deleteQueueByName(ctx: Ctx, label: string, name: string): Promise<void> {
  const actual = await findQueueByName(ctx, name);
  if (actual === undefined) {
    record(ctx, { kind: label, name, action: Action.absent });
    return;
  }
  record(ctx, { kind: label, name, action: Action.delete });
  if (isPlan(ctx)) return;
  try {
    await ctx.clients.sqs.send(new DeleteQueueCommand({ QueueUrl: actual.url }));
  } catch (error) {
    if (error instanceof QueueDoesNotExist) return;
    throw stepError(`delete queue ${name}`, error, 'check sqs:DeleteQueue permission');
  }
}

export function deleteQueue(ctx: Ctx): Promise<void> {
  return deleteQueueByName(ctx, kind.queue, ctx.names.queue);
}

export function deleteDeadLetterQueue(ctx: Ctx): Promise<void> {
  return deleteQueueByName(ctx, kind.dlq, ctx.names.dlq);
}
