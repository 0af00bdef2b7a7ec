import {
  GetBucketNotificationConfigurationCommand,
  NoSuchBucket,
  type NotificationConfiguration,
  PutBucketNotificationConfigurationCommand,
  S3ServiceException,
  type TopicConfiguration,
} from '@aws-sdk/client-s3';
import { stepError } from '../../lib/errors.ts';
import { retryWhile } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  type FieldChange,
  type Resource,
  reconcile,
  sameValue,
} from '../../lib/reconcile.ts';

function notificationId(ctx: Pick<Ctx, 'names'>): string {
  return `${ctx.names.base}-uploads`;
}

export function desiredNotification(
  ctx: Pick<Ctx, 'names'>,
  inputs: { topicArn: string },
): TopicConfiguration {
  return {
    Id: notificationId(ctx),
    TopicArn: inputs.topicArn,
    // every ObjectCreated variant: Put, Post, Copy, CompleteMultipartUpload
    Events: ['s3:ObjectCreated:*'],
    Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: ctx.names.uploadsPrefix }] } },
  };
}

// S3 may echo filter rule names as Prefix/prefix and events in any order.
function comparable(entry: TopicConfiguration | undefined): unknown {
  if (entry === undefined) return undefined;
  return {
    TopicArn: entry.TopicArn,
    Events: [...(entry.Events ?? [])].sort(),
    FilterRules: (entry.Filter?.Key?.FilterRules ?? [])
      .map((rule) => ({ Name: String(rule.Name).toLowerCase(), Value: rule.Value ?? '' }))
      .sort((a, b) => a.Name.localeCompare(b.Name)),
  };
}

export function notificationDrift(
  desired: TopicConfiguration,
  actual: NotificationConfiguration,
): FieldChange[] {
  const ours = actual.TopicConfigurations?.find((entry) => entry.Id === desired.Id);
  const from = comparable(ours);
  const to = comparable(desired);
  return sameValue(from, to) ? [] : [{ field: `TopicConfiguration ${desired.Id}`, from, to }];
}

// PutBucketNotificationConfiguration replaces the whole configuration: keep
// every entry that is not ours (other teams' queues, Lambda, EventBridge) and
// replace ours, identified by its Id.
export function mergeNotification(
  actual: NotificationConfiguration,
  ours: TopicConfiguration | undefined,
  id: string,
): NotificationConfiguration {
  const topics = (actual.TopicConfigurations ?? []).filter((entry) => entry.Id !== id);
  if (ours !== undefined) topics.push(ours);
  const merged: NotificationConfiguration = {};
  if (topics.length > 0) merged.TopicConfigurations = topics;
  if (actual.QueueConfigurations?.length) merged.QueueConfigurations = actual.QueueConfigurations;
  if (actual.LambdaFunctionConfigurations?.length) {
    merged.LambdaFunctionConfigurations = actual.LambdaFunctionConfigurations;
  }
  if (actual.EventBridgeConfiguration !== undefined) {
    merged.EventBridgeConfiguration = actual.EventBridgeConfiguration;
  }
  return merged;
}

// S3 checks, when the configuration is saved, that it may publish to each
// destination, against the destination's policy as S3 sees it. The topic
// policy ensureTopic has just set may not be in effect yet (both services are
// eventually consistent), and S3 then answers "Unable to validate the
// following destination configurations" for a while: the save is retried,
// for a bounded time, while S3 gives that answer, and no other.
const destinationValidationRetry = { timeoutMs: 60_000, intervalMs: 2_000, maxIntervalMs: 10_000 };

// S3 has no exception class for it: its error code is InvalidArgument, which
// also means a configuration that can never be saved (overlapping filters),
// so the message, which names the case, decides.
function isUnvalidatedDestination(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    error.name === 'InvalidArgument' &&
    error.message.startsWith('Unable to validate the following destination configurations')
  );
}

interface NotificationOptions {
  // tests shorten the wait for the topic policy to take effect
  retry?: Partial<typeof destinationValidationRetry>;
}

