import {
  ComparisonOperator,
  DeleteAlarmsCommand,
  ListTagsForResourceCommand,
  type MetricAlarm,
  PutMetricAlarmCommand,
  paginateDescribeAlarms,
  TagResourceCommand,
} from '@aws-sdk/client-cloudwatch';
import { MetricName, metricNamespace, serviceDimension } from '../../lib/metrics.ts';
import { arn, type StackNames } from '../../lib/names.ts';
import {
  Action,
  type Ctx,
  diffFields,
  type FieldChange,
  isPlan,
  missingTags,
  type Resource,
  reconcile,
  record,
  step,
} from '../../lib/reconcile.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';

// What the alarms watch. Everything else (the uploads topic, the service
// dimension of the function's own metrics) derives from the stack names.
export interface MonitoredResources {
  queueName: string;
  dlqName: string;
  functionName: string;
  // the flush handler's own function (default: names.flushFunction); when it is
  // the counting function itself, that function's alarms already cover it
  flushFunctionName?: string | undefined;
  // the cache's member clusters: ElastiCache publishes node metrics per
  // CacheClusterId, and a replication group's members are `<group id>-001`, `-002`, …
  cacheClusterIds?: string[] | undefined;
  dbInstanceId: string;
}

export interface AlarmInputs extends MonitoredResources {
  alertsTopicArn: string;
}

type AlarmContext = Pick<Ctx, 'names'> & { config: Pick<Ctx['config'], 'fn'> };

// The fields of PutMetricAlarm this project manages; actions are added from the inputs.
interface AlarmDefinition {
  AlarmName: string;
  AlarmDescription: string;
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: string }[];
  Statistic?: Statistic;
  ExtendedStatistic?: string;
  Period: number;
  EvaluationPeriods: number;
  DatapointsToAlarm: number;
  Threshold: number;
  ComparisonOperator: ComparisonOperator;
  TreatMissingData: TreatMissingData;
}

type Statistic = 'Sum' | 'Maximum' | 'Minimum' | 'Average';

// What an alarm watches: namespace, metric, dimensions and statistic.
type AlarmMetric = [string, string, Record<string, string>, Statistic | 'p99'];

export type DesiredAlarm = ReturnType<typeof desiredAlarms>[number];

export const TreatMissingData = {
  breaching: 'breaching',
  notBreaching: 'notBreaching',
  ignore: 'ignore',
  missing: 'missing',
} as const;
export type TreatMissingData = (typeof TreatMissingData)[keyof typeof TreatMissingData];

export const Threshold = {
  // the queue's oldest message: with a 60 s function timeout a healthy message
  // is gone in seconds; 15 minutes means a backlog or a message retried over and over
  queueOldestAgeSeconds: 15 * 60,
  // share of the function timeout at which slow invocations become an alarm
  durationShareOfTimeout: 0.8,
  cacheMemoryPercent: 80,
  dbCpuPercent: 80,
  // below 2 GiB PostgreSQL is hours from refusing writes on a 20 GiB volume
  dbFreeStorageBytes: 2 * 1024 ** 3,
  // the flush schedule runs every minute: five minutes of age means about five missed flushes
  oldestBufferedAgeSeconds: 5 * 60,
} as const;

// Connections each function instance holds (DB_POOL_MAX default) and the
// headroom above the expected total before the connection count is alarming.
const connectionsPerInstance = 2;
const connectionHeadroom = 2;

// Alarm names start with `<app>-<stage>.`: APP and STAGE cannot contain a dot
// (lib/config.ts), so no other stage's alarms share this prefix.
export function alarmPrefix(names: StackNames): string {
  return `${names.base}.`;
}

