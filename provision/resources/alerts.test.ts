import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTagsForResourceCommand,
  SetTopicAttributesCommand,
  SNSClient,
  UntagResourceCommand,
} from '@aws-sdk/client-sns';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import type { Clients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { Action, type Ctx } from '../../lib/reconcile.ts';
import { alarmPrefix } from './alarms.ts';
import { deleteAlerts, desiredAlerts, ensureAlerts, findAlerts } from './alerts.ts';

// The alerts topic is reconciled against the fauxqs SNS emulator, whose ARNs
// carry account 000000000000 and the request's region.
const identity = { accountId: '000000000000', region: 'us-east-1', partition: 'aws' };
const email = 'ops@example.com';
const config = loadDeployConfig({ AWS_REGION: identity.region, STAGE: 'alerts', ALERT_EMAIL: email });
const names = stackNames(config.stack, identity);

let server: FauxqsServer;
let sns: SNSClient;

before(async () => {
  server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  sns = new SNSClient({
    region: identity.region,
    endpoint: `http://127.0.0.1:${server.port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

after(async () => {
  sns.destroy();
  await server.stop();
});

function ctx(mode: Ctx['mode'] = 'apply', overrides: Partial<Ctx['config']['provision']> = {}): Ctx {
  return {
    config: { ...config, provision: { ...config.provision, ...overrides } },
    clients: { sns } as unknown as Clients,
    log: { info: () => {}, warn: () => {}, progress: () => {} },
    mode,
    identity,
    names,
    changes: [],
  };
}

async function emailSubscriptions(topicArn: string): Promise<string[]> {
  const { Subscriptions } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn }));
  return (Subscriptions ?? []).filter((s) => s.Protocol === 'email').map((s) => s.Endpoint ?? '');
}

describe('alerts topic policy', () => {
  test('only CloudWatch alarms of this stack in this account may publish', () => {
    const { policy } = desiredAlerts({ config, identity, names });
    const allow = policy.Statement.filter((s) => s.Effect === 'Allow');
    assert.equal(allow.length, 1);
    assert.deepEqual(allow[0]?.Principal, { Service: 'cloudwatch.amazonaws.com' });
    assert.equal(allow[0]?.Action, 'sns:Publish');
    assert.deepEqual(allow[0]?.Condition, {
      StringEquals: { 'aws:SourceAccount': identity.accountId },
      ArnLike: { 'aws:SourceArn': `arn:aws:cloudwatch:us-east-1:000000000000:alarm:${alarmPrefix(names)}*` },
    });
  });
});

describe('ensureAlerts and deleteAlerts against the SNS emulator', () => {
  test('plan mode on an empty account creates nothing and returns a placeholder', async () => {
    const plan = ctx('plan');
    const out = await ensureAlerts(plan);
    assert.match(out.topicArn, /known after apply/);
    assert.deepEqual(
      plan.changes.map((c) => c.action),
      [Action.create, Action.create],
    );
    assert.equal(await findAlerts(plan), undefined);
  });

  test('creates the topic with its policy, tags and one pending e-mail subscription', async () => {
    const run = ctx();
    const { topicArn } = await ensureAlerts(run);
    assert.equal(topicArn, `arn:aws:sns:us-east-1:000000000000:${names.alertsTopic}`);
    const { Attributes } = await sns.send(new GetTopicAttributesCommand({ TopicArn: topicArn }));
    assert.deepEqual(JSON.parse(Attributes?.Policy ?? '{}'), desiredAlerts(run).policy);
    const { Tags } = await sns.send(new ListTagsForResourceCommand({ ResourceArn: topicArn }));
    assert.ok(Tags?.some((t) => t.Key === 'stage' && t.Value === 'alerts'));
    assert.deepEqual(await emailSubscriptions(topicArn), [email]);
    // the recipient has not confirmed: SNS counts it as pending
    assert.equal(Attributes?.SubscriptionsPending, '1');
  });

  test('a second run changes nothing and never subscribes the address again', async () => {
    const run = ctx();
    const { topicArn } = await ensureAlerts(run);
    assert.deepEqual(
      run.changes.map((c) => c.action),
      [Action.unchanged, Action.unchanged],
    );
    assert.deepEqual(await emailSubscriptions(topicArn), [email]);
  });

  test('a policy and a tag changed by hand are put back', async () => {
    const topicArn = desiredAlerts(ctx()).arn;
    await sns.send(
      new SetTopicAttributesCommand({
        TopicArn: topicArn,
        AttributeName: 'Policy',
        AttributeValue: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
      }),
    );
    await sns.send(new UntagResourceCommand({ ResourceArn: topicArn, TagKeys: ['stage'] }));
    const run = ctx();
    await ensureAlerts(run);
    const change = run.changes[0];
    assert.equal(change?.action, Action.update);
    assert.deepEqual(change?.fields?.map((f) => f.field).sort(), ['Policy', 'tags']);
    const live = await findAlerts(run);
    assert.deepEqual(live?.policy, desiredAlerts(run).policy);
    assert.equal(live?.tags.stage, 'alerts');
    const again = ctx();
    await ensureAlerts(again);
    assert.equal(again.changes[0]?.action, Action.unchanged);
  });

  test('without ALERT_EMAIL no subscription is made or removed', async () => {
    const run = ctx('apply', { alertEmail: undefined });
    const { topicArn } = await ensureAlerts(run);
    assert.equal(run.changes.length, 1);
    assert.deepEqual(await emailSubscriptions(topicArn), [email]);
  });

  test('delete removes the topic and its subscriptions; a second delete is a no-op', async () => {
    const run = ctx();
    await deleteAlerts(run);
    assert.equal(run.changes[0]?.action, Action.delete);
    assert.equal(await findAlerts(run), undefined);
    const { Subscriptions } = await sns.send(
      new ListSubscriptionsByTopicCommand({ TopicArn: desiredAlerts(run).arn }),
    );
    assert.deepEqual(Subscriptions ?? [], []);
    const again = ctx();
    await deleteAlerts(again);
    assert.equal(again.changes[0]?.action, Action.absent);
  });
});
