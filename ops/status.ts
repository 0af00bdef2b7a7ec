import { pathToFileURL } from 'node:url';
import {
  type CloudWatchClient,
  GetMetricDataCommand,
  paginateDescribeAlarms,
} from '@aws-sdk/client-cloudwatch';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { describeBuffer } from '../lambda-image/buffer.ts';
import { qualifiedTable, tableName } from '../lambda-image/schema.ts';
import { createClient } from '../lib/clients.ts';
import { type BufferSettings, type Env, loadOpsConfig, type OpsConfig } from '../lib/config.ts';
import { describeError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { stackNames } from '../lib/names.ts';
import { formatElapsed } from '../lib/poll.ts';
import { alarmPrefix } from '../provision/resources/alarms.ts';
import {
  ExitCode,
  type Io,
  openDatabase,
  openRedis,
  plural,
  processIo,
  readQueueDepth,
  resolveRedis,
  resolveStack,
  runCommand,
  type StackTarget,
} from './common.ts';

// One screen with the health of every stage of the flow, and an exit code a
// script or a cron job can act on: 0 healthy, 1 something needs attention.

export const CheckName = {
  queue: 'queue',
  dlq: 'dlq',
  buffer: 'buffer',
  database: 'database',
  alarms: 'alarms',
} as const;
export type CheckName = (typeof CheckName)[keyof typeof CheckName];

export const CheckState = {
  ok: 'ok',
  attention: 'attention',
  unreachable: 'unreachable',
  skipped: 'skipped',
} as const;
export type CheckState = (typeof CheckState)[keyof typeof CheckState];

export interface Check {
  name: CheckName;
  state: CheckState;
  // one line for the screen
  summary: string;
  // what needs doing, when state is attention or unreachable
  problems: string[];
  // the measured values, for --json
  details: Record<string, unknown>;
}

export interface StatusReport {
  app: string;
  stage: string;
  target: 'local' | 'aws';
  checkedAt: string;
  healthy: boolean;
  checks: Check[];
}

export interface StatusThresholds {
  // the queue-oldest-message-age alarm's threshold (provision/resources/alarms.ts)
  maxMessageAgeSeconds: number;
  // the flush-lag alarm's threshold
  maxBufferAgeSeconds: number;
}

export const defaultThresholds: StatusThresholds = { maxMessageAgeSeconds: 900, maxBufferAgeSeconds: 300 };

// a stage that cannot be checked: not configured or skipped, or unreachable
export interface Unavailable {
  state: typeof CheckState.skipped | typeof CheckState.unreachable;
  reason: string;
}

function isUnavailable(value: object): value is Unavailable {
  return 'reason' in value;
}

function unavailableCheck(name: CheckName, unavailable: Unavailable): Check {
  return {
    name,
    state: unavailable.state,
    summary: unavailable.state === CheckState.skipped ? unavailable.reason : 'cannot be reached',
    problems: unavailable.state === CheckState.skipped ? [] : [unavailable.reason],
    details: {},
  };
}

export interface StatusDeps {
  target: StackTarget;
  sqs: SQSClient;
  // absent on the local stack: the emulator has no CloudWatch
  cloudwatch?: CloudWatchClient | undefined;
  buffer: BufferSettings;
  redis: Redis | Unavailable;
  database: { pool: pg.Pool; schema: string } | Unavailable;
  skip?: readonly CheckName[];
}

const help = `Usage: npx tsx ops/status.ts [options]

The health of every stage of the flow on one screen: queue and dead-letter
queue depth (waiting, in flight), the age of the oldest message, the buffer's
backlog and the age of its oldest record, the rows written last, and the
CloudWatch alarms in ALARM. Exits 1 when something needs attention (a message
in the dead-letter queue, a message or buffered record older than its
threshold, an alarm in ALARM, a stage that cannot be reached), 0 when healthy.

Options:
  --max-message-age SECONDS   oldest queue message allowed (default ${defaultThresholds.maxMessageAgeSeconds})
  --max-buffer-age SECONDS    oldest buffered record allowed (default ${defaultThresholds.maxBufferAgeSeconds})
  --skip NAME[,NAME]          checks to leave out: ${Object.values(CheckName).join(', ')}
  --json                      the report as JSON
  -h, --help                  show this help

The stack is the stage's .ada/outputs.<stage>.json (STAGE, default dev). The
buffer needs REDIS_URL (or REDIS_HOST with REDIS_AUTH_SECRET_ARN, or the cache
in the outputs) and REDIS_KEY_PREFIX when the function uses another; the
database needs DATABASE_URL (or DB_HOST with DB_SECRET_ARN, or the database in
the outputs) and DB_SCHEMA. Cache and database sit in the stack's private VPC:
reach them through a tunnel, or --skip buffer,database.
On the local stack the oldest message's age and the alarms are CloudWatch data
that the emulator does not have: they are shown as unavailable.
`;

// CloudWatch publishes SQS metrics every minute; a quarter of an hour finds
// the latest point of a queue that is not idle (idle queues publish nothing).
const metricWindowMs = 15 * 60_000;
const metricPeriodSeconds = 60;

function queueName(queueUrl: string): string {
  return queueUrl.slice(queueUrl.lastIndexOf('/') + 1);
}

// ApproximateAgeOfOldestMessage is a CloudWatch metric, not a queue attribute
// (GetQueueAttributes has no such attribute): the latest Maximum per queue.
async function readOldestAges(
  cloudwatch: CloudWatchClient,
  queueUrls: readonly string[],
  now: Date,
): Promise<(number | undefined)[]> {
  const reply = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now.getTime() - metricWindowMs),
      EndTime: now,
      ScanBy: 'TimestampDescending',
      MetricDataQueries: queueUrls.map((url, i) => ({
        Id: `q${i}`,
        ReturnData: true,
        MetricStat: {
          Metric: {
            Namespace: 'AWS/SQS',
            MetricName: 'ApproximateAgeOfOldestMessage',
            Dimensions: [{ Name: 'QueueName', Value: queueName(url) }],
          },
          Period: metricPeriodSeconds,
          Stat: 'Maximum',
        },
      })),
    }),
  );
  return queueUrls.map((_, i) => reply.MetricDataResults?.find((r) => r.Id === `q${i}`)?.Values?.[0]);
}

