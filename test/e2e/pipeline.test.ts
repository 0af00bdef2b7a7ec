import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { generateAndUpload, type ManifestEntry } from '../../generator/generate.ts';
import { NameStyle } from '../../generator/names.ts';
import { parseMessageBody } from '../../lambda-image/events.ts';
import { MetricName } from '../../lib/metrics.ts';
import {
  countRows,
  expectRecorded,
  handledRecords,
  planNamed,
  type Rig,
  startRig,
  uploadPlan,
  waitFor,
} from './harness.ts';

// The whole flow on real services: generated files uploaded to the emulated
// S3, its events through SNS and SQS, the local event-source runner, the real
// function, Redis and PostgreSQL. The tests run in order on one stack.

let rig: Rig;

before(async () => {
  rig = await startRig({ label: 'e2e_pipeline' });
});

after(async () => {
  await rig?.stop();
});

function uploadsOf(body: string) {
  try {
    const message = parseMessageBody(body);
    return message.kind === 'uploads' ? message.uploads : [];
  } catch {
    return [];
  }
}

test('the s3:TestEvent sent when the notification is saved is acknowledged: no row, no dead letter', async () => {
  const handled = await waitFor('the TestEvent to be handled', () =>
    handledRecords(rig.invocations).find((h) => h.record.body.includes('s3:TestEvent')),
  );
  assert.equal(handled.failed, false);
  assert.equal(parseMessageBody(handled.record.body).kind, 'test');
  await waitFor('the queue to be empty', async () => {
    const depth = await rig.pipeline.queueDepth(rig.pipeline.stack.outputs.queueUrl);
    return depth.visible + depth.inFlight === 0;
  });
  assert.equal(await countRows(rig.db), 0);
  assert.deepEqual(await rig.pipeline.queueDepth(rig.pipeline.stack.outputs.dlqUrl), {
    visible: 0,
    inFlight: 0,
  });
});

test('200 generated files with edge-case shapes and keys are each recorded once with the manifest count', async () => {
  const { stack } = rig.pipeline;
  const generated = generateAndUpload({
    s3: stack.clients.s3,
    bucket: stack.outputs.bucket,
    prefix: 'uploads/e2e/',
    count: 200,
    minLines: 0,
    maxLines: 2_000,
    concurrency: 8,
    seed: 20_240_101,
    names: NameStyle.realistic,
  });
  // keys as users type them: spaces, a literal +, accents, folders; S3 sends
  // them form-encoded (space as +, + as %2B) and the row must hold them decoded
  const named = [
    planNamed('uploads/e2e/Cliente 0001 + Filhos/extrato março #1.txt', 120, 1),
    planNamed('uploads/e2e/a+b/c+d e/f.csv', 3, 2, false),
    planNamed('uploads/e2e/São Paulo/Ação Ótica Çedilha/ünïcödé ñ.txt', 7, 3),
    planNamed('uploads/e2e/deep/er/and/deeper/100%.txt', 1, 4, false),
    planNamed('uploads/e2e/empty folder/empty file.txt', 0, 5),
    // over S3's 5 MiB minimum part: uploaded in parts, announced as CompleteMultipartUpload
    planNamed('uploads/e2e/large/multipart file.csv', 75_000, 6, false),
  ];
  const extra = await Promise.all(named.map((plan) => uploadPlan(rig, plan)));
  const entries: ManifestEntry[] = [...(await generated), ...extra];

  assert.equal(entries.length, 206);
  assert.ok(entries.filter((e) => e.lines === 0).length >= 2, 'empty files among them');
  const multipart = extra.at(-1) as ManifestEntry;
  assert.ok(multipart.bytes > 5 * 1024 * 1024, `multipart file is ${multipart.bytes} bytes`);
  assert.match(multipart.etag ?? '', /-2$/);

  await expectRecorded(rig.pipeline, entries, 60_000);
  assert.equal(await countRows(rig.db), entries.length, 'one row per file, none extra');

  const events = handledRecords(rig.invocations).flatMap((h) => uploadsOf(h.record.body));
  const largeEvents = events.filter((u) => u.key === multipart.key);
  assert.deepEqual(
    largeEvents.map((u) => u.eventName),
    ['ObjectCreated:CompleteMultipartUpload'],
  );
  assert.deepEqual(await rig.pipeline.queueDepth(stack.outputs.dlqUrl), { visible: 0, inFlight: 0 });
});

