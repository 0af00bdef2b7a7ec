import {
  CreateTopicCommand,
  DeleteTopicCommand,
  GetTopicAttributesCommand,
  ListTagsForResourceCommand,
  NotFoundException,
  paginateListSubscriptionsByTopic,
  SetTopicAttributesCommand,
  SubscribeCommand,
  TagResourceCommand,
} from '@aws-sdk/client-sns';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import { Action, type Ctx, isPlan, missingTags, pending, record } from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy, samePolicy } from '../policy.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';
import { alarmPrefix } from './alarms.ts';

const kind = 'alerts topic';

export interface DesiredAlerts {
  name: string;
  arn: string;
  policy: PolicyDocument;
  tags: Tags;
  // undefined: no e-mail subscription is managed
  email: string | undefined;
}

export interface LiveAlerts {
  arn: string;
  policy: unknown;
  tags: Tags;
  // `PendingConfirmation` instead of an ARN until the recipient confirms
  subscriptions: { protocol: string; endpoint: string; arn: string }[];
}

export interface AlertsOutputs {
  topicArn: string;
}

function topicArn(ctx: Pick<Ctx, 'identity' | 'names'>): string {
  return arn(ctx.identity, 'sns', ctx.names.alertsTopic);
}

export function desiredAlerts(ctx: Pick<Ctx, 'config' | 'identity' | 'names'>): DesiredAlerts {
  const { identity, names } = ctx;
  const resource = topicArn(ctx);
  return {
    name: names.alertsTopic,
    arn: resource,
    // Only this account's CloudWatch alarms of this stack may publish: the
    // service principal plus aws:SourceAccount and aws:SourceArn guard against
    // the confused-deputy problem (CloudWatch user guide, "Amazon SNS topic
    // access policy for alarm actions"). The account's own principals keep
    // managing the topic through their IAM policies.
    policy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'AllowThisStacksAlarmsToPublish',
          Effect: 'Allow',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: 'sns:Publish',
          Resource: resource,
          Condition: {
            StringEquals: { 'aws:SourceAccount': identity.accountId },
            ArnLike: { 'aws:SourceArn': arn(identity, 'cloudwatch', `alarm:${alarmPrefix(names)}*`) },
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
      ],
    },
    tags: names.tags,
    email: ctx.config.provision.alertEmail,
  };
}

export async function findAlerts(ctx: Ctx): Promise<LiveAlerts | undefined> {
  const { sns } = ctx.clients;
  const resource = topicArn(ctx);
  let policy: unknown;
  try {
    const { Attributes } = await sns.send(new GetTopicAttributesCommand({ TopicArn: resource }));
    policy = parsePolicy(Attributes?.Policy);
  } catch (error) {
    if (error instanceof NotFoundException) return undefined;
    throw stepError(`describe ${kind} ${resource}`, error, 'check sns:GetTopicAttributes permission');
  }
  try {
    const { Tags } = await sns.send(new ListTagsForResourceCommand({ ResourceArn: resource }));
    const subscriptions: LiveAlerts['subscriptions'] = [];
    for await (const page of paginateListSubscriptionsByTopic({ client: sns }, { TopicArn: resource })) {
      for (const s of page.Subscriptions ?? []) {
        subscriptions.push({
          protocol: s.Protocol ?? '',
          endpoint: s.Endpoint ?? '',
          arn: s.SubscriptionArn ?? '',
        });
      }
    }
    return { arn: resource, policy, tags: fromTagList(Tags), subscriptions };
  } catch (error) {
    throw stepError(
      `read ${kind} ${resource}`,
      error,
      'check sns:ListTagsForResource and sns:ListSubscriptionsByTopic permissions',
    );
  }
}

async function createTopic(ctx: Ctx, desired: DesiredAlerts): Promise<string> {
  try {
    // CreateTopic is idempotent for the same name and attributes: a racing
    // creator gets the same ARN back (CreateTopic API reference)
    const { TopicArn } = await ctx.clients.sns.send(
      new CreateTopicCommand({
        Name: desired.name,
        Attributes: { Policy: JSON.stringify(desired.policy) },
        Tags: toTagList(desired.tags),
      }),
    );
    return TopicArn ?? desired.arn;
  } catch (error) {
    throw stepError(
      `create ${kind} ${desired.name}`,
      error,
      'check sns:CreateTopic and sns:TagResource permissions',
    );
  }
}