function describeAge(ageSeconds: number | undefined, local: boolean): string {
  if (local) return 'oldest message age: not available locally (a CloudWatch metric)';
  if (ageSeconds === undefined) return 'oldest message age: no data in the last 15 min';
  return `oldest message ${formatElapsed(ageSeconds * 1000)} old`;
}

async function checkQueues(deps: StatusDeps, thresholds: StatusThresholds, now: Date): Promise<Check[]> {
  const { outputs, local } = deps.target;
  const urls = [outputs.queueUrl, outputs.dlqUrl];
  const depths = await Promise.allSettled(urls.map((url) => readQueueDepth(deps.sqs, url)));
  let ages: (number | undefined)[] = [undefined, undefined];
  let ageError: string | undefined;
  if (deps.cloudwatch !== undefined) {
    try {
      ages = await readOldestAges(deps.cloudwatch, urls, now);
    } catch (error) {
      ageError = `cannot read ApproximateAgeOfOldestMessage: ${describeError(error)} (check cloudwatch:GetMetricData permission)`;
    }
  }
  return [CheckName.queue, CheckName.dlq].map((name, i): Check => {
    const url = urls[i] as string;
    const depth = depths[i] as PromiseSettledResult<Awaited<ReturnType<typeof readQueueDepth>>>;
    if (depth.status === 'rejected') {
      return {
        name,
        state: CheckState.unreachable,
        summary: `cannot read ${queueName(url)}`,
        problems: [
          `cannot read the attributes of ${url}: ${describeError(depth.reason)} (check the endpoint and sqs:GetQueueAttributes permission)`,
        ],
        details: { queueUrl: url },
      };
    }
    const age = ages[i];
    const details = {
      queueUrl: url,
      ...depth.value,
      oldestMessageAgeSeconds: age ?? null,
      ...(local ? { oldestMessageAgeNote: 'not available locally: a CloudWatch metric' } : {}),
    };
    const problems: string[] = [];
    if (ageError !== undefined) problems.push(ageError);
    const total = depth.value.visible + depth.value.inFlight + depth.value.delayed;
    if (name === CheckName.dlq && total > 0) {
      problems.push(
        `the dead-letter queue holds ${plural(total, 'message')}: find the cause in the function's logs, fix it, then run npx tsx ops/redrive.ts`,
      );
    }
    if (name === CheckName.queue && age !== undefined && age > thresholds.maxMessageAgeSeconds) {
      problems.push(
        `the oldest queued message is ${formatElapsed(age * 1000)} old (more than ${thresholds.maxMessageAgeSeconds} s): the function is failing, throttled or not polling; read its logs and errors`,
      );
    }
    return {
      name,
      state: problems.length > 0 ? CheckState.attention : CheckState.ok,
      summary: `${depth.value.visible} waiting, ${depth.value.inFlight} in flight${depth.value.delayed > 0 ? `, ${depth.value.delayed} delayed` : ''}${name === CheckName.dlq && local ? '' : `; ${describeAge(age, local)}`}`,
      problems,
      details,
    };
  });
}

