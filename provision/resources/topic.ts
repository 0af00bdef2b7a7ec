import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetTopicAttributesCommand,
  ListTagsForResourceCommand,
  NotFoundException,
  ResourceNotFoundException,
  SetTopicAttributesCommand,
  TagResourceCommand,
} from '@aws-sdk/client-sns';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  type FieldChange,
  isPlan,
  missingTags,
  record,
  sameValue,
} from '../../lib/reconcile.ts';
import { fromTagList, tagDrift, toTagList } from '../tags.ts';

const kind = 'topic';

// Encryption at rest is deliberately off. S3 can publish to an encrypted topic
// only when the KMS key policy lets s3.amazonaws.com use the key, and the
// AWS-managed key alias/aws/sns has a fixed policy that does not; a customer
// managed key would cost $1/month and a key policy to maintain. The topic
// carries object metadata only (bucket, key, size, ETag), never file contents,
// over TLS; the queue behind it is encrypted at rest (SqsManagedSseEnabled).
export const topicEncryption = 'none: S3 cannot publish to a topic encrypted with alias/aws/sns' as const;

export interface TopicSpec {
  name: string;
  arn: string;
  attributes: { Policy: string };
  tags: Record<string, string>;
}

export interface TopicState {
  arn: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
}

export function desiredTopic(ctx: Pick<Ctx, 'identity' | 'names'>, inputs: { bucketArn: string }): TopicSpec {
  const name = ctx.names.topic;
  const topicArn = arn(ctx.identity, 'sns', name);
  return {
    name,
    arn: topicArn,
    attributes: {
      // Only this bucket, in this account, may publish: aws:SourceArn alone is
      // not enough because bucket ARNs carry no account id (S3 docs,
      // "Granting permissions to publish event notification messages").
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AllowUploadsBucket',
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Action: 'SNS:Publish',
            Resource: topicArn,
            Condition: {
              ArnLike: { 'aws:SourceArn': inputs.bucketArn },
              StringEquals: { 'aws:SourceAccount': ctx.identity.accountId },
            },
          },
        ],
      }),
    },
    tags: ctx.names.tags,
  };
}

function comparable(name: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  return name === 'Policy' ? JSON.parse(value) : value;
}

export function topicDrift(desired: TopicSpec, actual: TopicState): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const [name, value] of Object.entries(desired.attributes)) {
    const from = comparable(name, actual.attributes[name]);
    const to = comparable(name, value);
    if (!sameValue(from, to)) changes.push({ field: name, from, to });
  }
  return [...changes, ...tagDrift(desired.tags, actual.tags)];
}

// SNS names a missing topic differently per call: GetTopicAttributes answers
// NotFoundException, ListTagsForResource ResourceNotFoundException (SNS API
// reference, each call's Errors). The attributes are read first, so a missing
// topic is found missing by the call whose error means exactly that; the tags
// call still treats its own not-found as absent (the topic was deleted between the two).
export async function findTopic(ctx: Ctx): Promise<TopicState | undefined> {
  const { sns } = ctx.clients;
  const TopicArn = arn(ctx.identity, 'sns', ctx.names.topic);
  let attributes: Record<string, string>;
  try {
    attributes = (await sns.send(new GetTopicAttributesCommand({ TopicArn }))).Attributes ?? {};
  } catch (error) {
    if (error instanceof NotFoundException) return undefined;
    throw stepError(`read topic ${ctx.names.topic}`, error, 'check sns:GetTopicAttributes permission');
  }
  try {
    const { Tags } = await sns.send(new ListTagsForResourceCommand({ ResourceArn: TopicArn }));
    return { arn: TopicArn, attributes, tags: fromTagList(Tags) };
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw stepError(
      `read the tags of topic ${ctx.names.topic}`,
      error,
      'check sns:ListTagsForResource permission',
    );
  }
}

async function updateTopic(ctx: Ctx, desired: TopicSpec, actual: TopicState, drift: FieldChange[]) {
  const { sns } = ctx.clients;
  try {
    for (const change of drift) {
      if (change.field === 'tags') {
        const tags = missingTags(desired.tags, actual.tags);
        await sns.send(
          new TagResourceCommand({
            ResourceArn: desired.arn,
            Tags: toTagList(tags),
          }),
        );
      } else {
        await sns.send(
          new SetTopicAttributesCommand({
            TopicArn: desired.arn,
            AttributeName: change.field,
            AttributeValue: desired.attributes[change.field as keyof TopicSpec['attributes']],
          }),
        );
      }
    }
  } catch (error) {
    throw stepError(`update topic ${desired.name}`, error, 'check sns:SetTopicAttributes permission');
  }
}

export async function ensureTopic(ctx: Ctx, inputs: { bucketArn: string }): Promise<{ arn: string }> {
  const desired = desiredTopic(ctx, inputs);
  const actual = await findTopic(ctx);
  if (actual === undefined) {
    record(ctx, {
      kind,
      name: desired.name,
      action: Action.create,
      fields: [{ field: 'Policy', from: undefined, to: comparable('Policy', desired.attributes.Policy) }],
    });
    if (isPlan(ctx)) return { arn: desired.arn };
    try {
      // CreateTopic is idempotent for equal attributes and tags; a concurrent
      // run's topic with other attributes is fixed by the next ensure.
      const created = await ctx.clients.sns.send(
        new CreateTopicCommand({
          Name: desired.name,
          Attributes: desired.attributes,
          Tags: toTagList(desired.tags),
        }),
      );
      return { arn: created.TopicArn ?? desired.arn };
    } catch (error) {
      throw stepError(
        `create topic ${desired.name}`,
        error,
        'check sns:CreateTopic and sns:TagResource permissions',
      );
    }
  }
  const drift = topicDrift(desired, actual);
  record(ctx, {
    kind,
    name: desired.name,
    action: drift.length > 0 ? Action.update : Action.unchanged,
    ...(drift.length > 0 ? { fields: drift } : {}),
  });
  if (!isPlan(ctx) && drift.length > 0) await updateTopic(ctx, desired, actual, drift);
  return { arn: actual.arn };
}

export async function deleteTopic(ctx: Ctx): Promise<void> {
  await deleteFound(ctx, {
    kind,
    name: ctx.names.topic,
    found: (await findTopic(ctx)) !== undefined,
    // DeleteTopic is idempotent in SNS: a topic deleted meanwhile is not an error
    remove: () =>
      ctx.clients.sns.send(new DeleteTopicCommand({ TopicArn: arn(ctx.identity, 'sns', ctx.names.topic) })),
    isNotFound: (error) => error instanceof NotFoundException,
    what: `topic ${ctx.names.topic}`,
    hint: 'check sns:DeleteTopic permission',
  });
}
