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
import { arn } from '../../lib/names.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import { fromTagList, tagDrift, toTagList } from '../tags.ts';

interface TopicSpec {
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

// the policy compares as data, whatever its key order
function comparable(attributes: Record<string, string>): Record<string, unknown> {
  return { Policy: attributes.Policy === undefined ? undefined : JSON.parse(attributes.Policy) };
}

export function topicDrift(desired: TopicSpec, actual: TopicState): FieldChange[] {
  return [
    ...diffFields(comparable(desired.attributes), comparable(actual.attributes)),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

// A topic's attributes and tags, or undefined when it does not exist. SNS
// names a missing topic differently per call: GetTopicAttributes answers
// NotFoundException, ListTagsForResource ResourceNotFoundException (SNS API
// reference, each call's Errors). The attributes are read first, so a missing
// topic is found missing by the call whose error means exactly that; the tags
// call's not-found means the topic was deleted between the two.
export async function readTopic(ctx: Ctx, TopicArn: string): Promise<TopicState | undefined> {
  const { sns } = ctx.clients;
  try {
    const { Attributes = {} } = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
    const { Tags } = await sns.send(new ListTagsForResourceCommand({ ResourceArn: TopicArn }));
    return { arn: TopicArn, attributes: Attributes, tags: fromTagList(Tags) };
  } catch (error) {
    if (isTopicNotFound(error)) return undefined;
    throw error;
  }
}

export function isTopicNotFound(error: unknown): boolean {
  return error instanceof NotFoundException || error instanceof ResourceNotFoundException;
}

// Encryption at rest is deliberately off. S3 can publish to an encrypted topic
// only when the KMS key policy lets s3.amazonaws.com use the key, and the
// AWS-managed key alias/aws/sns has a fixed policy that does not; a customer
// managed key would cost $1/month and a key policy to maintain. The topic
// carries object metadata only (bucket, key, size, ETag), never file contents,
// over TLS; the queue behind it is encrypted at rest (SqsManagedSseEnabled).
const topic: Resource<TopicSpec, TopicState, { arn: string }> = {
  kind: 'topic',
  permissions: {
    find: 'sns:GetTopicAttributes and sns:ListTagsForResource',
    create: 'sns:CreateTopic and sns:TagResource',
    update: 'sns:SetTopicAttributes and sns:TagResource',
    delete: 'sns:DeleteTopic',
  },
  find: (ctx, name) => readTopic(ctx, arn(ctx.identity, 'sns', name)),
  drift: topicDrift,
  createFields: (desired) => diffFields(comparable(desired.attributes), {}),
  // CreateTopic is idempotent for equal attributes and tags; a concurrent
  // run's topic with other attributes is fixed by the next ensure.
  async create(ctx, desired) {
    const created = await ctx.clients.sns.send(
      new CreateTopicCommand({
        Name: desired.name,
        Attributes: desired.attributes,
        Tags: toTagList(desired.tags),
      }),
    );
    return { arn: created.TopicArn ?? desired.arn, attributes: desired.attributes, tags: desired.tags };
  },
  async update(ctx, desired, actual, drift) {
    for (const change of drift) {
      if (change.field === 'tags') {
        const Tags = toTagList(missingTags(desired.tags, actual.tags));
        await ctx.clients.sns.send(new TagResourceCommand({ ResourceArn: desired.arn, Tags }));
      } else {
        await ctx.clients.sns.send(
          new SetTopicAttributesCommand({
            TopicArn: desired.arn,
            AttributeName: change.field,
            AttributeValue: desired.attributes[change.field as keyof TopicSpec['attributes']],
          }),
        );
      }
    }
  },
  outputs: (_ctx, desired, actual) => ({ arn: actual?.arn ?? desired.arn }),
  // DeleteTopic is idempotent in SNS: a topic deleted meanwhile is not an error
  remove: (ctx, name) =>
    ctx.clients.sns.send(new DeleteTopicCommand({ TopicArn: arn(ctx.identity, 'sns', name) })),
  isNotFound: (error) => error instanceof NotFoundException,
};

export const ensureTopic = (ctx: Ctx, inputs: { bucketArn: string }) =>
  reconcile(ctx, topic, desiredTopic(ctx, inputs));

export const deleteTopic = (ctx: Ctx) => destroy(ctx, topic, ctx.names.topic);
