import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CloudWatchClient,
  type DescribeAlarmsInput,
  type GetMetricDataInput,
  type MetricAlarm,
} from '@aws-sdk/client-cloudwatch';
import { PurgeQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { bufferKeys } from '../lambda-image/buffer.ts';
import { ExitCode } from '../lib/cli.ts';
import { installHandlers } from '../test/fakes/calls.ts';
import { type Flow, run, startFlow } from '../test/support/ops/flow.ts';
import { CuttableProxy } from '../test/support/proxy.ts';
import { CheckName, CheckState, collectStatus, runStatus, type StatusReport } from './status.ts';

let flow: Flow;
before(async () => {
  flow = await startFlow('status');
});
after(async () => {
  await flow.stop();
});

function check(report: StatusReport, name: CheckName) {
  const found = report.checks.find((c) => c.name === name);
  assert.ok(found, `the report has a ${name} check`);
  return found;
}

test('a healthy flow exits 0, and the JSON report shows every stage', async () => {
  await flow.upload('uploads/status/healthy.txt', 'one\ntwo\n');
  await flow.waitFor('the row', async () => (await flow.rowFor('uploads/status/healthy.txt')) !== undefined);
  const { code, out } = await run(runStatus, flow, ['--json']);
  const report = JSON.parse(out) as StatusReport;
  assert.equal(code, ExitCode.ok, out);
  assert.equal(report.healthy, true);
  assert.equal(report.target, 'local');
  assert.deepEqual(
    report.checks.map((c) => [c.name, c.state]),
    [
      [CheckName.queue, CheckState.ok],
      [CheckName.dlq, CheckState.ok],
      [CheckName.buffer, CheckState.ok],
      [CheckName.database, CheckState.ok],
      [CheckName.alarms, CheckState.skipped],
    ],
  );
  assert.deepEqual(check(report, CheckName.dlq).details.visible, 0);
  // the emulator has no CloudWatch: the age is said to be unavailable, not 0
  assert.equal(check(report, CheckName.queue).details.oldestMessageAgeSeconds, null);
  assert.match(String(check(report, CheckName.queue).details.oldestMessageAgeNote), /not available locally/);
  assert.equal(check(report, CheckName.database).details.rows, 1);
  assert.equal(check(report, CheckName.database).details.rowsLastHour, 1);
  assert.equal(check(report, CheckName.buffer).details.pending, 0);

  const text = await run(runStatus, flow, []);
  assert.equal(text.code, ExitCode.ok);
  assert.match(text.out, /^ {2}database\s+ok\s+1 row; last written /m);
  assert.match(text.out, /^healthy$/m);
});

test('a buffered record waiting for the flush shows as backlog, and past the threshold needs attention', async () => {
  const keys = bufferKeys(flow.settings);
  // another flusher holds the lock: records stay buffered
  await flow.cache.redis.set(keys.lock, 'held-by-the-test', 'PX', 30_000);
  try {
    await flow.upload('uploads/status/backlog.txt', 'a\nb\nc');
    await flow.waitFor('the buffered record', async () => (await flow.cache.redis.xlen(keys.stream)) === 1);
    await sleep(20);
    const within = await run(runStatus, flow, ['--json']);
    const buffer = check(JSON.parse(within.out) as StatusReport, CheckName.buffer);
    assert.equal(within.code, ExitCode.ok, within.out);
    assert.equal(buffer.details.pending, 1);
    assert.ok(Number(buffer.details.oldestAgeSeconds) > 0);

    const beyond = await run(runStatus, flow, ['--max-buffer-age', '0']);
    assert.equal(beyond.code, ExitCode.attention, beyond.out);
    assert.match(beyond.out, /^ {2}buffer\s+ATTENTION\s+1 record waiting for the flush/m);
    assert.match(beyond.out, /the oldest buffered record waits for .* \(more than 0 s\): the flush/);
  } finally {
    await flow.cache.redis.del(keys.lock);
  }
  await flow.fn.flushHandler();
  assert.equal((await flow.rowFor('uploads/status/backlog.txt'))?.line_count, '3');
  assert.equal((await run(runStatus, flow, [])).code, ExitCode.ok);
});

test('a message in the dead-letter queue needs attention and points at redrive', async () => {
  const { dlqUrl } = flow.stack.outputs;
  await flow.stack.clients.sqs.send(
    new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: '{"stuck":true}' }),
  );
  try {
    const { code, out } = await run(runStatus, flow, []);
    assert.equal(code, ExitCode.attention, out);
    assert.match(out, /^ {2}dlq\s+ATTENTION\s+1 waiting, 0 in flight/m);
    assert.match(out, /the dead-letter queue holds 1 message: .* npx tsx ops\/redrive\.ts/);
    const json = JSON.parse((await run(runStatus, flow, ['--json'])).out) as StatusReport;
    assert.equal(json.healthy, false);
    assert.equal(check(json, CheckName.dlq).details.visible, 1);
    // leaving the check out is the operator's choice
    assert.equal((await run(runStatus, flow, ['--skip', 'dlq'])).code, ExitCode.ok);
  } finally {
    await flow.stack.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: dlqUrl }));
  }
});

