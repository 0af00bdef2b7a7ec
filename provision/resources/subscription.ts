import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  NotFoundException,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { arn } from '../../lib/names.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  pending,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';

interface Endpoints {
  topicArn: string;
  queueArn: string;
}

interface SubscriptionSpec extends Endpoints {
  name: string;
  // Raw delivery off: the function receives the SNS envelope and its
  // Message is the S3 event (the parser accepts both shapes).
  attributes: { RawMessageDelivery: string };
}

interface SubscriptionState {
  arn: string;
  attributes: Record<string, string>;
}

function subscriptionName(inputs: Endpoints): string {
  return `${inputs.topicArn.split(':').pop()} → ${inputs.queueArn.split(':').pop()}`;
}

export function desiredSubscription(inputs: Endpoints): SubscriptionSpec {
  return {
    name: subscriptionName(inputs),
    ...inputs,
    attributes: { RawMessageDelivery: 'false' },
  };
}

export function subscriptionDrift(desired: SubscriptionSpec, actual: SubscriptionState): FieldChange[] {
  return Object.entries(desired.attributes)
    .filter(([name, value]) => (actual.attributes[name] ?? 'false') !== value)
    .map(([field, to]) => ({ field, from: actual.attributes[field], to }));
}

// A subscription has no name of its own: it is the topic's SQS subscription
// to the queue, so the resource is made for one pair of endpoints.
function subscription(inputs: Endpoints): Resource<SubscriptionSpec, SubscriptionState, { arn: string }> {
  return {
    kind: 'subscription',
    permissions: {
      find: 'sns:ListSubscriptionsByTopic and sns:GetSubscriptionAttributes',
      create: 'sns:Subscribe',
      update: 'sns:SetSubscriptionAttributes',
      delete: 'sns:Unsubscribe',
    },
    // SNS has no "describe subscription by endpoint": list the topic's
    // subscriptions (100 per page) and pick the SQS one pointing at the queue.
    async find(ctx) {
      const { sns } = ctx.clients;
      let NextToken: string | undefined;
      let found: string | undefined;
      try {
        do {
          const page = await sns.send(
            new ListSubscriptionsByTopicCommand({ TopicArn: inputs.topicArn, NextToken }),
          );
          found = page.Subscriptions?.find(
            (s) =>
              s.Protocol === 'sqs' && s.Endpoint === inputs.queueArn && s.SubscriptionArn?.startsWith('arn:'),
          )?.SubscriptionArn;
          NextToken = page.NextToken;
        } while (found === undefined && NextToken !== undefined);
        if (found === undefined) return undefined;
        const { Attributes = {} } = await sns.send(
          new GetSubscriptionAttributesCommand({ SubscriptionArn: found }),
        );
        return { arn: found, attributes: Attributes };
      } catch (error) {
        // the topic itself is absent (plan mode before the topic exists, or teardown)
        if (error instanceof NotFoundException) return undefined;
        throw error;
      }
    },
    drift: subscriptionDrift,
    createFields: (desired) => diffFields(desired.attributes, {}),
    // Subscribe is idempotent for the same topic, protocol, endpoint and
    // attributes; SQS endpoints in the same account are confirmed at once.
    async create(ctx, desired) {
      const { SubscriptionArn } = await ctx.clients.sns.send(
        new SubscribeCommand({
          TopicArn: desired.topicArn,
          Protocol: 'sqs',
          Endpoint: desired.queueArn,
          Attributes: desired.attributes,
          ReturnSubscriptionArn: true,
        }),
      );
      return SubscriptionArn === undefined
        ? undefined
        : { arn: SubscriptionArn, attributes: desired.attributes };
    },
    async update(ctx, _desired, actual, drift) {
      for (const change of drift) {
        await ctx.clients.sns.send(
          new SetSubscriptionAttributesCommand({
            SubscriptionArn: actual.arn,
            AttributeName: change.field,
            AttributeValue: String(change.to),
          }),
        );
      }
    },
    outputs: (_ctx, _desired, actual) => ({ arn: actual?.arn ?? pending('subscription arn') }),
    remove: (ctx, _name, actual) =>
      ctx.clients.sns.send(new UnsubscribeCommand({ SubscriptionArn: actual.arn })),
    isNotFound: (error) => error instanceof NotFoundException,
  };
}

export const findSubscription = (ctx: Ctx, inputs: Endpoints) =>
  subscription(inputs).find(ctx, subscriptionName(inputs));

export const ensureSubscription = (ctx: Ctx, inputs: Endpoints) =>
  reconcile(ctx, subscription(inputs), desiredSubscription(inputs));

export function deleteSubscription(ctx: Ctx): Promise<void> {
  const inputs = {
    topicArn: arn(ctx.identity, 'sns', ctx.names.topic),
    queueArn: arn(ctx.identity, 'sqs', ctx.names.queue),
  };
  return destroy(ctx, subscription(inputs), subscriptionName(inputs));
}
