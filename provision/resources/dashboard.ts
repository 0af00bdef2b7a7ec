import {
  DashboardNotFoundError,
  DeleteDashboardsCommand,
  GetDashboardCommand,
  PutDashboardCommand,
  ResourceNotFound,
} from '@aws-sdk/client-cloudwatch';
import { MetricName, metricNamespace, serviceDimension } from '../../lib/metrics.ts';
import { type Ctx, destroy, type Resource, reconcile, sameValue } from '../../lib/reconcile.ts';
import { alarmArn, defineAlarms, type MonitoredResources, Threshold, watched } from './alarms.ts';

// A CloudWatch dashboard is a grid 24 units wide (dashboard body structure)
const gridWidth = 24;
const panelWidth = 6;
const panelHeight = 6;

// how a metric is drawn: stat, label, axis
type Drawing = Record<string, unknown>;
type MetricRow = (string | Drawing)[];

// The graphed metrics of one resource: each row is namespace, metric, the
// resource's dimension and value, and how it is drawn.
function metricsOf(namespace: string, dimension: string, value: string) {
  return (metric: string, drawing: Drawing): MetricRow => [namespace, metric, dimension, value, drawing];
}

type DashboardContext = Pick<Ctx, 'config' | 'identity' | 'names'>;

// The dashboard reads the flow left to right, top to bottom, in the order an
// upload travels. Uploads are shown as the uploads topic's
// NumberOfMessagesPublished (one per S3 ObjectCreated notification) beside the
// function's FilesCounted: S3's own PutRequests metric needs a paid request
// metrics configuration on the bucket, and the notification is what starts
// the flow anyway.
export function desiredDashboard(ctx: DashboardContext, resources: MonitoredResources) {
  const { names, identity } = ctx;
  const region = identity.region;
  const fn = resources.functionName;
  const { flushFunction, cacheIds } = watched(names, resources);
  const topic = metricsOf('AWS/SNS', 'TopicName', names.topic);
  const queue = metricsOf('AWS/SQS', 'QueueName', resources.queueName);
  const dlq = metricsOf('AWS/SQS', 'QueueName', resources.dlqName);
  const db = metricsOf('AWS/RDS', 'DBInstanceIdentifier', resources.dbInstanceId);
  const own = metricsOf(metricNamespace, serviceDimension, names.base);
  const countingFunction = metricsOf('AWS/Lambda', 'FunctionName', fn);
  // errors, throttles and duration of one function
  const lambda = (name: string): MetricRow[] => {
    const metric = metricsOf('AWS/Lambda', 'FunctionName', name);
    return [
      metric('Errors', { stat: 'Sum' }),
      metric('Throttles', { stat: 'Sum' }),
      metric('Duration', { stat: 'p99', label: 'duration p99 (ms)', yAxis: 'right' }),
    ];
  };
  // an alarm's threshold drawn on the right axis
  const alarmLine = (label: string, value: number) => ({
    annotations: { horizontal: [{ label, value, yAxis: 'right' }] },
  });

  const panels: { title: string; metrics: MetricRow[]; extra?: Record<string, unknown> }[] = [
    {
      title: '1 Uploads (S3 notifications → SNS)',
      metrics: [
        topic('NumberOfMessagesPublished', { stat: 'Sum', label: 'notifications' }),
        topic('NumberOfNotificationsFailed', { stat: 'Sum', label: 'delivery failures' }),
        own(MetricName.filesCounted, { stat: 'Sum', label: 'files counted' }),
        own(MetricName.duplicatesSkipped, { stat: 'Sum', label: 'duplicates skipped' }),
      ],
    },
    {
      title: '2 Queue depth and age',
      metrics: [
        queue('ApproximateNumberOfMessagesVisible', { stat: 'Maximum', label: 'waiting' }),
        queue('ApproximateNumberOfMessagesNotVisible', { stat: 'Maximum', label: 'in flight' }),
        queue('ApproximateAgeOfOldestMessage', { stat: 'Maximum', label: 'oldest age (s)', yAxis: 'right' }),
      ],
      extra: alarmLine('age alarm', Threshold.queueOldestAgeSeconds),
    },
    {
      title: '3 Dead-letter queue',
      metrics: [dlq('ApproximateNumberOfMessagesVisible', { stat: 'Maximum', label: 'dead letters' })],
    },
    {
      title: '4 Function invocations, errors, duration',
      metrics: [countingFunction('Invocations', { stat: 'Sum' }), ...lambda(fn)],
    },
    {
      title: '5 Lines counted',
      metrics: [
        own(MetricName.linesCounted, { stat: 'Sum', label: 'lines' }),
        own(MetricName.objectsSkipped, { stat: 'Sum', label: 'objects skipped', yAxis: 'right' }),
      ],
    },
    {
      title: '6 Buffer backlog (cache)',
      metrics: [
        own(MetricName.bufferBacklog, { stat: 'Maximum', label: 'buffered records' }),
        own(MetricName.oldestBufferedAge, { stat: 'Maximum', label: 'oldest age (s)', yAxis: 'right' }),
      ],
      extra: alarmLine('flush lag alarm', Threshold.oldestBufferedAgeSeconds),
    },
    {
      title: '7 Rows flushed to PostgreSQL',
      metrics: [
        own(MetricName.rowsFlushed, { stat: 'Sum', label: 'rows' }),
        own(MetricName.rowsQuarantined, { stat: 'Sum', label: 'rows quarantined' }),
        own(MetricName.flushFailures, { stat: 'Sum', label: 'failed flushes' }),
        own(MetricName.flushLatency, { stat: 'p99', label: 'flush p99 (ms)', yAxis: 'right' }),
      ],
    },
    {
      title: '8 Database connections',
      metrics: [
        db('DatabaseConnections', { stat: 'Maximum', label: 'connections' }),
        db('CPUUtilization', { stat: 'Average', label: 'CPU %', yAxis: 'right' }),
      ],
    },
    {
      title: 'Cache memory and evictions',
      metrics: cacheIds.flatMap((id): MetricRow[] => {
        const node = metricsOf('AWS/ElastiCache', 'CacheClusterId', id);
        return [
          node('DatabaseMemoryUsagePercentage', { stat: 'Maximum', label: `${id} memory %` }),
          node('Evictions', { stat: 'Sum', label: `${id} evictions`, yAxis: 'right' }),
        ];
      }),
    },
    {
      title: 'Database free storage (bytes)',
      metrics: [db('FreeStorageSpace', { stat: 'Minimum', label: 'free storage' })],
    },
  ];
  // a flush handler inside the counting function is already on panel 4
  if (flushFunction !== undefined) {
    panels.push({ title: 'Flush function errors, throttles, duration', metrics: lambda(flushFunction) });
  }

  const header = 2;
  const alarmsHeight = 3;
  const perRow = gridWidth / panelWidth;
  const widgets = [
    {
      type: 'text',
      x: 0,
      y: 0,
      width: gridWidth,
      height: header,
      properties: {
        markdown:
          `## ${names.base}: upload → S3 → SNS → SQS → Lambda → cache buffer → PostgreSQL\n` +
          'Panels follow the flow, left to right. Repair with `npx tsx ops/status.ts`, `ops/redrive.ts`, `ops/audit.ts --fix`.',
      },
    },
    {
      type: 'alarm',
      x: 0,
      y: header,
      width: gridWidth,
      height: alarmsHeight,
      properties: {
        title: 'Alarms',
        alarms: defineAlarms(ctx, resources).map((alarm) => alarmArn(ctx, alarm.AlarmName)),
        sortBy: 'stateUpdatedTimestamp',
      },
    },
    ...panels.map((panel, i) => ({
      type: 'metric',
      x: (i % perRow) * panelWidth,
      y: header + alarmsHeight + Math.floor(i / perRow) * panelHeight,
      width: panelWidth,
      height: panelHeight,
      properties: {
        title: panel.title,
        region,
        view: 'timeSeries',
        stacked: false,
        period: 60,
        metrics: panel.metrics,
        ...panel.extra,
      },
    })),
  ];
  return { start: '-PT6H', periodOverride: 'inherit', widgets };
}

