import {
  type CloudWatchClient,
  GetMetricDataCommand,
  paginateDescribeAlarms,
} from '@aws-sdk/client-cloudwatch';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { bufferKeys, describeBuffer } from '../lambda-image/buffer.ts';
import { lockAcquiredAt } from '../lambda-image/flush.ts';
import {
  qualifiedQuarantineTable,
  qualifiedTable,
  quarantineTableName,
  tableName,
} from '../lambda-image/schema.ts';
import { ExitCode, isMain, runCommand } from '../lib/cli.ts';
import { createClient } from '../lib/clients.ts';
import { type BufferSettings, type Env, loadOpsConfig, type OpsConfig } from '../lib/config.ts';
import { describeError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { stackNames } from '../lib/names.ts';
import { formatElapsed } from '../lib/poll.ts';
import { alarmPrefix } from '../provision/resources/alarms.ts';
import {
  type Io,
  openDatabase,
  openRedis,
  plural,
  processIo,
  readQueueDepth,
  resolveRedis,
  resolveStack,
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

interface StatusThresholds {
  // the queue-oldest-message-age alarm's threshold (provision/resources/alarms.ts)
  maxMessageAgeSeconds: number;
  // the flush-lag alarm's threshold
  maxBufferAgeSeconds: number;
  // A flush holds its lock for its own batches only, and stops starting them
  // by its deadline (at most the function timeout, 900 s): longer is stuck.
  maxLockAgeSeconds: number;
  // how long a buffer reset stays worth a look (it costs nothing but redeliveries)
  maxResetAgeSeconds: number;
}

const defaultThresholds: StatusThresholds = {
  maxMessageAgeSeconds: 900,
  maxBufferAgeSeconds: 300,
  maxLockAgeSeconds: 900,
  maxResetAgeSeconds: 24 * 3600,
};

// a stage that cannot be checked: not configured or skipped, or unreachable
interface Unavailable {
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

interface StatusDeps {
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
backlog and the age of its oldest record, who holds the flush lock and since
when, whether Redis lost its data (the buffer was reset), the rows written
last, the rows PostgreSQL refused (quarantined), and the CloudWatch alarms in
ALARM. Exits 1 when something needs attention (a message in the dead-letter
queue, a message or buffered record older than its threshold, a flush lock
held too long or without expiry, a recent buffer reset, a quarantined row, an
alarm in ALARM, a stage that cannot be reached), 0 when healthy.

Options:
  --max-message-age SECONDS   oldest queue message allowed (default ${defaultThresholds.maxMessageAgeSeconds})
  --max-buffer-age SECONDS    oldest buffered record allowed (default ${defaultThresholds.maxBufferAgeSeconds})
  --max-lock-age SECONDS      longest a flush may hold the flush lock (default ${defaultThresholds.maxLockAgeSeconds})
  --max-reset-age SECONDS     how long a buffer reset needs attention (default ${defaultThresholds.maxResetAgeSeconds})
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

// The flush lock as ops sees it: who holds it since when (flush.ts writes the
// acquisition time into the value), and when its lease runs out.
interface LockState {
  held: boolean;
  ageMs?: number | undefined;
  // -1: the key has no expiry (PTTL reference), which no flush ever sets
  expiresInMs?: number | undefined;
}

function describeLock(lock: LockState): string {
  if (!lock.held) return 'flush lock free';
  const age = lock.ageMs === undefined ? 'held' : `held for ${formatElapsed(lock.ageMs)}`;
  return lock.expiresInMs === -1 ? `flush lock ${age}, without expiry` : `flush lock ${age}`;
}

async function checkBuffer(deps: StatusDeps, thresholds: StatusThresholds, now: Date): Promise<Check> {
  if (isUnavailable(deps.redis)) return unavailableCheck(CheckName.buffer, deps.redis);
  const redis = deps.redis;
  const keys = bufferKeys(deps.buffer);
  try {
    const [state, holder, lockTtl, since] = await Promise.all([
      describeBuffer(redis, deps.buffer),
      redis.get(keys.lock),
      redis.pttl(keys.lock),
      redis.get(keys.since),
    ]);
    const acquiredAt = holder === null ? undefined : lockAcquiredAt(holder);
    const lock: LockState = {
      held: holder !== null,
      ageMs: acquiredAt === undefined ? undefined : Math.max(0, now.getTime() - acquiredAt),
      expiresInMs: holder === null ? undefined : lockTtl,
    };
    const ageSeconds = state.oldestAgeMs === undefined ? undefined : state.oldestAgeMs / 1000;
    const problems: string[] = [];
    if (ageSeconds !== undefined && ageSeconds > thresholds.maxBufferAgeSeconds) {
      problems.push(
        `the oldest buffered record waits for ${formatElapsed(ageSeconds * 1000)} (more than ${thresholds.maxBufferAgeSeconds} s): the flush is not running or failing; check the flush function's logs and the database`,
      );
    }
    if (lock.held && lock.expiresInMs === -1) {
      problems.push(
        `the flush lock ${keys.lock} has no expiry, which no flush sets: nothing can be committed until it is gone; delete it (redis-cli DEL ${keys.lock})`,
      );
    } else if (lock.ageMs !== undefined && lock.ageMs > thresholds.maxLockAgeSeconds * 1000) {
      problems.push(
        `a flush has held the lock ${keys.lock} for ${formatElapsed(lock.ageMs)} (more than ${thresholds.maxLockAgeSeconds} s) and keeps renewing it: that flusher is stuck; find it in the function logs (FlushLatency, errors)`,
      );
    }
    const waiting =
      state.pending === 0
        ? 'no records waiting for the flush'
        : `${plural(state.pending, 'record')} waiting for the flush, the oldest for ${formatElapsed(state.oldestAgeMs ?? 0)}`;
    return {
      name: CheckName.buffer,
      state: problems.length > 0 ? CheckState.attention : CheckState.ok,
      summary: `${waiting}; ${describeLock(lock)}`,
      problems,
      details: {
        pending: state.pending,
        oldestAgeSeconds: ageSeconds ?? null,
        keyPrefix: deps.buffer.keyPrefix,
        lockHeld: lock.held,
        lockAgeSeconds: lock.ageMs === undefined ? null : lock.ageMs / 1000,
        lockExpiresInMs: lock.expiresInMs ?? null,
        // when this Redis first held the buffer (set by every flush when absent): null after Redis lost its data
        bufferSince: since,
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
  first_recorded_at: Date | null;
  last_recorded_at: Date | null;
  last_hour: string;
}

interface QuarantinedRow {
  bucket: string | null;
  record: string;
  error: string;
  message_id: string | null;
  attempts: number;
  last_refused: Date;
}

// how many quarantined rows the report lists
const quarantineShown = 5;

// Rows PostgreSQL refused that no later commit of the same file superseded
// (a row holding the same or a newer sequencer, compared as the flush does).
async function readQuarantine(
  pool: pg.Pool,
  schema: string,
): Promise<{ count: number; latest: QuarantinedRow[] }> {
  const width = 'greatest(length(l.sequencer), length(q.sequencer))';
  const open = `FROM ${qualifiedQuarantineTable(schema)} q
    WHERE NOT EXISTS (
      SELECT 1 FROM ${qualifiedTable(schema)} l
       WHERE l.bucket = q.bucket AND l.file_name = q.file_name
         AND rpad(upper(l.sequencer), ${width}, '0') COLLATE "C" >= rpad(upper(q.sequencer), ${width}, '0') COLLATE "C")`;
  try {
    const [counted, latest] = await Promise.all([
      pool.query<{ n: string }>(`SELECT count(*) AS n ${open}`),
      pool.query<QuarantinedRow>(
        `SELECT bucket, record, error, message_id, attempts, last_refused ${open} ORDER BY last_refused DESC LIMIT ${quarantineShown}`,
      ),
    ]);
    return { count: Number(counted.rows[0]?.n ?? 0), latest: latest.rows };
  } catch (error) {
    // 42P01: a database the migration has not run on since the quarantine table came
    if ((error as { code?: unknown }).code === '42P01') return { count: 0, latest: [] };
    throw error;
  }
}

function describeQuarantined(row: QuarantinedRow): string {
  let key = '?';
  try {
    key = JSON.stringify((JSON.parse(row.record) as { key?: unknown }).key ?? '?');
  } catch {
    // the record column is always JSON written by the flush; show what is known
  }
  const message = row.message_id === null ? '' : `, message ${row.message_id}`;
  return `${row.bucket ?? '?'}/${key}: ${row.error} (${row.attempts === 1 ? '1 try' : `${row.attempts} tries`}${message})`;
}

async function checkDatabase(deps: StatusDeps, now: Date): Promise<Check> {
  const database = deps.database;
  if (isUnavailable(database)) return unavailableCheck(CheckName.database, database);
  try {
    const [{ rows }, quarantine] = await Promise.all([
      database.pool.query<RowsSummary>(
        `SELECT count(*) AS rows, min(recorded_at) AS first_recorded_at, max(recorded_at) AS last_recorded_at,
                count(*) FILTER (WHERE recorded_at > now() - interval '1 hour') AS last_hour
           FROM ${qualifiedTable(database.schema)}`,
      ),
      readQuarantine(database.pool, database.schema),
    ]);
    const summary = rows[0] as RowsSummary;
    const last = summary.last_recorded_at;
    const details = {
      schema: database.schema,
      rows: Number(summary.rows),
      firstRecordedAt: summary.first_recorded_at?.toISOString() ?? null,
      lastRecordedAt: last?.toISOString() ?? null,
      rowsLastHour: Number(summary.last_hour),
      quarantined: quarantine.count,
      latestQuarantined: quarantine.latest.map((row) => ({
        bucket: row.bucket,
        record: row.record,
        error: row.error,
        messageId: row.message_id,
        attempts: row.attempts,
        lastRefused: row.last_refused.toISOString(),
      })),
    };
    const problems =
      quarantine.count === 0
        ? []
        : [
            `${plural(quarantine.count, 'row')} PostgreSQL refused ${quarantine.count === 1 ? 'is' : 'are'} quarantined in ${database.schema}.${quarantineTableName}, each with its record and the reason; their messages fail and go to the dead-letter queue. Latest: ${quarantine.latest.map(describeQuarantined).join('; ')}. Fix the cause, then npx tsx ops/redrive.ts; a file recorded later clears its entry`,
          ];
    const rowsSummary =
      last === null
        ? 'no rows yet'
        : `${plural(details.rows, 'row')}; last written ${last.toISOString()} (${formatElapsed(Math.max(0, now.getTime() - last.getTime()))} ago); ${details.rowsLastHour} in the last hour`;
    return {
      name: CheckName.database,
      state: problems.length > 0 ? CheckState.attention : CheckState.ok,
      summary: quarantine.count === 0 ? rowsSummary : `${rowsSummary}; ${quarantine.count} quarantined`,
      problems,
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
        details: {
          schema: database.schema,
          rows: 0,
          firstRecordedAt: null,
          lastRecordedAt: null,
          rowsLastHour: 0,
          quarantined: 0,
          latestQuarantined: [],
        },
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

// A buffer that Redis lost (a restart, a failover, FLUSHALL): the marker every
// flush sets when absent is gone, or it was set again after rows were already
// committed. Nothing acknowledged is lost, since a message is acknowledged
// only once its record is committed; but messages in flight came back from SQS
// and the dedupe marks are gone, so it is worth knowing when it happened.
function noteReset(buffer: Check, database: Check, thresholds: StatusThresholds, now: Date): void {
  if (buffer.state === CheckState.unreachable || buffer.state === CheckState.skipped) return;
  if (database.state === CheckState.unreachable || database.state === CheckState.skipped) return;
  const since = buffer.details.bufferSince as string | null;
  const firstRow = database.details.firstRecordedAt as string | null | undefined;
  if (firstRow === null || firstRow === undefined) return;
  const consequence =
    'nothing acknowledged was lost (a message is acknowledged only once its record is committed), but what was buffered then came back from SQS and the dedupe marks are gone';
  if (since === null) {
    buffer.problems.push(
      `the buffer's marker ${buffer.details.keyPrefix}buffer-since is missing although rows exist: Redis lost its data (a restart, a failover or FLUSHALL) and no flush has run since, or REDIS_KEY_PREFIX is not the function's; ${consequence}. The next flush sets the marker again`,
    );
  } else {
    const resetAt = Date.parse(since);
    // the marker is set just before its flush's first commit: a row older than it predates this Redis
    const predates = Date.parse(firstRow) < resetAt - 1_000;
    const ageMs = now.getTime() - resetAt;
    if (predates && ageMs <= thresholds.maxResetAgeSeconds * 1000) {
      buffer.problems.push(
        `the buffer was reset ${formatElapsed(Math.max(0, ageMs))} ago (${since}): Redis lost its data (a restart, a failover or FLUSHALL); ${consequence}. Check the cache's events; this clears after ${thresholds.maxResetAgeSeconds} s`,
      );
    }
  }
  if (buffer.problems.length > 0) buffer.state = CheckState.attention;
}

export async function collectStatus(
  deps: StatusDeps,
  thresholds: StatusThresholds = defaultThresholds,
  now = new Date(),
): Promise<StatusReport> {
  const [queues, buffer, database, alarms] = await Promise.all([
    checkQueues(deps, thresholds, now),
    checkBuffer(deps, thresholds, now),
    checkDatabase(deps, now),
    checkAlarms(deps),
  ]);
  noteReset(buffer, database, thresholds, now);
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

function formatStatus(report: StatusReport, endpoint?: string): string {
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

function parseStatusArgs(argv: string[]) {
  const values = parseFlags(argv, {
    'max-message-age': { type: 'string' },
    'max-buffer-age': { type: 'string' },
    'max-lock-age': { type: 'string' },
    'max-reset-age': { type: 'string' },
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
      maxLockAgeSeconds: parseSeconds(
        'max-lock-age',
        values['max-lock-age'],
        defaultThresholds.maxLockAgeSeconds,
      ),
      maxResetAgeSeconds: parseSeconds(
        'max-reset-age',
        values['max-reset-age'],
        defaultThresholds.maxResetAgeSeconds,
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
  return runCommand(async () => {
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
  }, io);
}

if (isMain(import.meta.url)) {
  process.exitCode = await runStatus(process.argv.slice(2));
}