function writeNotification(
  ctx: Ctx,
  bucket: string,
  configuration: NotificationConfiguration,
  options: NotificationOptions,
): Promise<unknown> {
  const retry = { ...destinationValidationRetry, ...options.retry };
  return retryWhile(
    () =>
      ctx.clients.s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: bucket,
          NotificationConfiguration: configuration,
        }),
      ),
    isUnvalidatedDestination,
    {
      what: `S3 to accept the topic policy of ${bucket}'s notification`,
      ...retry,
      onProgress: (elapsed) =>
        ctx.log.progress(
          `S3 cannot validate the notification's topic yet (its policy is still taking effect): ${Math.round(elapsed / 1000)} s`,
        ),
    },
  );
}

// Saving our entry: S3's InvalidArgument (a destination it cannot validate,
// an overlap with a foreign entry) is worth more than the permission.
async function saveNotification(
  ctx: Ctx,
  bucket: string,
  configuration: NotificationConfiguration,
  options: NotificationOptions,
): Promise<void> {
  try {
    await writeNotification(ctx, bucket, configuration, options);
  } catch (error) {
    throw stepError(
      `write the notification configuration of ${bucket}`,
      error,
      'check s3:PutBucketNotification permission; S3 validates destinations: the topic policy must let this bucket publish, and foreign entries must not overlap uploads/',
    );
  }
}

// The live state is the bucket's whole configuration, found only when it
// holds our entry. PutBucketNotificationConfiguration replaces the whole
// configuration, so creating our entry merges it into the configuration that
// find read last (an empty one when the bucket does not exist yet).
function notification(
  bucket: string,
  id: string,
  options: NotificationOptions,
): Resource<{ name: string; entry: TopicConfiguration }, NotificationConfiguration, {}> {
  let read: NotificationConfiguration = {};
  return {
    kind: 'bucket notification',
    permissions: { find: 's3:GetBucketNotification', delete: 's3:PutBucketNotification' },
    async find(ctx) {
      try {
        const { $metadata: _, ...configuration } = await ctx.clients.s3.send(
          new GetBucketNotificationConfigurationCommand({ Bucket: bucket }),
        );
        read = configuration;
      } catch (error) {
        if (!(error instanceof NoSuchBucket)) throw error;
        read = {};
      }
      return read.TopicConfigurations?.some((entry) => entry.Id === id) ? read : undefined;
    },
    drift: (desired, actual) => notificationDrift(desired.entry, actual),
    createFields: (desired) => notificationDrift(desired.entry, read),
    async create(ctx, desired) {
      const merged = mergeNotification(read, desired.entry, id);
      await saveNotification(ctx, bucket, merged, options);
      return merged;
    },
    update: (ctx, desired, actual) =>
      saveNotification(ctx, bucket, mergeNotification(actual, desired.entry, id), options),
    outputs: () => ({}),
    // nothing of ours was just set: a foreign destination S3 cannot validate
    // will not become valid by waiting
    remove: (ctx, _name, actual) =>
      writeNotification(ctx, bucket, mergeNotification(actual, undefined, id), { retry: { timeoutMs: 0 } }),
    isNotFound: (error) => error instanceof NoSuchBucket,
  };
}

// Run after ensureTopic: S3 validates that it may publish to the topic when
// the configuration is saved, and sends an s3:TestEvent there.
export function ensureNotification(
  ctx: Ctx,
  inputs: { bucket: string; topicArn: string },
  options: NotificationOptions = {},
): Promise<{}> {
  const id = notificationId(ctx);
  return reconcile(ctx, notification(inputs.bucket, id, options), {
    name: `${inputs.bucket} ${id}`,
    entry: desiredNotification(ctx, inputs),
  });
}

export function deleteNotification(ctx: Ctx): Promise<void> {
  const bucket = ctx.names.bucket;
  const id = notificationId(ctx);
  return destroy(ctx, notification(bucket, id, {}), `${bucket} ${id}`);
}
