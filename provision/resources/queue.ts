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
import { arn } from '../../lib/names.ts';
import { retryWhile } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  pending,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import { policyDocument } from '../policy.ts';
import { tagDrift } from '../tags.ts';

interface QueueSpec {
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

type QueueOutputs = Pick<QueueState, 'url' | 'arn'>;

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
      Policy: JSON.stringify(
        policyDocument({
          Sid: 'AllowUploadsTopic',
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: queueArn,
          Condition: { ArnEquals: { 'aws:SourceArn': inputs.topicArn } },
        }),
      ),
    },
    tags: ctx.names.tags,
  };
}

// JSON-valued attributes compare as data: SQS may return them re-serialised
// and maxReceiveCount as a string.
function comparableValue(name: string, value: string | undefined): unknown {
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

// the named attributes (the desired ones), each comparable
function comparable(attributes: Record<string, string>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((name) => [name, comparableValue(name, attributes[name])]));
}

export function queueDrift(desired: QueueSpec, actual: QueueState): FieldChange[] {
  const names = Object.keys(desired.attributes);
  return [
    ...diffFields(comparable(desired.attributes, names), comparable(actual.attributes, names)),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

// The query-protocol code some SQS-compatible endpoints send instead of the
// JSON protocol's QueueNameExists type.
function isNameTaken(error: unknown): boolean {
  return (
    error instanceof QueueNameExists ||
    (error instanceof SQSServiceException && error.name === 'AWS.SimpleQueueService.QueueNameExists')
  );
}

// The queue and its dead-letter queue differ only in their desired attributes
// and in the kind their changes are recorded under.
const queue: Resource<QueueSpec, QueueState, QueueOutputs> = {
  kind: 'queue',
  permissions: {
    find: 'sqs:GetQueueUrl, sqs:GetQueueAttributes and sqs:ListQueueTags',
    create: 'sqs:CreateQueue and sqs:TagQueue',
    update: 'sqs:SetQueueAttributes and sqs:TagQueue',
    delete: 'sqs:DeleteQueue',
  },
  async find(ctx, name) {
    const { sqs } = ctx.clients;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (QueueUrl === undefined) return undefined;
    const [attributes, tags] = await Promise.all([
      sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] })),
      sqs.send(new ListQueueTagsCommand({ QueueUrl })),
    ]);
    const all = attributes.Attributes ?? {};
    return { url: QueueUrl, arn: all.QueueArn ?? '', attributes: all, tags: tags.Tags ?? {} };
  },
  drift: queueDrift,
  createFields: (desired) => diffFields(comparable(desired.attributes, Object.keys(desired.attributes)), {}),
  // A concurrent run's queue with other attributes (QueueNameExists) is found
  // again and its attributes set like any drift.
  async create(ctx, desired) {
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
    return undefined;
  },
  alreadyExists: isNameTaken,
  // CreateQueue with different attributes fails: drift is fixed in place.
  async update(ctx, desired, actual, drift) {
    const { sqs } = ctx.clients;
    const attributes = Object.fromEntries(
      drift
        .filter((change) => change.field !== 'tags')
        .map((change) => [change.field, desired.attributes[change.field] ?? '']),
    );
    if (Object.keys(attributes).length > 0) {
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: actual.url, Attributes: attributes }));
    }
    const tags = missingTags(desired.tags, actual.tags);
    if (Object.keys(tags).length > 0) {
      await sqs.send(new TagQueueCommand({ QueueUrl: actual.url, Tags: tags }));
    }
  },
  outputs: (_ctx, desired, actual) =>
    actual === undefined
      ? { url: pending(`${desired.name} url`), arn: desired.arn }
      : { url: actual.url, arn: actual.arn },
  remove: (ctx, _name, actual) => ctx.clients.sqs.send(new DeleteQueueCommand({ QueueUrl: actual.url })),
  isNotFound: (error) => error instanceof QueueDoesNotExist,
};

const deadLetterQueue = { ...queue, kind: 'dead-letter queue' };

export const ensureDeadLetterQueue = (ctx: Ctx): Promise<QueueOutputs> =>
  reconcile(ctx, deadLetterQueue, desiredDeadLetterQueue(ctx));

export const ensureQueue = (ctx: Ctx, inputs: { dlqArn: string; topicArn: string }): Promise<QueueOutputs> =>
  reconcile(ctx, queue, desiredQueue(ctx, inputs));

export const deleteQueue = (ctx: Ctx): Promise<void> => destroy(ctx, queue, ctx.names.queue);

export const deleteDeadLetterQueue = (ctx: Ctx): Promise<void> =>
  destroy(ctx, deadLetterQueue, ctx.names.dlq);