async function checkBuffer(deps: StatusDeps, thresholds: StatusThresholds): Promise<Check> {
  if (isUnavailable(deps.redis)) return unavailableCheck(CheckName.buffer, deps.redis);
  try {
    const state = await describeBuffer(deps.redis, deps.buffer);
    const ageSeconds = state.oldestAgeMs === undefined ? undefined : state.oldestAgeMs / 1000;
    const problems =
      ageSeconds !== undefined && ageSeconds > thresholds.maxBufferAgeSeconds
        ? [
            `the oldest buffered record waits for ${formatElapsed(ageSeconds * 1000)} (more than ${thresholds.maxBufferAgeSeconds} s): the flush is not running or failing; check the flush function's logs and the database`,
          ]
        : [];
    return {
      name: CheckName.buffer,
      state: problems.length > 0 ? CheckState.attention : CheckState.ok,
      summary:
        state.pending === 0
          ? 'no records waiting for the flush'
          : `${plural(state.pending, 'record')} waiting for the flush, the oldest for ${formatElapsed(state.oldestAgeMs ?? 0)}`,
      problems,
      details: {
        pending: state.pending,
        oldestAgeSeconds: ageSeconds ?? null,
        keyPrefix: deps.buffer.keyPrefix,
      },
    };
  } catch (error) {
    return {
      name: CheckName.buffer,
      state: CheckState.unreachable,
      summary: 'cannot read the buffer',
      problems: [
        `cannot read the buffer in Redis: ${describeError(error)} (check REDIS_URL or the tunnel to the cache)`,
      ],
      details: { keyPrefix: deps.buffer.keyPrefix },
    };
  }
}

interface RowsSummary {
  rows: string;
  last_recorded_at: Date | null;
  last_hour: string;
}

async function checkDatabase(deps: StatusDeps, now: Date): Promise<Check> {
  const database = deps.database;
  if (isUnavailable(database)) return unavailableCheck(CheckName.database, database);
  try {
    const { rows } = await database.pool.query<RowsSummary>(
      `SELECT count(*) AS rows, max(recorded_at) AS last_recorded_at,
              count(*) FILTER (WHERE recorded_at > now() - interval '1 hour') AS last_hour
         FROM ${qualifiedTable(database.schema)}`,
    );
    const summary = rows[0] as RowsSummary;
    const last = summary.last_recorded_at;
    const details = {
      schema: database.schema,
      rows: Number(summary.rows),
      lastRecordedAt: last?.toISOString() ?? null,
      rowsLastHour: Number(summary.last_hour),
    };
    return {
      name: CheckName.database,
      state: CheckState.ok,
      summary:
        last === null
          ? 'no rows yet'
          : `${plural(details.rows, 'row')}; last written ${last.toISOString()} (${formatElapsed(Math.max(0, now.getTime() - last.getTime()))} ago); ${details.rowsLastHour} in the last hour`,
      problems: [],
      details,
    };
  } catch (error) {
    // 42P01 undefined_table (PostgreSQL Appendix A): nothing flushed yet, or the wrong DB_SCHEMA
    if ((error as { code?: unknown }).code === '42P01') {
      return {
        name: CheckName.database,
        state: CheckState.ok,
        summary: `no table ${database.schema}.${tableName} yet (the first flush creates it; check DB_SCHEMA)`,
        problems: [],
        details: { schema: database.schema, rows: 0, lastRecordedAt: null, rowsLastHour: 0 },
      };
    }
    return {
      name: CheckName.database,
      state: CheckState.unreachable,
      summary: 'cannot read the database',
      problems: [
        `cannot read ${database.schema}.${tableName}: ${describeError(error)} (check DATABASE_URL or the tunnel to the database)`,
      ],
      details: { schema: database.schema },
    };
  }
}

