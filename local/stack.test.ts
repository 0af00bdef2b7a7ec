import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  GetBucketNotificationConfigurationCommand,
  GetBucketPolicyCommand,
  GetBucketVersioningCommand,
  PutBucketNotificationConfigurationCommand,
} from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  MetadataBearer,
} from '@smithy/types';
import { Action, type Ctx } from '../lib/reconcile.ts';
import { createLocalContext, type LocalStack, reconcileMessaging, startLocalStack } from './stack.ts';

// Counts every command the reconcile sends, through a middleware on the same
// SDK clients it uses: read-only commands are Get*/List*/Head*/Describe*.
function countCalls(ctx: Ctx): string[] {
  const calls: string[] = [];
  const middleware =
    (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<object>) => {
      calls.push(String(context.commandName).replace(/Command$/, ''));
      return next(args);
    };
  const options = { step: 'initialize', name: 'countCalls' } as const;
  ctx.clients.s3.middlewareStack.add(middleware, options);
  ctx.clients.sns.middlewareStack.add(middleware, options);
  ctx.clients.sqs.middlewareStack.add(middleware, options);
  return calls;
}

const isMutating = (command: string) => !/^(Get|List|Head|Describe)/.test(command);

let stack: LocalStack;
before(async () => {
  stack = await startLocalStack({ env: { STAGE: 'stacktest' } });
});
after(async () => {
  await stack.stop();
});

test('the first run creates every messaging resource and returns the URLs the API gave', async () => {
  assert.deepEqual(
    stack.changes.map((c) => [c.kind, c.action]),
    [
      ['bucket', Action.create],
      ['dead-letter queue', Action.create],
      ['topic', Action.create],
      ['queue', Action.create],
      ['subscription', Action.create],
      ['bucket notification', Action.create],
    ],
  );
  const { outputs } = stack;
  assert.equal(outputs.bucket, 'ada-linecount-stacktest-000000000000-us-east-1');
  assert.equal(outputs.queueArn, 'arn:aws:sqs:us-east-1:000000000000:ada-linecount-stacktest-uploads');
  assert.match(outputs.queueUrl, /\/000000000000\/ada-linecount-stacktest-uploads$/);
  assert.match(outputs.dlqUrl, /\/000000000000\/ada-linecount-stacktest-uploads-dlq$/);
  assert.equal(outputs.endpoint, stack.endpoint);
  const versioning = await stack.clients.s3.send(new GetBucketVersioningCommand({ Bucket: outputs.bucket }));
  assert.equal(versioning.Status, 'Enabled');
  const policy = await stack.clients.s3.send(new GetBucketPolicyCommand({ Bucket: outputs.bucket }));
  assert.match(policy.Policy ?? '', /aws:SecureTransport/);
  const attributes = await stack.clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: outputs.queueUrl, AttributeNames: ['All'] }),
  );
  assert.equal(JSON.parse(attributes.Attributes?.RedrivePolicy ?? '{}').deadLetterTargetArn, outputs.dlqArn);
  assert.equal(attributes.Attributes?.SqsManagedSseEnabled, 'true');
});

test('a second run records every resource as unchanged and makes no mutating call', async () => {
  const ctx = await createLocalContext(stack.env);
  const calls = countCalls(ctx);
  const outputs = await reconcileMessaging(ctx);
  assert.deepEqual(
    ctx.changes.map((c) => [c.kind, c.action, c.fields]),
    ctx.changes.map((c) => [c.kind, Action.unchanged, undefined]),
  );
  assert.equal(ctx.changes.length, 6);
  assert.ok(calls.length > 0, 'the reconcile read the resources through the counted clients');
  assert.deepEqual(calls.filter(isMutating), []);
  assert.equal(outputs.queueUrl, stack.outputs.queueUrl);
});

test('a queue attribute changed out of band is set back with SetQueueAttributes alone', async () => {
  await stack.clients.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: stack.outputs.queueUrl,
      Attributes: { VisibilityTimeout: '30' },
    }),
  );
  const ctx = await createLocalContext(stack.env);
  const calls = countCalls(ctx);
  await reconcileMessaging(ctx);
  const queue = ctx.changes.find((c) => c.kind === 'queue');
  assert.equal(queue?.action, Action.update);
  assert.deepEqual(queue?.fields, [
    { field: 'VisibilityTimeout', from: '30', to: String(stack.config.fn.visibilityTimeoutSeconds) },
  ]);
  assert.deepEqual(calls.filter(isMutating), ['SetQueueAttributes']);
});

test('the notification merge keeps a foreign entry and rewrites only ours', async () => {
  const bucket = stack.outputs.bucket;
  const current = await stack.clients.s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: bucket }),
  );
  // a foreign entry on another prefix, and ours broken out of band
  await stack.clients.s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        TopicConfigurations: [
          ...(current.TopicConfigurations ?? []).map((entry) => ({
            ...entry,
            Events: ['s3:ObjectCreated:Put' as const],
          })),
          {
            Id: 'audit',
            TopicArn: stack.outputs.topicArn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'audit/' }] } },
          },
        ],
      },
    }),
  );
  const ctx = await createLocalContext(stack.env);
  const calls = countCalls(ctx);
  await reconcileMessaging(ctx);
  assert.deepEqual(calls.filter(isMutating), ['PutBucketNotificationConfiguration']);
  const after = await stack.clients.s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: bucket }),
  );
  assert.deepEqual(after.TopicConfigurations?.map((entry) => [entry.Id, entry.Events]).sort(), [
    ['ada-linecount-stacktest-uploads', ['s3:ObjectCreated:*']],
    ['audit', ['s3:ObjectCreated:*']],
  ]);
});

test('plan mode against the live stack records and changes nothing', async () => {
  await stack.clients.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: stack.outputs.queueUrl,
      Attributes: { MessageRetentionPeriod: '600' },
    }),
  );
  const ctx = { ...(await createLocalContext(stack.env)), mode: 'plan' as const };
  const calls = countCalls(ctx);
  await reconcileMessaging(ctx);
  assert.deepEqual(calls.filter(isMutating), []);
  assert.equal(ctx.changes.find((c) => c.kind === 'queue')?.action, Action.update);
  const attributes = await stack.clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.outputs.queueUrl,
      AttributeNames: ['MessageRetentionPeriod'],
    }),
  );
  assert.equal(attributes.Attributes?.MessageRetentionPeriod, '600');
});
