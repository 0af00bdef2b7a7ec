import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { MetricName, metricNamespace } from '../../lib/metrics.ts';
import { Action, type Mode } from '../../lib/reconcile.ts';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { installCloudWatchFake } from '../../test/fakes/cloudwatch.ts';
import { testContext } from '../../test/provision/context.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import { alarmPrefix, defineAlarms, type MonitoredResources } from './alarms.ts';
import { deleteDashboard, desiredDashboard, ensureDashboard } from './dashboard.ts';

const identity = { accountId: '123456789012', region: 'eu-west-1', partition: 'aws' };
const ctx = (mode: Mode = 'apply') => testContext(mode, { STAGE: 'test' }, identity);
const { config, names } = ctx();
const resources: MonitoredResources = {
  queueName: names.queue,
  dlqName: names.dlq,
  functionName: names.function,
  dbInstanceId: names.db,
};

type Row = (string | Record<string, unknown>)[];
interface Widget {
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  properties: { title?: string; metrics?: Row[]; alarms?: string[]; region?: string };
}

const widgetsOf = (watched: MonitoredResources) =>
  (desiredDashboard({ config, identity, names }, watched) as unknown as { widgets: Widget[] }).widgets;

describe('dashboard definition', () => {
  const widgets = widgetsOf(resources);
  const metricWidgets = widgets.filter((w) => w.type === 'metric');
  const titles = metricWidgets.map((w) => w.properties.title ?? '');

  test('panels follow the flow in reading order: uploads first, the database last', () => {
    const flow = [
      'Uploads',
      'Queue depth and age',
      'Dead-letter queue',
      'Function invocations',
      'Lines counted',
      'Buffer backlog',
      'Rows flushed',
      'Database connections',
    ];
    const positions = flow.map((part) => titles.findIndex((t) => t.includes(part)));
    assert.ok(
      positions.every((p) => p >= 0),
      `missing panels: ${flow.filter((_, i) => positions[i] === -1)}`,
    );
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
    );
    // reading order on the grid: top to bottom, then left to right
    const order = [...metricWidgets].sort((a, b) => a.y - b.y || a.x - b.x);
    assert.deepEqual(order, metricWidgets);
  });

  test('every widget fits the 24-unit grid and no two overlap', () => {
    const cells = new Set<string>();
    for (const w of widgets) {
      assert.ok(w.x >= 0 && w.x + w.width <= 24, `${w.properties.title} leaves the grid`);
      for (let x = w.x; x < w.x + w.width; x++) {
        for (let y = w.y; y < w.y + w.height; y++) {
          const cell = `${x},${y}`;
          assert.ok(!cells.has(cell), `${w.properties.title} overlaps at ${cell}`);
          cells.add(cell);
        }
      }
    }
  });

  test('metrics name the right namespaces and dimensions', () => {
    const rows = metricWidgets.flatMap((w) => w.properties.metrics ?? []);
    const has = (namespace: string, metric: string, dimension: string, value: string) =>
      rows.some((r) => r[0] === namespace && r[1] === metric && r[2] === dimension && r[3] === value);
    assert.ok(has('AWS/SNS', 'NumberOfMessagesPublished', 'TopicName', names.topic));
    assert.ok(has('AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', names.queue));
    assert.ok(has('AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', names.dlq));
    assert.ok(has('AWS/Lambda', 'Duration', 'FunctionName', names.function));
    assert.ok(has('AWS/RDS', 'DatabaseConnections', 'DBInstanceIdentifier', names.db));
    assert.ok(
      has('AWS/ElastiCache', 'DatabaseMemoryUsagePercentage', 'CacheClusterId', `${names.cache}-001`),
    );
    for (const metric of [
      MetricName.filesCounted,
      MetricName.linesCounted,
      MetricName.bufferBacklog,
      MetricName.rowsFlushed,
    ]) {
      assert.ok(has(metricNamespace, metric, 'service', names.base), metric);
    }
    for (const w of metricWidgets) assert.equal(w.properties.region, identity.region);
  });

  test('every metric an alarm watches has a graph, with the same dimensions', () => {
    const single = { ...resources, flushFunctionName: names.function };
    for (const watched of [resources, single]) {
      const graphed = new Set(
        widgetsOf(watched)
          .flatMap((w) => w.properties.metrics ?? [])
          .map((row) => JSON.stringify(row.filter((part) => typeof part === 'string'))),
      );
      for (const alarm of defineAlarms({ config, names }, watched)) {
        const row = [
          alarm.Namespace,
          alarm.MetricName,
          ...alarm.Dimensions.flatMap((d) => [d.Name, d.Value]),
        ];
        assert.ok(graphed.has(JSON.stringify(row)), `${alarm.AlarmName} watches ${row.join(' ')}: no graph`);
      }
    }
  });

  test('the quarantined rows are graphed beside the rows flushed', () => {
    const panel = metricWidgets.find((w) => w.properties.title?.includes('Rows flushed'));
    assert.ok(
      panel?.properties.metrics?.some((r) => r[0] === metricNamespace && r[1] === MetricName.rowsQuarantined),
    );
  });

  test('the alarm panel lists every alarm of the stack by ARN', () => {
    const panel = widgets.find((w) => w.type === 'alarm');
    const arns = panel?.properties.alarms ?? [];
    assert.ok(arns.length >= 16);
    for (const a of arns) {
      assert.ok(a.startsWith(`arn:aws:cloudwatch:eu-west-1:123456789012:alarm:${alarmPrefix(names)}`), a);
    }
  });
});