interface DashboardSpec {
  name: string;
  body: ReturnType<typeof desiredDashboard>;
}

// GetDashboard answers ResourceNotFound (modelled as DashboardNotFoundError)
const isNotFound = (error: unknown) =>
  error instanceof DashboardNotFoundError || error instanceof ResourceNotFound;

async function putDashboard(ctx: Ctx, desired: DashboardSpec): Promise<void> {
  const { DashboardValidationMessages } = await ctx.clients.cloudwatch.send(
    new PutDashboardCommand({ DashboardName: desired.name, DashboardBody: JSON.stringify(desired.body) }),
  );
  // PutDashboard stores a dashboard with warnings; they are worth reading
  for (const message of DashboardValidationMessages ?? []) {
    ctx.log.warn(`dashboard ${desired.name}: ${message.DataPath ?? ''} ${message.Message ?? ''}`);
  }
}

// The live state is the stored body, parsed.
const dashboard: Resource<DashboardSpec, unknown, { dashboardName: string }> = {
  kind: 'dashboard',
  permissions: {
    find: 'cloudwatch:GetDashboard',
    create: 'cloudwatch:PutDashboard',
    update: 'cloudwatch:PutDashboard',
    delete: 'cloudwatch:DeleteDashboards',
  },
  async find(ctx, name) {
    const { DashboardBody } = await ctx.clients.cloudwatch.send(
      new GetDashboardCommand({ DashboardName: name }),
    );
    return DashboardBody === undefined ? undefined : JSON.parse(DashboardBody);
  },
  // sameValue compares canonical JSON: key order carries no meaning
  drift: (desired, actual) =>
    sameValue(desired.body, actual) ? [] : [{ field: 'DashboardBody', from: '(changed)', to: '(desired)' }],
  async create(ctx, desired) {
    await putDashboard(ctx, desired);
    return desired.body;
  },
  update: (ctx, desired) => putDashboard(ctx, desired),
  outputs: (_ctx, desired) => ({ dashboardName: desired.name }),
  remove: (ctx, name) => ctx.clients.cloudwatch.send(new DeleteDashboardsCommand({ DashboardNames: [name] })),
  isNotFound,
};

export const ensureDashboard = (ctx: Ctx, resources: MonitoredResources) =>
  reconcile(ctx, dashboard, { name: ctx.names.dashboard, body: desiredDashboard(ctx, resources) });

export const deleteDashboard = (ctx: Ctx) => destroy(ctx, dashboard, ctx.names.dashboard);
