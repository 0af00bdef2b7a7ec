import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DeleteAlarmsCommand, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { DeleteObjectCommand, HeadBucketCommand, NotFound, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { Action, type Change, type Ctx, type Mode } from '../../lib/reconcile.ts';
import { provisionStack } from '../../provision/up.ts';
import { teardownStack } from '../../teardown/down.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import {
  checkMotoGaps,
  createBoundary,
  findMoto,
  liftBucketPolicy,
  type MotoRun,
  motoContext,
  motoImageDigest,
  motoProvisionOptions,
  motoStage,
  motoTeardownOptions,
  mutating,
  requireMoto,
  taggedWithStack,
} from '../support/moto.ts';

// The real up.ts and down.ts against moto, a second control plane written
// independently of the project's fakes. Each test works in a stage of its own
// on the shared plain server, so test files run side by side without a reset.

const target = await findMoto('plain');

const notUnchanged = (changes: Change[]) =>
  changes.filter((c) => c.action !== Action.unchanged).map((c) => `${c.action} ${c.kind} ${c.name}`);

describe('up and down against moto', { skip: target.skip }, () => {
  let url: string;
  let database: TestMigrationTarget | undefined;
  const stages: string[] = [];

  before(async () => {
    url = requireMoto(target);
    await checkMotoGaps(url);
    await createBoundary(url);
    database = await createMigrationTarget('moto');
  });

  // whatever a failed test left behind
  after(async () => {
    if (url === undefined) return;
    for (const stage of stages) {
      await withRun(stage, 'apply', async ({ ctx }) => {
        // a bucket whose policy a test already lifted has none to lift
        if (await bucketExists(ctx))
          await liftBucketPolicy(ctx.clients.s3, ctx.names.bucket).catch(() => undefined);
        await teardownStack(ctx, motoTeardownOptions);
      });
    }
    await database?.drop();
  });

  async function withRun<T>(
    stage: string,
    mode: Mode,
    use: (run: MotoRun) => Promise<T>,
    env: Record<string, string> = {},
  ): Promise<T> {
    const run = await motoContext(url, { stage, mode, env, migration: database });
    try {
      return await use(run);
    } finally {
      run.close();
    }
  }

  const up = (stage: string, mode: Mode = 'apply') =>
    withRun(stage, mode, async (run) => ({
      ...(await provisionStack(run.ctx, motoProvisionOptions(run.ctx))),
      calls: run.calls,
    }));

  const down = (stage: string) =>
    withRun(stage, 'apply', async (run) => ({
      ...(await teardownStack(run.ctx, motoTeardownOptions)),
      calls: run.calls,
    }));

  function newStage(label: string): string {
    const stage = motoStage(label);
    stages.push(stage);
    return stage;
  }

  test('a fresh up creates the whole stack, the next --plan has zero changes, and a second up makes no mutating call', async () => {
    const stage = newStage('f');
    // a plan of a stack that does not exist yet reads every resource's not-found
    const fresh = await up(stage, 'plan');
    assert.deepEqual(mutating(fresh.calls), []);
    const first = await up(stage);
    assert.deepEqual(
      fresh.changes.map((c) => `${c.action} ${c.kind} ${c.name}`),
      first.changes.map((c) => `${c.action} ${c.kind} ${c.name}`),
    );
    assert.ok(first.changes.length > 40, `${first.changes.length} resources`);
    assert.deepEqual(
      first.changes.filter((c) => c.action !== Action.create).map((c) => `${c.action} ${c.kind} ${c.name}`),
      [],
    );
    // what up reports is what moto holds
    await withRun(stage, 'apply', async ({ ctx }) => {
      const fn = await ctx.clients.lambda.send(
        new GetFunctionCommand({ FunctionName: first.outputs.functionName }),
      );
      assert.equal(fn.Code?.ImageUri?.endsWith(motoImageDigest), true);
      assert.equal(fn.Configuration?.PackageType, 'Image');
      const queue = await ctx.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: first.outputs.queueUrl, AttributeNames: ['All'] }),
      );
      assert.equal(
        JSON.parse(queue.Attributes?.RedrivePolicy ?? '{}').deadLetterTargetArn,
        first.outputs.dlqArn,
      );
    });

    const plan = await up(stage, 'plan');
    assert.deepEqual(notUnchanged(plan.changes), []);
    assert.deepEqual(mutating(plan.calls), []);

    const second = await up(stage);
    assert.deepEqual(notUnchanged(second.changes), []);
    assert.deepEqual(mutating(second.calls), []);
    assert.ok(second.calls.length > 50, 'the second up read everything');
  });

  describe('an out-of-band change is repaired by exactly one mutating call', () => {
    let stage: string;
    let outputs: Awaited<ReturnType<typeof up>>['outputs'];

    before(async () => {
      if (target.skip) return;
      stage = newStage('o');
      ({ outputs } = await up(stage));
    });

    async function change(edit: (ctx: Ctx) => Promise<unknown>): Promise<string[]> {
      await withRun(stage, 'apply', ({ ctx }) => edit(ctx));
      const repair = await up(stage);
      return mutating(repair.calls);
    }

    test('the queue visibility timeout', async () => {
      const calls = await change((ctx) =>
        ctx.clients.sqs.send(
          new SetQueueAttributesCommand({
            QueueUrl: outputs.queueUrl,
            Attributes: { VisibilityTimeout: '30' },
          }),
        ),
      );
      assert.deepEqual(calls, ['sqs:SetQueueAttributes']);
      await withRun(stage, 'apply', async ({ ctx }) => {
        const { Attributes } = await ctx.clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: outputs.queueUrl,
            AttributeNames: ['VisibilityTimeout'],
          }),
        );
        assert.equal(Attributes?.VisibilityTimeout, String(ctx.config.fn.visibilityTimeoutSeconds));
      });
    });

    test('the function memory', async () => {
      const calls = await change((ctx) =>
        ctx.clients.lambda.send(
          new UpdateFunctionConfigurationCommand({ FunctionName: outputs.functionName, MemorySize: 128 }),
        ),
      );
      assert.deepEqual(calls, ['lambda:UpdateFunctionConfiguration']);
      await withRun(stage, 'apply', async ({ ctx }) => {
        const live = await ctx.clients.lambda.send(
          new GetFunctionConfigurationCommand({ FunctionName: outputs.functionName }),
        );
        assert.equal(live.MemorySize, ctx.config.fn.memoryMb);
      });
    });

    test('a deleted alarm', async () => {
      const alarm = `${outputs.app}-${outputs.stage}.dlq-messages`;
      const calls = await change((ctx) =>
        ctx.clients.cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: [alarm] })),
      );
      assert.deepEqual(calls, ['cloudwatch:PutMetricAlarm']);
      await withRun(stage, 'apply', async ({ ctx }) => {
        const { MetricAlarms } = await ctx.clients.cloudwatch.send(
          new DescribeAlarmsCommand({ AlarmNames: [alarm] }),
        );
        assert.equal(MetricAlarms?.length, 1);
      });
    });

    test('and then the plan has zero changes', async () => {
      const plan = await up(stage, 'plan');
      assert.deepEqual(notUnchanged(plan.changes), []);
    });
  });

  test('down removes everything that carries the stack’s tags, and a second down changes nothing', async () => {
    const stage = newStage('d');
    const { outputs } = await up(stage);
    const before = await withRun(stage, 'apply', async ({ ctx }) => {
      // versions and a delete marker, so down has a versioned bucket to empty
      const restore = await liftBucketPolicy(ctx.clients.s3, outputs.bucket);
      for (const body of ['a\n', 'a\nb\n']) {
        await ctx.clients.s3.send(
          new PutObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/x.csv', Body: body }),
        );
      }
      await ctx.clients.s3.send(new DeleteObjectCommand({ Bucket: outputs.bucket, Key: 'uploads/x.csv' }));
      await restore();
      return taggedWithStack(ctx);
    });
    // the check sees every kind of resource up tags, from each service
    for (const expected of [
      `:s3:::${outputs.bucket}`,
      `:sqs:us-east-1:123456789012:${outputs.app}-${stage}-uploads`,
      outputs.topicArn ?? '(no topic ARN)',
      outputs.functionArn ?? '(no function ARN)',
      ':iam::123456789012:role/',
      `:ecr:us-east-1:123456789012:repository/${outputs.app}-${stage}`,
      'vpc-endpoint/',
      ':ec2:us-east-1:123456789012:vpc/',
      ':elasticache:us-east-1:123456789012:replicationgroup:',
      ':rds:us-east-1:123456789012:db:',
      ':rds:us-east-1:123456789012:subgrp:',
      ':rds:us-east-1:123456789012:pg:',
      ':logs:us-east-1:123456789012:log-group:',
      ':cloudwatch:us-east-1:123456789012:alarm:',
      ':secretsmanager:',
    ]) {
      assert.ok(
        before.live.some((arn) => arn.includes(expected)),
        `${expected} among\n${before.live.join('\n')}`,
      );
    }

    // the DeleteObjects that empty the bucket meet the TLS-only policy as moto reads it
    await withRun(stage, 'apply', (run) => liftBucketPolicy(run.ctx.clients.s3, outputs.bucket));
    const first = await down(stage);
    assert.ok(first.changes.filter((c) => c.action === Action.delete).length > 40);
    const afterDown = await withRun(stage, 'apply', async ({ ctx }) => {
      assert.equal(await bucketExists(ctx), false);
      return taggedWithStack(ctx);
    });
    assert.deepEqual(afterDown.live, []);
    // secrets stay, scheduled for deletion, until their recovery window ends
    assert.ok(afterDown.deletedSecrets.every((arn) => before.live.includes(arn)));

    const second = await down(stage);
    assert.deepEqual(
      second.changes.filter((c) => c.action !== Action.absent).map((c) => `${c.action} ${c.kind} ${c.name}`),
      [],
    );
    assert.deepEqual(mutating(second.calls), []);
  });
});

async function bucketExists(ctx: Ctx): Promise<boolean> {
  try {
    await ctx.clients.s3.send(new HeadBucketCommand({ Bucket: ctx.names.bucket }));
    return true;
  } catch (error) {
    if (error instanceof NotFound) return false;
    throw error;
  }
}