describe('ensureDashboard and deleteDashboard against the CloudWatch fake', () => {
  const fake = installCloudWatchFake({ accountId: identity.accountId, region: identity.region });
  after(() => fake.restore());
  beforeEach(() => resetCalls());

  test('plan mode creates nothing', async () => {
    const plan = ctx('plan');
    await ensureDashboard(plan, resources);
    assert.deepEqual(mutatingCalls(), []);
    assert.equal(plan.changes[0]?.action, Action.create);
  });

  test('creates the dashboard once; a second run compares and makes no mutating call', async () => {
    const out = await ensureDashboard(ctx(), resources);
    assert.equal(out.dashboardName, names.dashboard);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:PutDashboard']);

    resetCalls();
    // a body that differs only in key order and whitespace is the same dashboard
    const stored = JSON.parse(fake.dashboards.get(names.dashboard) ?? '{}') as Record<string, unknown>;
    fake.dashboards.set(
      names.dashboard,
      JSON.stringify(Object.fromEntries(Object.entries(stored).reverse()), null, 2),
    );
    const second = ctx();
    await ensureDashboard(second, resources);
    assert.deepEqual(mutatingCalls(), []);
    assert.equal(second.changes[0]?.action, Action.unchanged);
  });

  test('a dashboard edited by hand is put back', async () => {
    const stored = JSON.parse(fake.dashboards.get(names.dashboard) ?? '{}') as { widgets: unknown[] };
    stored.widgets.pop();
    fake.dashboards.set(names.dashboard, JSON.stringify(stored));
    const run = ctx();
    await ensureDashboard(run, resources);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:PutDashboard']);
    assert.equal(run.changes[0]?.action, Action.update);
    assert.deepEqual(
      JSON.parse(fake.dashboards.get(names.dashboard) ?? ''),
      desiredDashboard({ config, identity, names }, resources),
    );
  });

  test('a refused call names the step and the IAM action to check', async () => {
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      [
        'cloudwatch:GetDashboard',
        () => ensureDashboard(ctx(), resources),
        /^cannot read dashboard ada-linecount-test: AccessDenied: .*\(check cloudwatch:GetDashboard permission\)$/,
      ],
      [
        'cloudwatch:DeleteDashboards',
        () => deleteDashboard(ctx()),
        /^cannot delete dashboard ada-linecount-test: AccessDenied: .*\(check cloudwatch:DeleteDashboards permission\)$/,
      ],
    ];
    for (const [action, run, message] of cases) {
      await rejectsWithoutAction(identity, action, run, message);
    }
  });

  test('delete removes it, and a second delete is a no-op', async () => {
    await deleteDashboard(ctx());
    assert.equal(fake.dashboards.has(names.dashboard), false);
    assert.deepEqual(callNames(mutatingCalls()), ['cloudwatch:DeleteDashboards']);
    resetCalls();
    const again = ctx();
    await deleteDashboard(again);
    assert.deepEqual(mutatingCalls(), []);
    assert.equal(again.changes[0]?.action, Action.absent);
  });
});
