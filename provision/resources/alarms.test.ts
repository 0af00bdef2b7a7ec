import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { ComparisonOperator } from '@aws-sdk/client-cloudwatch';
import { MetricName, metricNamespace } from '../../lib/metrics.ts';
import { stackNames } from '../../lib/names.ts';
import { Action, type Mode } from '../../lib/reconcile.ts';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { installCloudWatchFake } from '../../test/fakes/cloudwatch.ts';
import { testContext } from '../../test/provision/context.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import {
  type AlarmInputs,
  alarmDrift,
  alarmPrefix,
  type DesiredAlarm,
  deleteAlarms,
  desiredAlarms,
  ensureAlarms,
  memberClusterIds,
  TreatMissingData,
} from './alarms.ts';

const identity = { accountId: '123456789012', region: 'eu-west-1', partition: 'aws' };
const env = { STAGE: 'test', FUNCTION_TIMEOUT_SECONDS: '60' };
const ctx = (mode: Mode = 'apply') => testContext(mode, env, identity);
const { config, names } = ctx();
const topicArn = `arn:aws:sns:${identity.region}:${identity.accountId}:${names.alertsTopic}`;
const inputs: AlarmInputs = {
  queueName: names.queue,
  dlqName: names.dlq,
  functionName: names.function,
  dbInstanceId: names.db,
  alertsTopicArn: topicArn,
};

function byName(alarms: DesiredAlarm[], suffix: string): DesiredAlarm {
  const alarm = alarms.find((a) => a.AlarmName === `${alarmPrefix(names)}${suffix}`);
  assert.ok(alarm, `no alarm named ${suffix}: ${alarms.map((a) => a.AlarmName).join(', ')}`);
  return alarm;
}

function dims(alarm: DesiredAlarm): Record<string, string> {
  return Object.fromEntries(alarm.Dimensions.map((d) => [d.Name, d.Value]));
}

