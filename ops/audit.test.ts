import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  DeleteObjectCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
} from '@aws-sdk/client-s3';
import { bufferKeys } from '../lambda-image/buffer.ts';
import { compareSequencers, parseMessageBody } from '../lambda-image/events.ts';
import { qualifiedTable } from '../lambda-image/schema.ts';
import { ExitCode } from '../lib/cli.ts';
import { buildObjectCreatedEvent } from '../lib/s3-event.ts';
import { type Flow, run, startFlow } from '../test/support/ops/flow.ts';
import { type AuditResult, auditSequencer, createRunStamp, FindingKind, runAudit } from './audit.ts';

let flow: Flow;
before(async () => {
  flow = await startFlow('audit');
});
after(async () => {
  await flow.stop();
});

const keys = {
  intact: 'uploads/rec/intact.txt',
  rowDeleted: 'uploads/rec/row deleted + plus ação.txt',
  eventLost: 'uploads/rec/event-lost.txt',
  stale: 'uploads/rec/stale.txt',
  objectDeleted: 'uploads/rec/object-deleted.txt',
} as const;

async function uploadAndRecord(key: string, body: string): Promise<void> {
  await flow.upload(key, body);
  await flow.waitFor(`the row of ${key}`, async () => (await flow.rowFor(key)) !== undefined);
}

async function auditJson(args: string[] = []): Promise<{ code: ExitCode; result: AuditResult }> {
  const { code, out, err } = await run(runAudit, flow, ['--json', ...args]);
  assert.equal(err, '');
  return { code, result: JSON.parse(out) as AuditResult };
}

const byKind = (result: AuditResult, kind: FindingKind) =>
  result.findings
    .filter((f) => f.kind === kind)
    .map((f) => f.key)
    .sort();

test('finds and fixes a deleted row and an upload whose event never came; a second run finds nothing', async () => {
  const table = qualifiedTable(flow.db.schema);
  const { bucket, queueUrl } = flow.stack.outputs;
  await uploadAndRecord(keys.intact, 'a\nb\n');
  await uploadAndRecord(keys.rowDeleted, 'one\ntwo\nthree');
  await flow.db.pool.query(`DELETE FROM ${table} WHERE file_name = $1`, [keys.rowDeleted]);
  await uploadAndRecord(keys.stale, '1\n2\n3\n4\n');
  const staleBefore = await flow.rowFor(keys.stale);
  // the row still describes an earlier upload whose successor's event was lost
  await flow.db.pool.query(
    `UPDATE ${table} SET etag = 'etag-of-an-earlier-upload', line_count = 99 WHERE file_name = $1`,
    [keys.stale],
  );
  await uploadAndRecord(keys.objectDeleted, 'gone\n');
  await flow.stack.clients.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys.objectDeleted }));

  // S3 never sends this upload's event: the notification was taken off the
  // bucket for a while. (A record the cache loses is no longer such a case:
  // its message is acknowledged only once the record is committed, so SQS
  // brings it back.)
  const { s3 } = flow.stack.clients;
  const { $metadata: _, ...notification } = await s3.send(
    new GetBucketNotificationConfigurationCommand({ Bucket: bucket }),
  );
  await s3.send(
    new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: {} }),
  );
  try {
    await flow.upload(keys.eventLost, 'x\ny\n');
  } finally {
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: notification,
      }),
    );
  }
  await flow.stack.emulator.settled();
  await flow.waitFor('the queue to drain', async () => (await flow.depth(queueUrl)) === 0);
  assert.equal(await flow.rowFor(keys.eventLost), undefined);

  const found = await auditJson();
  assert.equal(found.code, ExitCode.attention);
  assert.deepEqual(byKind(found.result, FindingKind.missing), [keys.eventLost, keys.rowDeleted].sort());
  assert.deepEqual(byKind(found.result, FindingKind.stale), [keys.stale]);
  assert.deepEqual(byKind(found.result, FindingKind.orphan), [keys.objectDeleted]);
  assert.equal(found.result.objects, 4);
  assert.equal(found.result.rows, 3);
  assert.equal(found.result.enqueued, 0);
  assert.equal(await flow.depth(queueUrl), 0, 'without --fix nothing is sent');

  const fixed = await run(runAudit, flow, ['--fix']);
  assert.equal(fixed.code, ExitCode.ok, fixed.err);
  assert.match(fixed.out, /^missing {2}uploads\/rec\/event-lost\.txt {2}\(4 bytes, uploaded /m);
  assert.match(
    fixed.out,
    /^stale {4}uploads\/rec\/stale\.txt {2}\(row: ETag etag-of-an-earlier-upload, 8 bytes; object: ETag \w+, 8 bytes\)/m,
  );
  assert.match(
    fixed.out,
    /^orphan {3}uploads\/rec\/object-deleted\.txt {2}\(row of 1 line; the object no longer exists; kept\)/m,
  );
  assert.match(fixed.out, /re-enqueued 3 objects as S3 ObjectCreated:Put events/);
  const stamp = /sequencer suffix ([0-9A-F]+)\)/.exec(fixed.out)?.[1] ?? '';

  for (const [key, lines] of [
    [keys.rowDeleted, '3'],
    [keys.eventLost, '2'],
    [keys.stale, '4'],
  ] as const) {
    await flow.waitFor(`the row of ${key}`, async () => (await flow.rowFor(key))?.line_count === lines);
  }
  const lost = await flow.rowFor(keys.eventLost);
  assert.equal(lost?.sequencer, `${'0'.repeat(32)}${stamp}`);
  const stale = await flow.rowFor(keys.stale);
  assert.equal(stale?.sequencer, `${staleBefore?.sequencer}${stamp}`);
  assert.equal(stale?.etag, staleBefore?.etag);

  const again = await auditJson();
  assert.equal(again.code, ExitCode.ok);
  assert.equal(again.result.missing + again.result.stale, 0);
  assert.deepEqual(byKind(again.result, FindingKind.orphan), [keys.objectDeleted]);
  const text = await run(runAudit, flow, ['--prefix', 'uploads/rec/intact']);
  assert.equal(text.code, ExitCode.ok);
  assert.match(
    text.out,
    /1 object, 1 row; 0 missing, 0 stale, 0 rows without an object\nevery object has its row/,
  );
});