// An e-mail subscription stays `PendingConfirmation` until its recipient
// follows the link; it is listed all the same, so a second run never sends a
// second confirmation mail.
function hasEmailSubscription(live: LiveAlerts | undefined, email: string): boolean {
  return (live?.subscriptions ?? []).some(
    (s) => s.protocol === 'email' && s.endpoint.toLowerCase() === email.toLowerCase(),
  );
}

export async function ensureAlerts(ctx: Ctx): Promise<AlertsOutputs> {
  const { sns } = ctx.clients;
  const desired = desiredAlerts(ctx);
  const live = await findAlerts(ctx);
  let resource = live?.arn;

  if (live === undefined) {
    record(ctx, { kind, name: desired.name, action: Action.create });
    if (!isPlan(ctx)) resource = await createTopic(ctx, desired);
  } else {
    const fields = tagDrift(desired.tags, live.tags);
    if (!samePolicy(desired.policy, live.policy))
      fields.unshift({ field: 'Policy', from: live.policy, to: desired.policy });
    record(ctx, {
      kind,
      name: desired.name,
      action: fields.length > 0 ? Action.update : Action.unchanged,
      fields,
    });
    if (!isPlan(ctx) && fields.length > 0) {
      try {
        if (!samePolicy(desired.policy, live.policy)) {
          await sns.send(
            new SetTopicAttributesCommand({
              TopicArn: live.arn,
              AttributeName: 'Policy',
              AttributeValue: JSON.stringify(desired.policy),
            }),
          );
        }
        const missing = missingTags(desired.tags, live.tags);
        if (Object.keys(missing).length > 0) {
          await sns.send(new TagResourceCommand({ ResourceArn: live.arn, Tags: toTagList(missing) }));
        }
      } catch (error) {
        throw stepError(
          `update ${kind} ${desired.name}`,
          error,
          'check sns:SetTopicAttributes and sns:TagResource permissions',
        );
      }
    }
  }

  if (desired.email !== undefined) {
    const subscription = `${desired.name} → ${desired.email}`;
    if (hasEmailSubscription(live, desired.email)) {
      record(ctx, { kind: 'alerts e-mail subscription', name: subscription, action: Action.unchanged });
    } else {
      record(ctx, { kind: 'alerts e-mail subscription', name: subscription, action: Action.create });
      if (!isPlan(ctx) && resource !== undefined) {
        try {
          await sns.send(
            new SubscribeCommand({ TopicArn: resource, Protocol: 'email', Endpoint: desired.email }),
          );
        } catch (error) {
          throw stepError(
            `subscribe ${desired.email} to ${desired.name}`,
            error,
            'check sns:Subscribe permission',
          );
        }
        ctx.log.info(
          `a confirmation e-mail was sent to ${desired.email}: alerts arrive once its link is followed`,
        );
      }
    }
  }
  // Subscriptions this configuration does not name (a changed ALERT_EMAIL, a
  // person's own subscriber) are left alone: SNS fan-out is meant for extra
  // subscribers, and a pending one cannot be removed anyway (no ARN yet).

  return { topicArn: resource ?? pending('alerts topic ARN') };
}

export async function deleteAlerts(ctx: Ctx): Promise<void> {
  const live = await findAlerts(ctx);
  if (live === undefined) {
    record(ctx, { kind, name: ctx.names.alertsTopic, action: Action.absent });
    return;
  }
  record(ctx, { kind, name: ctx.names.alertsTopic, action: Action.delete });
  if (isPlan(ctx)) return;
  try {
    // DeleteTopic removes the topic's subscriptions with it, and succeeds when
    // the topic is already gone (DeleteTopic API reference)
    await ctx.clients.sns.send(new DeleteTopicCommand({ TopicArn: live.arn }));
  } catch (error) {
    if (error instanceof NotFoundException) return;
    throw stepError(`delete ${kind} ${live.arn}`, error, 'check sns:DeleteTopic permission');
  }
}
