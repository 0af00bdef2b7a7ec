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
  type FieldChange,
  missingTags,
  type Resource,
  reconcile,
  type Writers,
} from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy, policyDocument, policyDrift } from '../policy.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';

// What the stack's topic and the alerts topic (alerts.ts) share: a name, an
// access policy and tags.
export interface DesiredTopic {
  name: string;
  arn: string;
  policy: PolicyDocument;
  tags: Tags;
}

export interface LiveTopic {
  arn: string;
  policy: unknown;
  tags: Tags;
}

export function desiredTopic(
  ctx: Pick<Ctx, 'identity' | 'names'>,
  inputs: { bucketArn: string },
): DesiredTopic {
  const name = ctx.names.topic;
  const topicArn = arn(ctx.identity, 'sns', name);
  return {
    name,
    arn: topicArn,
    // Only this bucket, in this account, may publish: aws:SourceArn alone is
    // not enough because bucket ARNs carry no account id (S3 docs,
    // "Granting permissions to publish event notification messages").
    policy: policyDocument({
      Sid: 'AllowUploadsBucket',
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: 'SNS:Publish',
      Resource: topicArn,
      Condition: {
        ArnLike: { 'aws:SourceArn': inputs.bucketArn },
        StringEquals: { 'aws:SourceAccount': ctx.identity.accountId },
      },
    }),
    tags: ctx.names.tags,
  };
}

// the policy compares as data, whatever its key order
export function topicDrift(desired: DesiredTopic, actual: LiveTopic): FieldChange[] {
  return [...policyDrift('Policy', desired.policy, actual.policy), ...tagDrift(desired.tags, actual.tags)];
}

// A topic's policy and tags, or undefined when it does not exist. SNS
// names a missing topic differently per call: GetTopicAttributes answers
// NotFoundException, ListTagsForResource ResourceNotFoundException (SNS API
// reference, each call's Errors). The attributes are read first, so a missing
// topic is found missing by the call whose error means exactly that; the tags
// call's not-found means the topic was deleted between the two.
export async function readTopic(ctx: Ctx, TopicArn: string): Promise<LiveTopic | undefined> {
  const { sns } = ctx.clients;
  try {
    const { Attributes = {} } = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
    const { Tags } = await sns.send(new ListTagsForResourceCommand({ ResourceArn: TopicArn }));
    return { arn: TopicArn, policy: parsePolicy(Attributes.Policy), tags: fromTagList(Tags) };
  } catch (error) {
    if (isTopicNotFound(error)) return undefined;
    throw error;
  }
}

export function isTopicNotFound(error: unknown): boolean {
  return error instanceof NotFoundException || error instanceof ResourceNotFoundException;
}

// The calls both topics are created, changed and deleted with.
export const snsTopic = {
  permissions: {
    create: 'sns:CreateTopic and sns:TagResource',
    delete: 'sns:DeleteTopic',
  },
  drift: topicDrift,
  // CreateTopic is idempotent for the same name, attributes and tags: a racing
  // creator gets the same ARN back (CreateTopic API reference); a concurrent
  // run's topic with other attributes is fixed by the next ensure.
  async create(ctx: Ctx, desired: DesiredTopic): Promise<LiveTopic> {
    const { TopicArn } = await ctx.clients.sns.send(
      new CreateTopicCommand({
        Name: desired.name,
        Attributes: { Policy: JSON.stringify(desired.policy) },
        Tags: toTagList(desired.tags),
      }),
    );
    return { arn: TopicArn ?? desired.arn, policy: desired.policy, tags: desired.tags };
  },
  writers: {
    Policy: {
      action: 'sns:SetTopicAttributes',
      write: (ctx, desired, actual) =>
        ctx.clients.sns.send(
          new SetTopicAttributesCommand({
            TopicArn: actual.arn,
            AttributeName: 'Policy',
            AttributeValue: JSON.stringify(desired.policy),
          }),
        ),
    },
    tags: {
      action: 'sns:TagResource',
      write: (ctx, desired, actual) =>
        ctx.clients.sns.send(
          new TagResourceCommand({
            ResourceArn: actual.arn,
            Tags: toTagList(missingTags(desired.tags, actual.tags)),
          }),
        ),
    },
  } satisfies Writers<DesiredTopic, LiveTopic>,
  // DeleteTopic removes the topic's subscriptions with it, and succeeds when
  // the topic is already gone (DeleteTopic API reference)
  remove: (ctx: Ctx, _name: string, actual: LiveTopic) =>
    ctx.clients.sns.send(new DeleteTopicCommand({ TopicArn: actual.arn })),
  isNotFound: (error: unknown) => error instanceof NotFoundException,
};

// Encryption at rest is deliberately off. S3 can publish to an encrypted topic
// only when the KMS key policy lets s3.amazonaws.com use the key, and the
// AWS-managed key alias/aws/sns has a fixed policy that does not; a customer
// managed key would cost $1/month and a key policy to maintain. The topic
// carries object metadata only (bucket, key, size, ETag), never file contents,
// over TLS; the queue behind it is encrypted at rest (SqsManagedSseEnabled).
const topic: Resource<DesiredTopic, LiveTopic, { arn: string }> = {
  ...snsTopic,
  kind: 'topic',
  permissions: { ...snsTopic.permissions, find: 'sns:GetTopicAttributes and sns:ListTagsForResource' },
  find: (ctx, name) => readTopic(ctx, arn(ctx.identity, 'sns', name)),
  createFields: (desired) => [{ field: 'Policy', from: undefined, to: desired.policy }],
  outputs: (_ctx, desired, actual) => ({ arn: actual?.arn ?? desired.arn }),
};

export const ensureTopic = (ctx: Ctx, inputs: { bucketArn: string }) =>
  reconcile(ctx, topic, desiredTopic(ctx, inputs));

export const deleteTopic = (ctx: Ctx) => destroy(ctx, topic, ctx.names.topic);