test('an audit event whose buffered record the cache loses is still recorded: its message waits for the commit', async () => {
  const key = 'uploads/rec/lost-twice.txt';
  const table = qualifiedTable(flow.db.schema);
  await uploadAndRecord(key, 'p\nq\nr\n');
  await flow.db.pool.query(`DELETE FROM ${table} WHERE file_name = $1`, [key]);
  const buffer = bufferKeys(flow.settings);
  await flow.cache.redis.set(buffer.lock, 'held-by-the-test', 'PX', 30_000);
  try {
    const first = await run(runAudit, flow, ['--fix', '--prefix', key]);
    assert.match(first.out, /re-enqueued 1 object /);
    await flow.waitFor('the audit record', async () => (await flow.cache.redis.xlen(buffer.stream)) === 1);
    // the cache loses the entry (its mark stays) while the message waits for its commit
    const [[id]] = (await flow.cache.redis.xrange(buffer.stream, '-', '+')) as [[string, string[]]];
    await flow.cache.redis.xdel(buffer.stream, id);
  } finally {
    await flow.cache.redis.del(buffer.lock);
  }
  // the message was not acknowledged: its next delivery records the file, no second audit needed
  await flow.waitFor('the row', async () => (await flow.rowFor(key))?.line_count === '3');
  const second = await run(runAudit, flow, ['--prefix', key]);
  assert.equal(second.code, ExitCode.ok);
  assert.match(second.out, /every object has its row/);
});

test('an audit event never overwrites a newer count and is never an old identity', async () => {
  const real = '0055AED6DCD90281E5';
  const newer = '0055AED6DCD90281F0';
  const stamp = createRunStamp(new Date('2025-01-01T00:00:00Z'), 1);
  const later = createRunStamp(new Date('2025-01-01T00:00:01Z'), 0);
  const forStale = auditSequencer(real, stamp);
  // replaces the row it repairs, but loses to any real event after that one
  assert.ok(compareSequencers(forStale, real) > 0);
  assert.ok(compareSequencers(forStale, newer) < 0);
  // a missing row's event loses to every real event, emulator ones included
  const forMissing = auditSequencer(undefined, stamp);
  for (const s of [real, '00000000000000001', '00062A1B2C3D4E5F60'])
    assert.ok(compareSequencers(forMissing, s) < 0);
  // each run is a new identity, and a later run is newer
  assert.ok(compareSequencers(auditSequencer(real, later), forStale) > 0);
  assert.ok(compareSequencers(auditSequencer(undefined, later), forMissing) > 0);
  assert.notEqual(auditSequencer(undefined, stamp), auditSequencer(undefined, later));
});

test('the events it sends parse as S3 events, with the key encoded as S3 encodes it', async () => {
  const event = buildObjectCreatedEvent({
    region: 'us-east-1',
    eventName: 'ObjectCreated:Put',
    eventTime: new Date('2025-01-02T03:04:05Z'),
    bucket: 'b',
    key: keys.rowDeleted,
    size: 13,
    eTag: '"abc"',
    sequencer: auditSequencer(undefined, createRunStamp()),
    requestId: 'r',
    sourceIp: '127.0.0.1',
    configurationId: 'ops-audit',
    principalId: 'p',
    hostId: 'h',
  });
  assert.equal(event.Records[0]?.s3.object.key, 'uploads/rec/row+deleted+%2B+plus+a%C3%A7%C3%A3o.txt');
  const parsed = parseMessageBody(JSON.stringify(event));
  assert.equal(parsed.kind, 'uploads');
  assert.deepEqual(
    parsed.kind === 'uploads' ? parsed.uploads.map((u) => [u.key, u.eTag, u.size, u.eventTime]) : [],
    [[keys.rowDeleted, 'abc', 13, '2025-01-02T03:04:05.000Z']],
  );
});

test('usage problems are reported with what to do', async () => {
  const outside = await run(runAudit, flow, ['--prefix', 'other/']);
  assert.equal(outside.code, ExitCode.usage);
  assert.match(outside.err, /--prefix other\/ must start with the uploads prefix uploads\//);
  const { DATABASE_URL: _database, ...bare } = flow.env;
  const noDatabase = await run(runAudit, flow, [], bare);
  assert.equal(noDatabase.code, ExitCode.usage);
  assert.match(noDatabase.err, /set DATABASE_URL/);
  const help = await run(runAudit, flow, ['-h']);
  assert.match(help.out, /Usage: npx tsx ops\/audit\.ts/);
});