async function checkAlarms(deps: StatusDeps): Promise<Check> {
  const { outputs } = deps.target;
  if (deps.cloudwatch === undefined) {
    return {
      name: CheckName.alarms,
      state: CheckState.skipped,
      summary: 'not available locally (the emulator has no CloudWatch)',
      problems: [],
      details: {},
    };
  }
  const prefix = alarmPrefix(
    stackNames(
      { app: outputs.app, stage: outputs.stage },
      { accountId: outputs.accountId, region: outputs.region, partition: 'aws' },
    ),
  );
  try {
    const firing: { name: string; reason: string }[] = [];
    for await (const page of paginateDescribeAlarms(
      { client: deps.cloudwatch },
      { AlarmNamePrefix: prefix, StateValue: 'ALARM', AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] },
    )) {
      for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
        firing.push({ name: alarm.AlarmName ?? '', reason: alarm.StateReason ?? '' });
      }
    }
    return {
      name: CheckName.alarms,
      state: firing.length > 0 ? CheckState.attention : CheckState.ok,
      summary: firing.length === 0 ? `none of ${prefix}* in ALARM` : firing.map((a) => a.name).join(', '),
      problems: firing.map(
        (a) => `alarm ${a.name} is in ALARM: ${a.reason} (its description in CloudWatch says what to do)`,
      ),
      details: { prefix, inAlarm: firing },
    };
  } catch (error) {
    return {
      name: CheckName.alarms,
      state: CheckState.unreachable,
      summary: 'cannot read the alarms',
      problems: [
        `cannot list alarms ${prefix}*: ${describeError(error)} (check cloudwatch:DescribeAlarms permission)`,
      ],
      details: { prefix },
    };
  }
}

export async function collectStatus(
  deps: StatusDeps,
  thresholds: StatusThresholds = defaultThresholds,
  now = new Date(),
): Promise<StatusReport> {
  const [queues, buffer, database, alarms] = await Promise.all([
    checkQueues(deps, thresholds, now),
    checkBuffer(deps, thresholds),
    checkDatabase(deps, now),
    checkAlarms(deps),
  ]);
  const skip = new Set(deps.skip ?? []);
  const checks = [...queues, buffer, database, alarms].filter((check) => !skip.has(check.name));
  return {
    app: deps.target.outputs.app,
    stage: deps.target.outputs.stage,
    target: deps.target.local ? 'local' : 'aws',
    checkedAt: now.toISOString(),
    healthy: checks.every((c) => c.state === CheckState.ok || c.state === CheckState.skipped),
    checks,
  };
}

export function formatStatus(report: StatusReport, endpoint?: string): string {
  const where = report.target === 'local' ? `local stack at ${endpoint}` : 'AWS';
  const lines = [`${report.app}-${report.stage} on ${where}, ${report.checkedAt}`];
  const nameWidth = Math.max(...report.checks.map((c) => c.name.length));
  for (const check of report.checks) {
    const state = check.state === CheckState.ok ? 'ok' : check.state.toUpperCase();
    lines.push(`  ${check.name.padEnd(nameWidth)}  ${state.padEnd(11)}  ${check.summary}`);
  }
  const problems = report.checks.flatMap((c) => c.problems);
  lines.push(
    problems.length === 0 ? 'healthy' : ['needs attention:', ...problems.map((p) => `  - ${p}`)].join('\n'),
  );
  return `${lines.join('\n')}\n`;
}

function parseSeconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${flag} ${value} must be a number of seconds ≥ 0`);
  return n;
}

export function parseStatusArgs(argv: string[]) {
  const values = parseFlags(argv, {
    'max-message-age': { type: 'string' },
    'max-buffer-age': { type: 'string' },
    skip: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const skip = values.skip === undefined ? [] : values.skip.split(',').map((s) => s.trim());
  const names = Object.values(CheckName) as string[];
  const unknown = skip.filter((name) => !names.includes(name));
  if (unknown.length > 0) {
    throw new UsageError(`--skip ${unknown.join(',')}: each name must be one of ${names.join(', ')}`);
  }
  return {
    help: values.help === true,
    json: values.json === true,
    skip: skip as CheckName[],
    thresholds: {
      maxMessageAgeSeconds: parseSeconds(
        'max-message-age',
        values['max-message-age'],
        defaultThresholds.maxMessageAgeSeconds,
      ),
      maxBufferAgeSeconds: parseSeconds(
        'max-buffer-age',
        values['max-buffer-age'],
        defaultThresholds.maxBufferAgeSeconds,
      ),
    },
  };
}

const skipped: Unavailable = { state: CheckState.skipped, reason: 'skipped (--skip)' };

async function openCache(config: OpsConfig, target: StackTarget, skip: boolean) {
  if (skip) return { redis: skipped, close() {} };
  const settings = resolveRedis(config, target.outputs);
  if (settings === undefined) {
    const reason =
      'not checked: set REDIS_URL (e.g. redis://127.0.0.1:6379), or REDIS_HOST with REDIS_AUTH_SECRET_ARN';
    return { redis: { state: CheckState.skipped, reason } as Unavailable, close() {} };
  }
  try {
    return await openRedis(config, settings);
  } catch (error) {
    const reason = `cannot connect to Redis: ${describeError(error)} (check REDIS_URL or the tunnel to the cache)`;
    return { redis: { state: CheckState.unreachable, reason } as Unavailable, close() {} };
  }
}

async function openStatusDatabase(config: OpsConfig, root: string | undefined, skip: boolean) {
  if (skip) return { database: skipped, close: async () => {} };
  try {
    const db = await openDatabase(config, root);
    return { database: db, close: () => db.close() };
  } catch (error) {
    const database: Unavailable =
      error instanceof UsageError
        ? { state: CheckState.skipped, reason: `not checked: ${error.message}` }
        : { state: CheckState.unreachable, reason: `cannot open the database: ${describeError(error)}` };
    return { database, close: async () => {} };
  }
}

export function runStatus(argv: string[], io: Io = processIo, env?: Env): Promise<ExitCode> {
  return runCommand(io, async () => {
    const args = parseStatusArgs(argv);
    if (args.help) {
      io.out(help);
      return ExitCode.ok;
    }
    const config = loadOpsConfig(env);
    const target = await resolveStack(config, io.root);
    const skip = new Set(args.skip);
    const sqs = createClient(target.aws, 'sqs');
    const cloudwatch = target.local ? undefined : createClient(target.aws, 'cloudwatch');
    const cache = await openCache(config, target, skip.has(CheckName.buffer));
    const db = await openStatusDatabase(config, io.root, skip.has(CheckName.database));
    try {
      const report = await collectStatus(
        {
          target,
          sqs,
          cloudwatch,
          buffer: config.buffer,
          redis: cache.redis,
          database: db.database,
          skip: args.skip,
        },
        args.thresholds,
      );
      io.out(
        args.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report, target.outputs.endpoint),
      );
      return report.healthy ? ExitCode.ok : ExitCode.attention;
    } finally {
      cache.close();
      await db.close();
      sqs.destroy();
      cloudwatch?.destroy();
    }
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runStatus(process.argv.slice(2));
}
