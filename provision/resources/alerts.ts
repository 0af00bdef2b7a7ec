import { paginateListSubscriptionsByTopic, SubscribeCommand, type Subscription } from '@aws-sdk/client-sns';
import { arn } from '../../lib/names.ts';
import { type Ctx, destroy, pending, type Resource, reconcile } from '../../lib/reconcile.ts';
import { policyDocument } from '../policy.ts';
import { alarmArn, alarmPrefix } from './alarms.ts';
import { type DesiredTopic, isTopicNotFound, type LiveTopic, readTopic, snsTopic } from './topic.ts';

interface DesiredAlerts extends DesiredTopic {
  // undefined: no e-mail subscription is managed
  email: string | undefined;
}

interface LiveAlerts extends LiveTopic {
  // `PendingConfirmation` instead of an ARN until the recipient confirms
  subscriptions: Subscription[];
}

export function desiredAlerts(ctx: Pick<Ctx, 'config' | 'identity' | 'names'>): DesiredAlerts {
  const { identity, names } = ctx;
  const resource = arn(identity, 'sns', names.alertsTopic);
  return {
    name: names.alertsTopic,
    arn: resource,
    // Only this account's CloudWatch alarms of this stack may publish: the
    // service principal plus aws:SourceAccount and aws:SourceArn guard against
    // the confused-deputy problem (CloudWatch user guide, "Amazon SNS topic
    // access policy for alarm actions"). The account's own principals keep
    // managing the topic through their IAM policies.
    policy: policyDocument(
      {
        Sid: 'AllowThisStacksAlarmsToPublish',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: resource,
        Condition: {
          StringEquals: { 'aws:SourceAccount': identity.accountId },
          ArnLike: { 'aws:SourceArn': alarmArn(ctx, `${alarmPrefix(names)}*`) },
        },
      },
      {
        Sid: 'DenyPublishWithoutTls',
        Effect: 'Deny',
        Principal: '*',
        Action: 'sns:Publish',
        Resource: resource,
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ),
    tags: names.tags,
    email: ctx.config.provision.alertEmail,
  };
}

const alertsTopic: Resource<DesiredAlerts, LiveAlerts, LiveAlerts | undefined> = {
  ...snsTopic,
  kind: 'alerts topic',
  permissions: {
    ...snsTopic.permissions,
    find: 'sns:GetTopicAttributes, sns:ListTagsForResource and sns:ListSubscriptionsByTopic',
  },
  async find(ctx, name) {
    const topic = await readTopic(ctx, arn(ctx.identity, 'sns', name));
    if (topic === undefined) return undefined;
    const subscriptions: Subscription[] = [];
    try {
      for await (const page of paginateListSubscriptionsByTopic(
        { client: ctx.clients.sns },
        { TopicArn: topic.arn },
      )) {
        subscriptions.push(...(page.Subscriptions ?? []));
      }
    } catch (error) {
      // deleted since it was read
      if (isTopicNotFound(error)) return undefined;
      throw error;
    }
    return { ...topic, subscriptions };
  },
  create: async (ctx, desired) => ({ ...(await snsTopic.create(ctx, desired)), subscriptions: [] }),
  outputs: (_ctx, _desired, actual) => actual,
};

// An e-mail subscription stays `PendingConfirmation` until its recipient
// follows the link; it is listed all the same, so a second run never sends a
// second confirmation mail. It is found among the topic's subscriptions as
// the topic was read.
function emailSubscription(
  topic: LiveAlerts | undefined,
  email: string,
): Resource<{ name: string; topicArn: string }, true, void> {
  const subscribed = (topic?.subscriptions ?? []).some(
    (s) => s.Protocol === 'email' && (s.Endpoint ?? '').toLowerCase() === email.toLowerCase(),
  );
  return {
    kind: 'alerts e-mail subscription',
    permissions: { create: 'sns:Subscribe' },
    find: async () => (subscribed ? true : undefined),
    drift: () => [],
    async create(ctx, desired) {
      await ctx.clients.sns.send(
        new SubscribeCommand({ TopicArn: desired.topicArn, Protocol: 'email', Endpoint: email }),
      );
      ctx.log.info(`a confirmation e-mail was sent to ${email}: alerts arrive once its link is followed`);
      return true;
    },
    outputs: () => undefined,
  };
}

export const findAlerts = (ctx: Ctx) => alertsTopic.find(ctx, ctx.names.alertsTopic);

export async function ensureAlerts(ctx: Ctx): Promise<{ topicArn: string }> {
  const desired = desiredAlerts(ctx);
  const topic = await reconcile(ctx, alertsTopic, desired);
  const topicArn = topic?.arn ?? pending('alerts topic ARN');
  // Subscriptions this configuration does not name (a changed ALERT_EMAIL, a
  // person's own subscriber) are left alone: SNS fan-out is meant for extra
  // subscribers, and a pending one cannot be removed anyway (no ARN yet).
  if (desired.email !== undefined) {
    await reconcile(ctx, emailSubscription(topic, desired.email), {
      name: `${desired.name} → ${desired.email}`,
      topicArn,
    });
  }
  return { topicArn };
}

export const deleteAlerts = (ctx: Ctx) => destroy(ctx, alertsTopic, ctx.names.alertsTopic);
