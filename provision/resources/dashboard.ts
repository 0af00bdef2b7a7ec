import {
  DashboardNotFoundError,
  DeleteDashboardsCommand,
  GetDashboardCommand,
  PutDashboardCommand,
  ResourceNotFound,
} from '@aws-sdk/client-cloudwatch';
import { MetricName, metricNamespace, serviceDimension } from '../../lib/metrics.ts';
import { type Ctx, destroy, type Resource, reconcile, sameValue } from '../../lib/reconcile.ts';
import { alarmArn, defineAlarms, type MonitoredResources, memberClusterIds, Threshold } from './alarms.ts';

// A CloudWatch dashboard is a grid 24 units wide (dashboard body structure)
const gridWidth = 24;
const panelWidth = 6;
const panelHeight = 6;

type MetricRow = (string | Record<string, unknown>)[];

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
  const service = [serviceDimension, names.base];
  const fn = resources.functionName;
  const flushFn = resources.flushFunctionName ?? names.flushFunction;
  const topic = ['TopicName', names.topic];
  const queue = ['QueueName', resources.queueName];
  const dlq = ['QueueName', resources.dlqName];
  const db = ['DBInstanceIdentifier', resources.dbInstanceId];
  const cacheIds = resources.cacheClusterIds ?? memberClusterIds(names.cache, 2);
  const ownMetric = (metric: string, options: Record<string, unknown>): MetricRow => [
    metricNamespace,
    metric,
    ...service,
    options,
  ];
  // errors, throttles and duration of one function
  const lambda = (name: string): MetricRow[] => [
    ['AWS/Lambda', 'Errors', 'FunctionName', name, { stat: 'Sum' }],
    ['AWS/Lambda', 'Throttles', 'FunctionName', name, { stat: 'Sum' }],
    [
      'AWS/Lambda',
      'Duration',
      'FunctionName',
      name,
      { stat: 'p99', label: 'duration p99 (ms)', yAxis: 'right' },
    ],
  ];

  const panels: { title: string; metrics: MetricRow[]; extra?: Record<string, unknown> }[] = [
    {
      title: '1 Uploads (S3 notifications → SNS)',
      metrics: [
        ['AWS/SNS', 'NumberOfMessagesPublished', ...topic, { stat: 'Sum', label: 'notifications' }],
        ['AWS/SNS', 'NumberOfNotificationsFailed', ...topic, { stat: 'Sum', label: 'delivery failures' }],
        ownMetric(MetricName.filesCounted, { stat: 'Sum', label: 'files counted' }),
        ownMetric(MetricName.duplicatesSkipped, { stat: 'Sum', label: 'duplicates skipped' }),
      ],
    },
    {
      title: '2 Queue depth and age',
      metrics: [
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', ...queue, { stat: 'Maximum', label: 'waiting' }],
        [
          'AWS/SQS',
          'ApproximateNumberOfMessagesNotVisible',
          ...queue,
          { stat: 'Maximum', label: 'in flight' },
        ],
        [
          'AWS/SQS',
          'ApproximateAgeOfOldestMessage',
          ...queue,
          { stat: 'Maximum', label: 'oldest age (s)', yAxis: 'right' },
        ],
      ],
      extra: {
        annotations: {
          horizontal: [{ label: 'age alarm', value: Threshold.queueOldestAgeSeconds, yAxis: 'right' }],
        },
      },
    },
    {
      title: '3 Dead-letter queue',
      metrics: [
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', ...dlq, { stat: 'Maximum', label: 'dead letters' }],
      ],
    },
    {
      title: '4 Function invocations, errors, duration',
      metrics: [['AWS/Lambda', 'Invocations', 'FunctionName', fn, { stat: 'Sum' }], ...lambda(fn)],
    },
    {
      title: '5 Lines counted',
      metrics: [
        ownMetric(MetricName.linesCounted, { stat: 'Sum', label: 'lines' }),
        ownMetric(MetricName.objectsSkipped, { stat: 'Sum', label: 'objects skipped', yAxis: 'right' }),
      ],
    },
    {
      title: '6 Buffer backlog (cache)',
      metrics: [
        ownMetric(MetricName.bufferBacklog, { stat: 'Maximum', label: 'buffered records' }),
        ownMetric(MetricName.oldestBufferedAge, { stat: 'Maximum', label: 'oldest age (s)', yAxis: 'right' }),
      ],
      extra: {
        annotations: {
          horizontal: [
            { label: 'flush lag alarm', value: Threshold.oldestBufferedAgeSeconds, yAxis: 'right' },
          ],
        },
      },
    },
    {
      title: '7 Rows flushed to PostgreSQL',
      metrics: [
        ownMetric(MetricName.rowsFlushed, { stat: 'Sum', label: 'rows' }),
        ownMetric(MetricName.rowsQuarantined, { stat: 'Sum', label: 'rows quarantined' }),
        ownMetric(MetricName.flushFailures, { stat: 'Sum', label: 'failed flushes' }),
        ownMetric(MetricName.flushLatency, { stat: 'p99', label: 'flush p99 (ms)', yAxis: 'right' }),
      ],
    },
    {
      title: '8 Database connections',
      metrics: [
        ['AWS/RDS', 'DatabaseConnections', ...db, { stat: 'Maximum', label: 'connections' }],
        ['AWS/RDS', 'CPUUtilization', ...db, { stat: 'Average', label: 'CPU %', yAxis: 'right' }],
      ],
    },
    {
      title: 'Cache memory and evictions',
      metrics: cacheIds.flatMap((id): MetricRow[] => [
        [
          'AWS/ElastiCache',
          'DatabaseMemoryUsagePercentage',
          'CacheClusterId',
          id,
          { stat: 'Maximum', label: `${id} memory %` },
        ],
        [
          'AWS/ElastiCache',
          'Evictions',
          'CacheClusterId',
          id,
          { stat: 'Sum', label: `${id} evictions`, yAxis: 'right' },
        ],
      ]),
    },
    {
      title: 'Database free storage (bytes)',
      metrics: [['AWS/RDS', 'FreeStorageSpace', ...db, { stat: 'Minimum', label: 'free storage' }]],
    },
  ];
  // a flush handler inside the counting function is already on panel 4
  if (flushFn !== fn) {
    panels.push({
      title: 'Flush function errors, throttles, duration',
      metrics: lambda(flushFn),
    });
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
    try {
      const { DashboardBody } = await ctx.clients.cloudwatch.send(
        new GetDashboardCommand({ DashboardName: name }),
      );
      return DashboardBody === undefined ? undefined : JSON.parse(DashboardBody);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
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
