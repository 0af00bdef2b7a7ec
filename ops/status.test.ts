import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PurgeQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { bufferKeys } from '../lambda-image/buffer.ts';
import { CuttableProxy } from '../test/support/proxy.ts';
import { ExitCode } from './common.ts';
import { type Flow, run, startFlow } from './flow.fixture.ts';
import { CheckName, CheckState, runStatus, type StatusReport } from './status.ts';

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