test('the same key uploaded twice with different contents holds the second count', async () => {
  const key = 'uploads/e2e/overwritten/balancete 2025-01.csv';
  const first = await uploadPlan(rig, planNamed(key, 10, 11));
  await expectRecorded(rig.pipeline, [first]);
  const second = await uploadPlan(rig, planNamed(key, 25, 12, false));
  assert.notEqual(second.etag, first.etag);
  await expectRecorded(rig.pipeline, [second]);

  // back to back: the first event may find the object already replaced (412 on
  // its ETag) and is skipped; either way the newer upload's count wins
  const racedKey = 'uploads/e2e/overwritten/razão 2025-02.csv';
  const older = await uploadPlan(rig, planNamed(racedKey, 40, 13));
  const newer = await uploadPlan(rig, planNamed(racedKey, 4, 14));
  await expectRecorded(rig.pipeline, [newer]);
  await rig.pipeline.stack.emulator.settled();
  await waitFor('both events handled', () => {
    const seen = handledRecords(rig.invocations).filter(
      (h) => !h.failed && uploadsOf(h.record.body).some((u) => u.key === racedKey),
    );
    return seen.length >= 2;
  });
  // after both events and a flush, the older event has not overwritten the newer count
  await rig.pipeline.waitForFiles([{ key: racedKey, lines: 4 }], { timeoutMs: 1_500 });
  const [row] = await rig.pipeline.readFiles([{ key: racedKey, lines: newer.lines, etag: newer.etag ?? '' }]);
  assert.equal(
    row?.ok,
    true,
    `row holds ${row?.recorded} lines (etag ${row?.etag}), older upload had ${older.lines}`,
  );
  assert.equal(
    (
      await rig.db.pool.query(`SELECT 1 FROM ${rig.db.schema}.line_counts WHERE file_name = ANY($1)`, [
        [key, racedKey],
      ])
    ).rowCount,
    2,
  );
});

test('a duplicate S3 event re-sent to the queue is skipped and leaves one unchanged row', async () => {
  const key = 'uploads/e2e/duplicated/notas fiscais 2025-03.txt';
  const entry = await uploadPlan(rig, planNamed(key, 33, 21));
  await expectRecorded(rig.pipeline, [entry]);
  // the invocation commits the row before it returns, and is listed only once it has
  const original = await waitFor('the original event to be handled', () =>
    handledRecords(rig.invocations).find((h) => uploadsOf(h.record.body).some((u) => u.key === key)),
  );
  const [before] = await rig.pipeline.readFiles([{ key, lines: 33 }]);
  const duplicatesBefore = rig.pipeline.metrics()[MetricName.duplicatesSkipped] ?? 0;

  const { stack } = rig.pipeline;
  const sent = await stack.clients.sqs.send(
    new SendMessageCommand({ QueueUrl: stack.outputs.queueUrl, MessageBody: original.record.body }),
  );
  const redelivered = await waitFor('the re-sent message to be handled', () =>
    handledRecords(rig.invocations).find((h) => h.record.messageId === sent.MessageId),
  );
  assert.equal(redelivered.failed, false);
  assert.equal(rig.pipeline.metrics()[MetricName.duplicatesSkipped], duplicatesBefore + 1);

  const [afterwards] = await rig.pipeline.readFiles([{ key, lines: 33 }]);
  assert.equal(afterwards?.recorded, 33);
  assert.deepEqual(afterwards?.recordedAt, before?.recordedAt, 'the row was not rewritten');
  const { rows } = await rig.db.pool.query(
    `SELECT 1 FROM ${rig.db.schema}.line_counts WHERE file_name = $1`,
    [key],
  );
  assert.equal(rows.length, 1);
});