describe('alarm definitions', () => {
  const alarms = desiredAlarms({ names, config }, inputs);

  test('each alarm watches the right metric with a deliberate threshold and missing-data rule', () => {
    const [node1, node2] = [`${names.cache}-001`, `${names.cache}-002`];
    const db = { DBInstanceIdentifier: names.db };
    const service = { service: 'ada-linecount-test' };
    // [alarm, namespace, metric, dimensions, threshold, operator, missing data]; unless
    // given, an alarm fires above the threshold and missing data is not breaching
    const expected: [string, string, string, Record<string, string>, number, string?, string?][] = [
      ['dlq-messages', 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: names.dlq }, 0],
      [
        'queue-oldest-message-age',
        'AWS/SQS',
        'ApproximateAgeOfOldestMessage',
        { QueueName: names.queue },
        900,
      ],
      ['topic-delivery-failures', 'AWS/SNS', 'NumberOfNotificationsFailed', { TopicName: names.topic }, 0],
      ['function-errors', 'AWS/Lambda', 'Errors', { FunctionName: names.function }, 0],
      ['function-throttles', 'AWS/Lambda', 'Throttles', { FunctionName: names.function }, 0],
      ['function-duration-near-timeout', 'AWS/Lambda', 'Duration', { FunctionName: names.function }, 48_000],
      ['flush-function-errors', 'AWS/Lambda', 'Errors', { FunctionName: names.flushFunction }, 0],
      [
        `cache-memory-${node1}`,
        'AWS/ElastiCache',
        'DatabaseMemoryUsagePercentage',
        { CacheClusterId: node1 },
        80,
      ],
      [`cache-evictions-${node2}`, 'AWS/ElastiCache', 'Evictions', { CacheClusterId: node2 }, 0],
      ['db-cpu', 'AWS/RDS', 'CPUUtilization', db, 80],
      ['db-free-storage', 'AWS/RDS', 'FreeStorageSpace', db, 2 * 1024 ** 3, 'LessThanThreshold', 'breaching'],
      ['db-connections', 'AWS/RDS', 'DatabaseConnections', db, 24],
      [
        'flush-lag',
        metricNamespace,
        MetricName.oldestBufferedAge,
        service,
        300,
        'GreaterThanThreshold',
        'breaching',
      ],
      ['flush-failures', metricNamespace, MetricName.flushFailures, service, 0],
      ['rows-quarantined', metricNamespace, MetricName.rowsQuarantined, service, 0],
    ];
    for (const [suffix, namespace, metric, dimensions, threshold, operator, missing] of expected) {
      const alarm = byName(alarms, suffix);
      assert.equal(alarm.Namespace, namespace, suffix);
      assert.equal(alarm.MetricName, metric, suffix);
      assert.deepEqual(dims(alarm), dimensions, suffix);
      assert.equal(alarm.Threshold, threshold, suffix);
      assert.equal(alarm.ComparisonOperator, operator ?? 'GreaterThanThreshold', suffix);
      assert.equal(alarm.TreatMissingData, missing ?? 'notBreaching', suffix);
    }
  });

  test('the function duration alarm uses the p99 of the duration against 80% of the configured timeout', () => {
    const slow = desiredAlarms(
      { names, config: { ...config, fn: { ...config.fn, timeoutSeconds: 120 } } },
      inputs,
    );
    const alarm = byName(slow, 'function-duration-near-timeout');
    assert.equal(alarm.ExtendedStatistic, 'p99');
    assert.equal(alarm.Statistic, undefined);
    assert.equal(alarm.Threshold, 96_000);
  });

  test('every alarm notifies the alerts topic on alarm and on recovery, and explains itself with a repair command', () => {
    assert.ok(alarms.length >= 16, `only ${alarms.length} alarms`);
    for (const alarm of alarms) {
      assert.deepEqual(alarm.AlarmActions, [topicArn], alarm.AlarmName);
      assert.deepEqual(alarm.OKActions, [topicArn], alarm.AlarmName);
      assert.equal(alarm.ActionsEnabled, true);
      assert.match(alarm.AlarmDescription, /npx tsx (ops|provision)\/\w+\.ts/, alarm.AlarmName);
      assert.match(alarm.AlarmDescription, /Missing data is (not )?breaching/, alarm.AlarmName);
      assert.ok(alarm.AlarmDescription.length <= 1024, `${alarm.AlarmName} description is too long`);
      assert.ok(alarm.AlarmName.length <= 255);
      assert.ok(alarm.DatapointsToAlarm <= alarm.EvaluationPeriods, alarm.AlarmName);
      assert.ok(
        (alarm.Statistic === undefined) !== (alarm.ExtendedStatistic === undefined),
        `${alarm.AlarmName} needs exactly one statistic`,
      );
      assert.ok(Object.values(TreatMissingData).includes(alarm.TreatMissingData));
    }
    assert.equal(new Set(alarms.map((a) => a.AlarmName)).size, alarms.length, 'alarm names are unique');
  });

  test('the flush lag alarm needs five silent or lagging minutes in a row', () => {
    const alarm = byName(alarms, 'flush-lag');
    assert.equal(alarm.Period, 60);
    assert.equal(alarm.EvaluationPeriods, 5);
    assert.equal(alarm.DatapointsToAlarm, 5);
    assert.equal(alarm.Statistic, 'Maximum');
  });

  test('cache alarms follow the given member clusters, one pair per node', () => {
    const three = desiredAlarms({ names, config }, { ...inputs, cacheClusterIds: memberClusterIds('c', 3) });
    const cache = three.filter((a) => a.Namespace === 'AWS/ElastiCache').map((a) => dims(a).CacheClusterId);
    assert.deepEqual(cache.sort(), ['c-001', 'c-001', 'c-002', 'c-002', 'c-003', 'c-003']);
  });

  test('a flush handler inside the counting function gets no second set of function alarms', () => {
    const single = desiredAlarms({ names, config }, { ...inputs, flushFunctionName: names.function });
    assert.equal(single.filter((a) => a.Namespace === 'AWS/Lambda').length, 3);
  });

  test('no alarm name of another stage starts with this stage prefix', () => {
    const other = stackNames({ app: 'ada-linecount', stage: 'test-b' }, identity);
    assert.ok(
      !desiredAlarms({ names: other, config }, inputs).some((a) =>
        a.AlarmName.startsWith(alarmPrefix(names)),
      ),
    );
  });
});