// ElastiCache numbers a replication group's member clusters from 001
// (CreateReplicationGroup: "<replication group id>-001", "-002", ...).
export function memberClusterIds(replicationGroupId: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${replicationGroupId}-${String(i + 1).padStart(3, '0')}`);
}

// the primary and one replica, as provisioned by resources/cache.ts
const defaultCacheNodes = 2;

// The defaults filled in, for the alarms and the dashboard: the flush function
// (undefined when it is the counting function) and the cache's member clusters.
export function watched(names: StackNames, resources: MonitoredResources) {
  const flushFunction = resources.flushFunctionName ?? names.flushFunction;
  return {
    flushFunction: flushFunction === resources.functionName ? undefined : flushFunction,
    cacheIds: resources.cacheClusterIds ?? memberClusterIds(names.cache, defaultCacheNodes),
  };
}

export function defineAlarms(ctx: AlarmContext, resources: MonitoredResources): AlarmDefinition[] {
  const { names, config } = ctx;
  const service = { [serviceDimension]: names.base };
  const timeoutMs = config.fn.timeoutSeconds * 1000;
  const expectedConnections = (config.fn.maxConcurrency + 1) * connectionsPerInstance;
  const { flushFunction, cacheIds } = watched(names, resources);
  const functions: [suffix: string, name: string][] = [['function', resources.functionName]];
  if (flushFunction !== undefined) functions.push(['flush-function', flushFunction]);
  // Most alarms fire on any datapoint above 0 in one minute, with missing data not breaching;
  // a percentile statistic (p99) is an ExtendedStatistic.
  const alarm = (
    suffix: string,
    AlarmDescription: string,
    [Namespace, MetricName, dimensions, statistic]: AlarmMetric,
    options: Partial<AlarmDefinition> = {},
  ): AlarmDefinition => ({
    AlarmName: `${alarmPrefix(names)}${suffix}`,
    AlarmDescription,
    Namespace,
    MetricName,
    Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
    ...(statistic === 'p99' ? { ExtendedStatistic: statistic } : { Statistic: statistic }),
    Period: 60,
    EvaluationPeriods: 1,
    DatapointsToAlarm: options.EvaluationPeriods ?? 1,
    Threshold: 0,
    ComparisonOperator: ComparisonOperator.GreaterThanThreshold,
    TreatMissingData: TreatMissingData.notBreaching,
    ...options,
  });

  return [
    alarm(
      'dlq-messages',
      `Messages are waiting in the dead-letter queue ${resources.dlqName}: uploads the function failed to record ${config.fn.maxReceiveCount} times. ` +
        'Find the cause in the function logs (npx tsx ops/status.ts shows the depth), fix it, then move them back with npx tsx ops/redrive.ts. ' +
        'Missing data is not breaching: SQS stops publishing for an idle, empty queue.',
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: resources.dlqName }, 'Maximum'],
    ),
    alarm(
      'queue-oldest-message-age',
      `The oldest upload event in ${resources.queueName} has waited more than ${Threshold.queueOldestAgeSeconds / 60} minutes: the function is not keeping up, is failing and retrying, or is not polling. ` +
        'Check npx tsx ops/status.ts and the function alarms; a message that keeps failing ends in the DLQ (then ops/redrive.ts). ' +
        'Missing data is not breaching: an idle queue publishes nothing.',
      ['AWS/SQS', 'ApproximateAgeOfOldestMessage', { QueueName: resources.queueName }, 'Maximum'],
      { EvaluationPeriods: 3, Threshold: Threshold.queueOldestAgeSeconds },
    ),
    alarm(
      'topic-delivery-failures',
      `SNS could not deliver upload notifications from ${names.topic} to a subscriber (the queue policy or the subscription is broken), so uploads are not being counted. ` +
        'Run the provisioning again (npx tsx provision/up.ts) to restore the policy, then npx tsx ops/audit.ts --fix to enqueue the uploads that were missed. ' +
        'Missing data is not breaching: no uploads, no deliveries.',
      ['AWS/SNS', 'NumberOfNotificationsFailed', { TopicName: names.topic }, 'Sum'],
    ),
    ...functions.flatMap(([suffix, fn]) => [
      alarm(
        `${suffix}-errors`,
        `Invocations of ${fn} failed as a whole (a thrown error, a timeout, or a crash), so their batch returns to the queue. ` +
          'Read the function logs for the error; npx tsx ops/status.ts shows whether messages are piling up or reaching the DLQ (then ops/redrive.ts after the fix). ' +
          'Missing data is not breaching: no invocations, no errors.',
        ['AWS/Lambda', 'Errors', { FunctionName: fn }, 'Sum'],
      ),
      alarm(
        `${suffix}-throttles`,
        `Invocations of ${fn} were throttled: the account or function concurrency is exhausted, so the queue drains slower. ` +
          'Check the account concurrency and MAX_CONCURRENCY; npx tsx ops/status.ts shows the queue age. ' +
          'Missing data is not breaching: no invocations, no throttles.',
        ['AWS/Lambda', 'Throttles', { FunctionName: fn }, 'Sum'],
      ),
      alarm(
        `${suffix}-duration-near-timeout`,
        `The slowest 1% of ${fn} invocations take more than ${Threshold.durationShareOfTimeout * 100}% of its ${config.fn.timeoutSeconds} s timeout: ` +
          'larger files, a slow cache or database, or a smaller batch would soon time out and retry. Raise FUNCTION_TIMEOUT_SECONDS or lower BATCH_SIZE; ' +
          'npx tsx ops/status.ts shows whether the queue is falling behind. Missing data is not breaching: no invocations.',
        ['AWS/Lambda', 'Duration', { FunctionName: fn }, 'p99'],
        { Period: 300, Threshold: Math.round(timeoutMs * Threshold.durationShareOfTimeout) },
      ),
    ]),
    ...cacheIds.flatMap((id) => [
      alarm(
        `cache-memory-${id}`,
        `Cache node ${id} uses more than ${Threshold.cacheMemoryPercent}% of its memory. With maxmemory-policy noeviction a full cache refuses new buffered records, ` +
          'so the function fails: check that the flush keeps up (npx tsx ops/status.ts shows the buffer backlog) or choose a larger CACHE_NODE_TYPE. ' +
          'Missing data is not breaching: a node that does not report is not full (the flush-lag alarm catches a cache that is down).',
        ['AWS/ElastiCache', 'DatabaseMemoryUsagePercentage', { CacheClusterId: id }, 'Maximum'],
        { Period: 300, Threshold: Threshold.cacheMemoryPercent },
      ),
      alarm(
        `cache-evictions-${id}`,
        `Cache node ${id} evicted keys. The parameter group must set maxmemory-policy noeviction, so an eviction means buffered records or dedupe marks may be lost. ` +
          'Run the provisioning again (npx tsx provision/up.ts) to restore the parameter group, then npx tsx ops/audit.ts --fix to record any upload that was lost. ' +
          'Missing data is not breaching: no evictions reported.',
        ['AWS/ElastiCache', 'Evictions', { CacheClusterId: id }, 'Sum'],
      ),
    ]),
    alarm(
      'db-cpu',
      `Database ${resources.dbInstanceId} CPU has been above ${Threshold.dbCpuPercent}% for 15 minutes: the group commits or the ops queries are too heavy for the instance. ` +
        'Check npx tsx ops/status.ts and Performance Insights; choose a larger DB_INSTANCE_CLASS if it persists. Missing data is not breaching: the storage alarm catches a stopped instance.',
      ['AWS/RDS', 'CPUUtilization', { DBInstanceIdentifier: resources.dbInstanceId }, 'Average'],
      { Period: 300, EvaluationPeriods: 3, Threshold: Threshold.dbCpuPercent },
    ),
    alarm(
      'db-free-storage',
      `Database ${resources.dbInstanceId} has less than 2 GiB of free storage; when it runs out PostgreSQL refuses writes and the flush fails. ` +
        'Raise DB_ALLOCATED_STORAGE_GB and run npx tsx provision/up.ts; npx tsx ops/report.ts shows what is stored. ' +
        'Missing data is breaching: RDS publishes this every minute while the instance runs, so silence means it is stopped or gone.',
      ['AWS/RDS', 'FreeStorageSpace', { DBInstanceIdentifier: resources.dbInstanceId }, 'Minimum'],
      {
        Period: 300,
        Threshold: Threshold.dbFreeStorageBytes,
        ComparisonOperator: ComparisonOperator.LessThanThreshold,
        TreatMissingData: TreatMissingData.breaching,
      },
    ),
    alarm(
      'db-connections',
      `Database ${resources.dbInstanceId} has more than ${expectedConnections * connectionHeadroom} connections, twice what ${config.fn.maxConcurrency} concurrent functions ` +
        `and the flush hold (${connectionsPerInstance} each): connections are leaking or something else is connecting. ` +
        'Look at pg_stat_activity; npx tsx ops/status.ts shows the function concurrency. Missing data is not breaching: the storage alarm catches a stopped instance.',
      ['AWS/RDS', 'DatabaseConnections', { DBInstanceIdentifier: resources.dbInstanceId }, 'Maximum'],
      { Period: 300, Threshold: expectedConnections * connectionHeadroom },
    ),
    alarm(
      'flush-lag',
      `The oldest counted record has waited in the cache buffer for more than ${Threshold.oldestBufferedAgeSeconds / 60} minutes, or the flush has published nothing for 5 minutes: ` +
        'counts are not reaching the database. Check the schedule and the flush logs; npx tsx ops/status.ts shows the backlog; if the cache lost records, npx tsx ops/audit.ts --fix restores them. ' +
        'Missing data is breaching: the flush publishes OldestBufferedAge every minute (0 when the buffer is empty), so a silent flush is a failing flush.',
      [metricNamespace, MetricName.oldestBufferedAge, service, 'Maximum'],
      {
        EvaluationPeriods: 5,
        Threshold: Threshold.oldestBufferedAgeSeconds,
        TreatMissingData: TreatMissingData.breaching,
      },
    ),
    alarm(
      'flush-failures',
      'A flush of the cache buffer to PostgreSQL failed; the records stay buffered and the next flush retries them. ' +
        'If it repeats, the database is unreachable or refusing writes: check the database alarms and npx tsx ops/status.ts. ' +
        'Missing data is not breaching: the metric is only published when a flush fails (the flush-lag alarm catches a flush that never runs).',
      [metricNamespace, MetricName.flushFailures, service, 'Sum'],
    ),
    alarm(
      'rows-quarantined',
      'PostgreSQL refused a row (a key with U+0000, a time out of range, a constraint): the flush committed the rest of its batch and put the row, with its record and the error, in the line_counts_quarantine table. ' +
        `Its message fails on every delivery and reaches the DLQ after ${config.fn.maxReceiveCount} receives. npx tsx ops/status.ts lists the quarantined rows and their reasons; fix the cause, then npx tsx ops/redrive.ts. ` +
        'Missing data is not breaching: the metric is only published when a row is refused.',
      [metricNamespace, MetricName.rowsQuarantined, service, 'Sum'],
    ),
  ];
}

export function desiredAlarms(ctx: AlarmContext, inputs: AlarmInputs) {
  const actions = [inputs.alertsTopicArn];
  return defineAlarms(ctx, inputs).map((alarm) => ({
    ...alarm,
    ActionsEnabled: true,
    // OK actions too, so whoever was paged also learns that it is over
    AlarmActions: actions,
    OKActions: actions,
    InsufficientDataActions: [] as string[],
  }));
}

// CloudWatch returns lists in its own order; order carries no meaning here.
const sorted = (list: readonly string[] | undefined) => [...(list ?? [])].sort();

// The fields of an alarm this project manages, in the order a drift lists them.
function managed(alarm: DesiredAlarm | MetricAlarm) {
  return {
    AlarmDescription: alarm.AlarmDescription,
    ActionsEnabled: alarm.ActionsEnabled,
    AlarmActions: sorted(alarm.AlarmActions),
    OKActions: sorted(alarm.OKActions),
    InsufficientDataActions: sorted(alarm.InsufficientDataActions),
    Namespace: alarm.Namespace,
    MetricName: alarm.MetricName,
    Dimensions: [...(alarm.Dimensions ?? [])]
      .map((d) => ({ Name: d.Name, Value: d.Value }))
      .sort((a, b) => String(a.Name).localeCompare(String(b.Name))),
    // a statistic not used by the desired alarm must be absent (p99 replaced by Maximum is drift too)
    Statistic: alarm.Statistic ?? null,
    ExtendedStatistic: alarm.ExtendedStatistic ?? null,
    Period: alarm.Period,
    EvaluationPeriods: alarm.EvaluationPeriods,
    DatapointsToAlarm: alarm.DatapointsToAlarm,
    Threshold: alarm.Threshold,
    ComparisonOperator: alarm.ComparisonOperator,
    TreatMissingData: alarm.TreatMissingData,
  };
}

export function alarmDrift(desired: DesiredAlarm, actual: MetricAlarm): FieldChange[] {
  return diffFields(managed(desired), managed(actual));
}

export function alarmArn(ctx: Pick<Ctx, 'identity'>, alarmName: string): string {
  return arn(ctx.identity, 'cloudwatch', `alarm:${alarmName}`);
}

// The stack's alarms, listed once by their prefix (DescribeAlarms pages).
async function listAlarms(ctx: Ctx): Promise<Map<string, MetricAlarm>> {
  const prefix = alarmPrefix(ctx.names);
  return step(`list alarms ${prefix}*`, 'cloudwatch:DescribeAlarms', async () => {
    const found = new Map<string, MetricAlarm>();
    for await (const page of paginateDescribeAlarms(
      { client: ctx.clients.cloudwatch },
      { AlarmNamePrefix: prefix, AlarmTypes: ['MetricAlarm'] },
    )) {
      for (const alarm of page.MetricAlarms ?? []) {
        if (alarm.AlarmName) found.set(alarm.AlarmName, alarm);
      }
    }
    return found;
  });
}

interface AlarmSpec {
  name: string;
  alarm: DesiredAlarm;
  tags: Tags;
}

interface LiveAlarm {
  arn: string;
  alarm: MetricAlarm;
  tags: Tags;
}

const putAlarm = 'cloudwatch:PutMetricAlarm and cloudwatch:TagResource';

// One alarm, found in the listing made once for all of them; its tags are
// read with it.
function listedAlarm(listed: Map<string, MetricAlarm>): Resource<AlarmSpec, LiveAlarm, string> {
  return {
    kind: 'alarm',
    permissions: { find: 'cloudwatch:ListTagsForResource', create: putAlarm, update: putAlarm },
    async find(ctx, name) {
      const live = listed.get(name);
      if (live === undefined) return undefined;
      const resource = live.AlarmArn ?? alarmArn(ctx, name);
      const { Tags } = await ctx.clients.cloudwatch.send(
        new ListTagsForResourceCommand({ ResourceARN: resource }),
      );
      return { arn: resource, alarm: live, tags: fromTagList(Tags) };
    },
    drift: (desired, actual) => [
      ...alarmDrift(desired.alarm, actual.alarm),
      ...tagDrift(desired.tags, actual.tags),
    ],
    // PutMetricAlarm applies Tags only when it creates the alarm; later tag
    // changes go through TagResource (PutMetricAlarm API reference)
    async create(ctx, desired) {
      await ctx.clients.cloudwatch.send(
        new PutMetricAlarmCommand({ ...desired.alarm, Tags: toTagList(desired.tags) }),
      );
      return { arn: alarmArn(ctx, desired.name), alarm: desired.alarm, tags: desired.tags };
    },
    async update(ctx, desired, actual, drift) {
      // PutMetricAlarm replaces the whole definition, so the full desired alarm is sent
      if (drift.some((change) => change.field !== 'tags')) {
        await ctx.clients.cloudwatch.send(new PutMetricAlarmCommand({ ...desired.alarm }));
      }
      const missing = missingTags(desired.tags, actual.tags);
      if (Object.keys(missing).length > 0) {
        await ctx.clients.cloudwatch.send(
          new TagResourceCommand({ ResourceARN: actual.arn, Tags: toTagList(missing) }),
        );
      }
    },
    outputs: (ctx, desired) => alarmArn(ctx, desired.name),
  };
}

// DeleteAlarms takes at most 100 names per call (DeleteAlarms API reference)
const deleteBatch = 100;

async function removeAlarms(ctx: Ctx, alarmNames: string[]): Promise<void> {
  for (const name of alarmNames) record(ctx, { kind: 'alarm', name, action: Action.delete });
  if (isPlan(ctx)) return;
  for (let i = 0; i < alarmNames.length; i += deleteBatch) {
    const batch = alarmNames.slice(i, i + deleteBatch);
    // names that no longer exist do not stop the others from being deleted
    await step(`delete alarms ${batch.join(', ')}`, 'cloudwatch:DeleteAlarms', () =>
      ctx.clients.cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: batch })),
    );
  }
}

export async function ensureAlarms(ctx: Ctx, inputs: AlarmInputs) {
  const desired = desiredAlarms(ctx, inputs);
  const listed = await listAlarms(ctx);
  const resource = listedAlarm(listed);
  const alarmArns: string[] = [];
  for (const alarm of desired) {
    alarmArns.push(await reconcile(ctx, resource, { name: alarm.AlarmName, alarm, tags: ctx.names.tags }));
  }
  // ours (by prefix) but no longer wanted: a cache node or function that went away
  const alarmNames = desired.map((a) => a.AlarmName);
  const unwanted = [...listed.keys()].filter((name) => !alarmNames.includes(name));
  await removeAlarms(ctx, unwanted);
  return { alarmNames, alarmArns };
}

export async function deleteAlarms(ctx: Ctx): Promise<void> {
  const listed = await listAlarms(ctx);
  if (listed.size === 0) {
    record(ctx, { kind: 'alarm', name: `${alarmPrefix(ctx.names)}*`, action: Action.absent });
  }
  await removeAlarms(ctx, [...listed.keys()]);
}
