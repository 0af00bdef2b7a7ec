import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  NotFoundException,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  UnsubscribeCommand,
} from '@aws-sdk/client-sns';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import { Action, type Ctx, type FieldChange, isPlan, pending, record } from '../../lib/reconcile.ts';

const kind = 'subscription';

export interface SubscriptionSpec {
  topicArn: string;
  queueArn: string;
  // Raw delivery off: the function receives the SNS envelope and its
  // Message is the S3 event (the parser accepts both shapes).
  attributes: { RawMessageDelivery: string };
}

export interface SubscriptionState {
  arn: string;
  attributes: Record<string, string>;
}

export function desiredSubscription(inputs: { topicArn: string; queueArn: string }): SubscriptionSpec {
  return {
    topicArn: inputs.topicArn,
    queueArn: inputs.queueArn,
    attributes: { RawMessageDelivery: 'false' },
  };
}

export function subscriptionDrift(desired: SubscriptionSpec, actual: SubscriptionState): FieldChange[] {
  return Object.entries(desired.attributes)
    .filter(([name, value]) => (actual.attributes[name] ?? 'false') !== value)
    .map(([field, to]) => ({ field, from: actual.attributes[field], to }));
}

function subscriptionName(inputs: { topicArn: string; queueArn: string }): string {
  return `${inputs.topicArn.split(':').pop()} → ${inputs.queueArn.split(':').pop()}`;
}

// SNS has no "describe subscription by endpoint": list the topic's
// subscriptions (100 per page) and pick the SQS one pointing at our queue.
export async function findSubscription(
  ctx: Ctx,
  inputs: { topicArn: string; queueArn: string },
): Promise<SubscriptionState | undefined> {
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
    const attributes = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: found }));
    return { arn: found, attributes: attributes.Attributes ?? {} };
  } catch (error) {
    // the topic itself is absent (plan mode before the topic exists, or teardown)
    if (error instanceof NotFoundException) return undefined;
    throw stepError(
      `list subscriptions of ${inputs.topicArn}`,
      error,
      'check sns:ListSubscriptionsByTopic permission',
    );
  }
}

export async function ensureSubscription(
  ctx: Ctx,
  inputs: { topicArn: string; queueArn: string },
): Promise<{ arn: string }> {
  const desired = desiredSubscription(inputs);
  const name = subscriptionName(inputs);
  const actual = await findSubscription(ctx, inputs);
  if (actual === undefined) {
    record(ctx, {
      kind,
      name,
      action: Action.create,
      fields: [{ field: 'RawMessageDelivery', from: undefined, to: desired.attributes.RawMessageDelivery }],
    });
    if (isPlan(ctx)) return { arn: pending('subscription arn') };
    try {
      // Subscribe is idempotent for the same topic, protocol, endpoint and attributes.
      // SQS endpoints in the same account are confirmed at once.
      const created = await ctx.clients.sns.send(
        new SubscribeCommand({
          TopicArn: inputs.topicArn,
          Protocol: 'sqs',
          Endpoint: inputs.queueArn,
          Attributes: desired.attributes,
          ReturnSubscriptionArn: true,
        }),
      );
      return { arn: created.SubscriptionArn ?? pending('subscription arn') };
    } catch (error) {
      throw stepError(
        `subscribe ${inputs.queueArn} to ${inputs.topicArn}`,
        error,
        'check sns:Subscribe permission',
      );
    }
  }
  const drift = subscriptionDrift(desired, actual);
  record(ctx, {
    kind,
    name,
    action: drift.length > 0 ? Action.update : Action.unchanged,
    ...(drift.length > 0 ? { fields: drift } : {}),
  });
  if (!isPlan(ctx)) {
    for (const change of drift) {
      try {
        await ctx.clients.sns.send(
          new SetSubscriptionAttributesCommand({
            SubscriptionArn: actual.arn,
            AttributeName: change.field,
            AttributeValue: String(change.to),
          }),
        );
      } catch (error) {
        throw stepError(
          `update subscription ${actual.arn}`,
          error,
          'check sns:SetSubscriptionAttributes permission',
        );
      }
    }
  }
  return { arn: actual.arn };
}

export async function deleteSubscription(ctx: Ctx): Promise<void> {
  const inputs = {
    topicArn: arn(ctx.identity, 'sns', ctx.names.topic),
    queueArn: arn(ctx.identity, 'sqs', ctx.names.queue),
  };
  const name = subscriptionName(inputs);
  const actual = await findSubscription(ctx, inputs);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.absent });
    return;
  }
  record(ctx, { kind, name, action: Action.delete });
  if (isPlan(ctx)) return;
  try {
    await ctx.clients.sns.send(new UnsubscribeCommand({ SubscriptionArn: actual.arn }));
  } catch (error) {
    if (error instanceof NotFoundException) return;
    throw stepError(`delete subscription ${actual.arn}`, error, 'check sns:Unsubscribe permission');
  }
}