describe('alarm drift', () => {
  const desired = desiredAlarms({ names, config }, inputs)[0] as DesiredAlarm;
  const live = {
    ...desired,
    AlarmArn: 'arn',
    StateValue: 'OK' as const,
    // CloudWatch returns lists in its own order
    AlarmActions: [...desired.AlarmActions].reverse(),
  };

  const cases: { name: string; change: Record<string, unknown>; fields: string[] }[] = [
    { name: 'in sync', change: {}, fields: [] },
    { name: 'threshold', change: { Threshold: 5 }, fields: ['Threshold'] },
    { name: 'missing data', change: { TreatMissingData: 'missing' }, fields: ['TreatMissingData'] },
    {
      name: 'actions removed',
      change: { AlarmActions: [], OKActions: undefined },
      fields: ['AlarmActions', 'OKActions'],
    },
    {
      name: 'statistic swapped',
      change: { Statistic: undefined, ExtendedStatistic: 'p90' },
      fields: ['Statistic', 'ExtendedStatistic'],
    },
    {
      name: 'dimension value',
      change: { Dimensions: [{ Name: 'QueueName', Value: 'other' }] },
      fields: ['Dimensions'],
    },
    {
      name: 'operator',
      change: { ComparisonOperator: ComparisonOperator.LessThanThreshold },
      fields: ['ComparisonOperator'],
    },
    { name: 'actions disabled', change: { ActionsEnabled: false }, fields: ['ActionsEnabled'] },
  ];
  for (const { name, change, fields } of cases) {
    test(`reports ${name === 'in sync' ? 'nothing when in sync' : `a changed ${name}`}`, () => {
      const drift = alarmDrift(desired, { ...live, ...change });
      assert.deepEqual(
        drift.map((d) => d.field),
        fields,
      );
    });
  }
});