test('a stage that cannot be reached needs attention; one not configured is skipped', async () => {
  const dead = await new CuttableProxy('127.0.0.1', 6379).start();
  dead.cutConnections();
  try {
    const unreachable = await run(runStatus, flow, ['--json'], { ...flow.env, REDIS_URL: dead.url('redis') });
    const report = JSON.parse(unreachable.out) as StatusReport;
    assert.equal(unreachable.code, ExitCode.attention);
    assert.equal(check(report, CheckName.buffer).state, CheckState.unreachable);
    assert.match(check(report, CheckName.buffer).problems[0] ?? '', /cannot read the buffer in Redis/);
  } finally {
    await dead.stop();
  }
  const { REDIS_URL: _redis, DATABASE_URL: _database, ...bare } = flow.env;
  const unconfigured = await run(runStatus, flow, ['--json'], bare);
  const report = JSON.parse(unconfigured.out) as StatusReport;
  assert.equal(unconfigured.code, ExitCode.ok, unconfigured.out);
  assert.equal(check(report, CheckName.buffer).state, CheckState.skipped);
  assert.match(check(report, CheckName.buffer).summary, /set REDIS_URL/);
  assert.equal(check(report, CheckName.database).state, CheckState.skipped);
});

test('a row PostgreSQL refuses is quarantined and needs attention, with its reason, until the file is recorded', async () => {
  const table = `${flow.db.schema}.line_counts`;
  const key = 'uploads/status/refused.txt';
  // a rule of the database's that this upload breaks
  await flow.db.pool.query(
    `ALTER TABLE ${table} ADD CONSTRAINT short_files CHECK (line_count < 3 OR file_name NOT LIKE '%refused%') NOT VALID`,
  );
  try {
    await flow.upload(key, 'a\nb\nc\nd\n');
    const quarantined = async () => {
      const report = JSON.parse((await run(runStatus, flow, ['--json'])).out) as StatusReport;
      return check(report, CheckName.database).details.quarantined === 1;
    };
    await flow.waitFor('the refused row in the quarantine', quarantined);
    const { code, out } = await run(runStatus, flow, []);
    assert.equal(code, ExitCode.attention, out);
    assert.match(out, /^ {2}database\s+ATTENTION\s+.*; 1 quarantined$/m);
    assert.match(
      out,
      /1 row PostgreSQL refused is quarantined in \S+\.line_counts_quarantine, .*"uploads\/status\/refused\.txt": PostgreSQL refused the row: .*short_files.*message [0-9a-f-]+\)/,
    );
  } finally {
    await flow.db.pool.query(`ALTER TABLE ${table} DROP CONSTRAINT short_files`);
  }
  // the cause is gone: the next delivery of the message records the file, which clears the entry
  await flow.waitFor('the row', async () => (await flow.rowFor(key))?.line_count === '4');
  const { code, out } = await run(runStatus, flow, []);
  assert.equal(code, ExitCode.ok, out);
  assert.doesNotMatch(out, /quarantined/);
});

test('a flush lock held for too long, or without expiry, needs attention', async () => {
  const keys = bufferKeys(flow.settings);
  try {
    await flow.cache.redis.set(keys.lock, `${Date.now() - 5_000}:a-flusher`, 'PX', 2_000);
    const fresh = await run(runStatus, flow, ['--json']);
    const buffer = check(JSON.parse(fresh.out) as StatusReport, CheckName.buffer);
    assert.equal(fresh.code, ExitCode.ok, fresh.out);
    assert.equal(buffer.details.lockHeld, true);
    assert.ok(Number(buffer.details.lockAgeSeconds) >= 5);

    const stuck = await run(runStatus, flow, ['--max-lock-age', '1']);
    assert.equal(stuck.code, ExitCode.attention, stuck.out);
    assert.match(stuck.out, /^ {2}buffer\s+ATTENTION\s+.*; flush lock held for \d+ s/m);
    assert.match(
      stuck.out,
      /a flush has held the lock \S+ for \d+ s \(more than 1 s\) and keeps renewing it/,
    );

    await flow.cache.redis.set(keys.lock, 'set-by-hand');
    const forever = await run(runStatus, flow, []);
    assert.equal(forever.code, ExitCode.attention, forever.out);
    assert.match(forever.out, /the flush lock \S+ has no expiry, which no flush sets: .*redis-cli DEL/);
  } finally {
    await flow.cache.redis.del(keys.lock);
  }
});

test('a buffer that Redis lost needs attention: first the marker is missing, then it is newer than the rows', async () => {
  const keys = bufferKeys(flow.settings);
  const before = await flow.cache.redis.get(keys.since);
  assert.ok(before, 'the flushes so far set the marker');
  try {
    // what a restart or FLUSHALL leaves of this buffer's marker
    await flow.cache.redis.del(keys.since);
    const lost = await run(runStatus, flow, []);
    assert.equal(lost.code, ExitCode.attention, lost.out);
    assert.match(lost.out, /buffer-since is missing although rows exist: Redis lost its data/);

    // the next flush sets it again, later than every row
    await flow.fn.flushHandler();
    const reset = await run(runStatus, flow, []);
    assert.equal(reset.code, ExitCode.attention, reset.out);
    assert.match(
      reset.out,
      /the buffer was reset \d+ (ms|s) ago \(.*\): Redis lost its data .* nothing acknowledged was lost/,
    );
    // a reset longer ago than --max-reset-age is history
    const later = await run(runStatus, flow, ['--max-reset-age', '0']);
    assert.equal(later.code, ExitCode.ok, later.out);
  } finally {
    await flow.cache.redis.set(keys.since, before as string);
  }
});