describe('ensureAlarms and deleteAlarms against the CloudWatch fake', () => {
  const fake = installCloudWatchFake({ accountId: identity.accountId, region: identity.region });
  after(() => fake.restore());
  beforeEach(() => resetCalls());

  test('plan mode on an empty account lists the alarms it would create and makes no mutating call', async () => {
    const plan = ctx('plan');
    await ensureAlarms(plan, inputs);
    assert.deepEqual(mutatingCalls(), []);
    assert.ok(plan.changes.length > 0 && plan.changes.every((c) => c.action === Action.create));
    assert.equal(fake.alarms.size, 0);
  });

  test('creates every alarm once, tagged, and a second run makes no mutating call', async () => {
    const first = ctx();
    const out = await ensureAlarms(first, inputs);
    const desired = desiredAlarms({ names, config }, inputs);
    assert.equal(fake.alarms.size, desired.length);
    assert.equal(mutatingCalls().length, desired.length);
    assert.ok(mutatingCalls().every((c) => c.command === 'PutMetricAlarm'));
    assert.deepEqual(
      out.alarmNames,
      desired.map((a) => a.AlarmName),
    );
    assert.equal(
      out.alarmArns[0],
      `arn:aws:cloudwatch:eu-west-1:123456789012:alarm:${desired[0]?.AlarmName}`,
    );
    for (const alarm of fake.alarms.values()) {
      assert.equal(fake.tags.get(alarm.AlarmArn ?? '')?.get('stage'), 'test');
    }

    resetCalls();
    const second = ctx();
    await ensureAlarms(second, inputs);
    assert.deepEqual(mutatingCalls(), [], callNames().join(' '));
    assert.ok(second.changes.every((c) => c.action === Action.unchanged));
  });

  test('a threshold changed by hand is put back, and only that alarm is touched', async () => {
    const name = `${alarmPrefix(names)}queue-oldest-message-age`;
    const live = fake.alarms.get(name);
    assert.ok(live);
    live.Threshold = 60_000;
    const run = ctx();
    await ensureAlarms(run, inputs);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:PutMetricAlarm']);
    assert.equal(fake.alarms.get(name)?.Threshold, 900);
    const change = run.changes.find((c) => c.action === Action.update);
    assert.equal(change?.name, name);
    assert.deepEqual(change?.fields, [{ field: 'Threshold', from: 60_000, to: 900 }]);
  });

  test('a removed tag is restored with TagResource, without re-putting the alarm', async () => {
    const live = fake.alarms.get(`${alarmPrefix(names)}db-cpu`);
    fake.tags.get(live?.AlarmArn ?? '')?.delete('stage');
    await ensureAlarms(ctx(), inputs);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:TagResource']);
    assert.equal(fake.tags.get(live?.AlarmArn ?? '')?.get('stage'), 'test');
  });

  test('an alarm of ours that is no longer desired is deleted; foreign alarms are left alone', async () => {
    const foreign = 'someone-elses-alarm';
    fake.alarms.set(foreign, { AlarmName: foreign });
    const fewer = { ...inputs, cacheClusterIds: [`${names.cache}-001`] };
    await ensureAlarms(ctx(), fewer);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:DeleteAlarms']);
    assert.ok(![...fake.alarms.keys()].some((n) => n.endsWith(`${names.cache}-002`)));
    assert.ok(fake.alarms.has(foreign));
    await ensureAlarms(ctx(), inputs);
  });

  test('a refused call names the step and the IAM action to check', async () => {
    const dbCpu = `${alarmPrefix(names)}db-cpu`;
    const live = fake.alarms.get(dbCpu);
    assert.ok(live);
    live.Threshold = 1;
    const cases: [string, RegExp][] = [
      [
        'cloudwatch:DescribeAlarms',
        /^cannot list alarms ada-linecount-test\.\*: AccessDenied: .*\(check cloudwatch:DescribeAlarms permission\)$/,
      ],
      [
        'cloudwatch:ListTagsForResource',
        /^cannot read alarm ada-linecount-test\.\S+: AccessDenied: .*\(check cloudwatch:ListTagsForResource permission\)$/,
      ],
      [
        'cloudwatch:PutMetricAlarm',
        /^cannot update alarm ada-linecount-test\.db-cpu: AccessDenied: .*\(check cloudwatch:PutMetricAlarm and cloudwatch:TagResource permissions\)$/,
      ],
    ];
    for (const [action, message] of cases) {
      await rejectsWithoutAction(identity, action, () => ensureAlarms(ctx(), inputs), message);
    }
    await ensureAlarms(ctx(), inputs);
    assert.equal(fake.alarms.get(dbCpu)?.Threshold, 80);
  });

  test('delete removes all of ours, and a second delete is a no-op', async () => {
    const foreign = 'someone-elses-alarm';
    await deleteAlarms(ctx());
    assert.deepEqual([...fake.alarms.keys()], [foreign]);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:DeleteAlarms']);

    resetCalls();
    const again = ctx();
    await deleteAlarms(again);
    assert.deepEqual(mutatingCalls(), []);
    assert.equal(again.changes[0]?.action, Action.absent);
  });

  test('listing pages through more alarms than one DescribeAlarms page holds', async () => {
    const many = { ...inputs, cacheClusterIds: memberClusterIds(names.cache, 30) };
    await ensureAlarms(ctx(), many);
    assert.ok(fake.alarms.size > 60);
    resetCalls();
    await ensureAlarms(ctx(), many);
    assert.deepEqual(mutatingCalls(), []);
    await deleteAlarms(ctx());
    assert.deepEqual([...fake.alarms.keys()], ['someone-elses-alarm']);
  });
});