test('usage problems are reported with what to do', async () => {
  const help = await run(runStatus, flow, ['--help']);
  assert.equal(help.code, ExitCode.ok);
  assert.match(help.out, /Usage: npx tsx ops\/status\.ts/);
  const badAge = await run(runStatus, flow, ['--max-message-age', 'soon']);
  assert.equal(badAge.code, ExitCode.usage);
  assert.match(badAge.err, /--max-message-age soon must be a number of seconds/);
  const badSkip = await run(runStatus, flow, ['--skip', 'cache']);
  assert.equal(badSkip.code, ExitCode.usage);
  assert.match(badSkip.err, /must be one of queue, dlq, buffer, database, alarms/);
  const noStack = await run(runStatus, flow, [], { ...flow.env, STAGE: 'nosuch' });
  assert.equal(noStack.code, ExitCode.usage);
  assert.match(noStack.err, /no stack outputs for stage nosuch: .*outputs\.nosuch\.json does not exist/);
});

// CloudWatch as status reads it: the latest ApproximateAgeOfOldestMessage per
// queue (GetMetricData) and the alarms by name prefix and state (DescribeAlarms).
function installCloudWatch(ages: Map<string, number[]>, alarms: MetricAlarm[]) {
  return installHandlers(CloudWatchClient, 'cloudwatch', {
    GetMetricData(input: GetMetricDataInput) {
      return {
        MetricDataResults: (input.MetricDataQueries ?? []).map((query) => {
          const queue =
            query.MetricStat?.Metric?.Dimensions?.find((d) => d.Name === 'QueueName')?.Value ?? '';
          return { Id: query.Id, Values: ages.get(queue) ?? [], StatusCode: 'Complete' };
        }),
      };
    },
    DescribeAlarms(input: DescribeAlarmsInput) {
      return {
        MetricAlarms: alarms.filter(
          (a) =>
            (a.AlarmName ?? '').startsWith(input.AlarmNamePrefix ?? '') &&
            (input.StateValue === undefined || a.StateValue === input.StateValue),
        ),
        CompositeAlarms: [],
      };
    },
  });
}

test('in AWS the oldest message age comes from CloudWatch and our alarms in ALARM need attention', async () => {
  const { outputs } = flow.stack;
  const queueName = outputs.queueUrl.slice(outputs.queueUrl.lastIndexOf('/') + 1);
  const prefix = `${outputs.app}-${outputs.stage}.`;
  const ages = new Map([[queueName, [1200, 30]]]);
  const alarms: MetricAlarm[] = [
    { AlarmName: `${prefix}queue-oldest-message-age`, StateValue: 'ALARM', StateReason: 'Threshold Crossed' },
    { AlarmName: `${prefix}db-cpu`, StateValue: 'OK' },
    { AlarmName: 'another-stack.dlq-messages', StateValue: 'ALARM' },
  ];
  const fake = installCloudWatch(ages, alarms);
  const cloudwatch = new CloudWatchClient({ region: 'us-east-1' });
  const { endpoint: _local, ...awsOutputs } = outputs;
  const deps = {
    target: { outputs: awsOutputs, local: false, aws: flow.stack.config.aws },
    sqs: flow.stack.clients.sqs,
    cloudwatch,
    buffer: flow.settings,
    redis: flow.cache.redis,
    database: { pool: flow.db.pool, schema: flow.db.schema },
  };
  try {
    const report = await collectStatus(deps);
    assert.equal(report.target, 'aws');
    assert.equal(report.healthy, false);
    const queue = check(report, CheckName.queue);
    assert.equal(queue.state, CheckState.attention);
    assert.equal(queue.details.oldestMessageAgeSeconds, 1200);
    assert.match(queue.summary, /oldest message 20 min 0 s old/);
    assert.match(queue.problems[0] ?? '', /the oldest queued message is 20 min 0 s old \(more than 900 s\)/);
    const firing = check(report, CheckName.alarms);
    assert.equal(firing.state, CheckState.attention);
    assert.equal(firing.summary, `${prefix}queue-oldest-message-age`);
    assert.match(check(report, CheckName.dlq).summary, /oldest message age: no data in the last 15 min/);

    ages.set(queueName, [40]);
    alarms[0] = { ...alarms[0], StateValue: 'OK' };
    const calm = await collectStatus(deps);
    assert.equal(calm.healthy, true, JSON.stringify(calm.checks));
    assert.equal(check(calm, CheckName.alarms).summary, `none of ${prefix}* in ALARM`);
  } finally {
    cloudwatch.destroy();
    fake.restore();
  }
});
