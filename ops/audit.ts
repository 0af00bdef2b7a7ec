import { randomInt, randomUUID } from 'node:crypto';
import {
  type _Object,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  NoSuchKey,
  NotFound,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import type pg from 'pg';
import { qualifiedTable } from '../lambda-image/schema.ts';
import { ExitCode, isMain, runCommand } from '../lib/cli.ts';
import { createClient } from '../lib/clients.ts';
import { type Env, loadOpsConfig } from '../lib/config.ts';
import { stepError, UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import type { StackOutputs } from '../lib/outputs.ts';
import { withClient } from '../lib/pg.ts';
import { buildObjectCreatedEvent } from '../lib/s3-event.ts';
import { type Io, openDatabase, plural, processIo, resolveStack } from './common.ts';

// The end-to-end check: the bucket's objects against the database's rows,
// the two ends of the flow. Whatever got lost in between (an event S3 never
// sent, a message that expired, buffered records lost with a cache failover)
// shows up as an object without a row or with a row for other bytes, and
// --fix sends exactly those objects through the normal path again, as S3
// ObjectCreated events on the queue.

export const FindingKind = { missing: 'missing', stale: 'stale', orphan: 'orphan' } as const;
export type FindingKind = (typeof FindingKind)[keyof typeof FindingKind];

export interface Finding {
  kind: FindingKind;
  key: string;
  object?: { eTag: string; size: number; lastModified: string };
  row?: { eTag: string; size: number; lines: number; sequencer: string };
}

export const SkipReason = { changed: 'changed since listing', deleted: 'deleted since listing' } as const;

export interface AuditResult {
  bucket: string;
  prefix: string;
  objects: number;
  rows: number;
  missing: number;
  stale: number;
  orphans: number;
  findings: Finding[];
  fix: boolean;
  // --fix: events sent to the queue, objects left alone, sends that failed
  enqueued: number;
  skipped: { key: string; reason: string }[];
  failed: number;
  // the sequencer suffix of this run's events
  runStamp?: string;
}

const help = `Usage: npx tsx ops/audit.ts [options]

Compares the bucket with the database: every object under the uploads prefix
must have its row, with the same ETag and size. Reports objects without a row
(missing), rows recorded for other bytes (stale), and rows whose object no
longer exists (reported only: deleting a file does not delete its count).
With --fix, sends exactly the missing and stale objects to the queue as S3
ObjectCreated:Put events, so the function counts and records them the normal
way. Run it after any incident, or daily.

Options:
  --fix           re-enqueue the missing and stale objects
  --prefix TEXT   only keys starting with TEXT (within the uploads prefix)
  --json          the findings as JSON
  -h, --help      show this help

Exits 1 when objects are missing or stale and not fixed, 0 otherwise.
The bucket and queue are the stage's .ada/outputs.<stage>.json (STAGE);
the database is DATABASE_URL (or DB_HOST with DB_SECRET_ARN, or the outputs'
database) and DB_SCHEMA.
`;

// --- The sequencer of an audit event -------------------------------------
//
// The flush replaces a row only with a strictly larger sequencer (S3 rule:
// compare after right-padding the shorter with zeros), and the dedupe mark
// is (bucket, key, version or ETag, sequencer). S3's own sequencers are
// opaque: no value derived from a time (LastModified) can be placed among
// them. So an audit event takes the sequencer of what it replaces, plus
// this run's stamp appended:
// - a stale row with sequencer S gets S + stamp: right-padded, S compares as
//   S + 000…, so S + stamp is larger than S and the row is replaced; and any
//   real event newer than S is larger than S within S's own digits, so it is
//   also larger than S + stamp: a later upload is never held back, and this
//   event never overwrites a newer count.
// - a missing row gets 32 zeros + stamp: smaller than every real sequencer
//   (real ones are at most ~20 digits and never all zeros), so if the real
//   event for these bytes, or for a newer upload, is still on its way, it
//   wins. (An older event still in flight could then overwrite it; the next
//   audit finds that row stale and repairs it.)
// Either way the count itself is right: the function reads the object with
// If-Match on the listed ETag, so it counts exactly the bytes listed, or
// nothing if the object changed since (its own event counts the new bytes).
// The stamp (this run's time in ms, hex, plus a random tie-breaker) makes the
// event's identity new: a dedupe mark left behind by a buffered record that
// was lost (the stream entry gone, the mark still set) or by an earlier
// audit does not swallow it, and a later run's stamp is larger.
const missingBase = '0'.repeat(32);
const hexPattern = /^[0-9A-Fa-f]+$/;

export function createRunStamp(now = new Date(), tieBreaker = randomInt(4096)): string {
  return `${now.getTime().toString(16).padStart(12, '0')}${tieBreaker.toString(16).padStart(3, '0')}`.toUpperCase();
}

export function auditSequencer(stored: string | undefined, stamp: string): string {
  const base = stored !== undefined && hexPattern.test(stored) ? stored.toUpperCase() : missingBase;
  return `${base}${stamp}`;
}

// --- Comparing a page of the listing with the rows ------------------------

interface Row {
  file_name: string;
  etag: string;
  size_bytes: string;
  line_count: string;
  sequencer: string;
}

// S3 lists ETags quoted (ListObjectsV2 Contents.ETag); rows hold them bare, as events carry them.
function bareETag(eTag: string | undefined): string {
  return (eTag ?? '').replace(/"/g, '');
}

function compareObjects(objects: readonly _Object[], rows: ReadonlyMap<string, Row>): Finding[] {
  const findings: Finding[] = [];
  for (const object of objects) {
    const key = object.Key ?? '';
    const listed = {
      eTag: bareETag(object.ETag),
      size: object.Size ?? 0,
      lastModified: (object.LastModified ?? new Date(0)).toISOString(),
    };
    const row = rows.get(key);
    if (row === undefined) {
      findings.push({ kind: FindingKind.missing, key, object: listed });
      continue;
    }
    const recorded = {
      eTag: row.etag,
      size: Number(row.size_bytes),
      lines: Number(row.line_count),
      sequencer: row.sequencer,
    };
    if (recorded.eTag !== listed.eTag || recorded.size !== listed.size) {
      findings.push({ kind: FindingKind.stale, key, object: listed, row: recorded });
    }
  }
  return findings;
}

// --- Re-enqueueing ----------------------------------------------------------

interface FixContext {
  s3: S3Client;
  sqs: SQSClient;
  outputs: StackOutputs;
  runStamp: string;
  requestId: string;
}

// HeadObject answers 404 as NotFound (no body), GetObject as NoSuchKey.
function isNotFound(error: unknown): boolean {
  return error instanceof NotFound || error instanceof NoSuchKey;
}

// At most this many HeadObject calls at once: enough to hide latency, well
// under the SDK's 50 sockets per host.
const maxConcurrentHeads = 16;
// SQS: at most 10 entries per SendMessageBatch.
const maxSendBatch = 10;

// The object is read again (HeadObject) just before its event is built: its
// version id (on a versioned bucket) goes into the event, and an object that
// changed or went away since the listing is left to its own event.
async function enqueueFindings(
  context: FixContext,
  findings: readonly Finding[],
): Promise<{ enqueued: number; skipped: { key: string; reason: string }[]; failed: number }> {
  const { s3, sqs, outputs } = context;
  const limit = pLimit(maxConcurrentHeads);
  const skipped: { key: string; reason: string }[] = [];
  const bodies = await Promise.all(
    findings.map((finding) =>
      limit(async () => {
        const listed = finding.object;
        if (listed === undefined) return undefined;
        let head: HeadObjectCommandOutput;
        try {
          head = await s3.send(new HeadObjectCommand({ Bucket: outputs.bucket, Key: finding.key }));
        } catch (error) {
          if (isNotFound(error)) {
            skipped.push({ key: finding.key, reason: SkipReason.deleted });
            return undefined;
          }
          throw stepError(
            `read s3://${outputs.bucket}/${finding.key}`,
            error,
            'check s3:GetObject permission',
          );
        }
        if (bareETag(head.ETag) !== listed.eTag) {
          skipped.push({ key: finding.key, reason: SkipReason.changed });
          return undefined;
        }
        const event = buildObjectCreatedEvent({
          region: outputs.region,
          eventName: 'ObjectCreated:Put',
          // the upload's time, as the row's event_time means
          eventTime: head.LastModified ?? new Date(listed.lastModified),
          bucket: outputs.bucket,
          key: finding.key,
          size: head.ContentLength ?? listed.size,
          eTag: listed.eTag,
          versionId: head.VersionId === 'null' ? undefined : head.VersionId,
          sequencer: auditSequencer(finding.row?.sequencer, context.runStamp),
          requestId: context.requestId,
          sourceIp: '127.0.0.1',
          configurationId: 'ops-audit',
          principalId: `${outputs.app}-${outputs.stage}:ops-audit`,
          hostId: 'ops-audit',
        });
        return { key: finding.key, body: JSON.stringify(event) };
      }),
    ),
  );
  const messages = bodies.filter((m): m is { key: string; body: string } => m !== undefined);
  let enqueued = 0;
  let failed = 0;
  for (let i = 0; i < messages.length; i += maxSendBatch) {
    const batch = messages.slice(i, i + maxSendBatch);
    try {
      const reply = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: outputs.queueUrl,
          Entries: batch.map((m, j) => ({ Id: String(j), MessageBody: m.body })),
        }),
      );
      enqueued += reply.Successful?.length ?? 0;
      failed += reply.Failed?.length ?? 0;
    } catch (error) {
      throw stepError(
        `send ${batch.length} events to ${outputs.queueUrl}`,
        error,
        'check sqs:SendMessage permission',
      );
    }
  }
  return { enqueued, skipped, failed };
}

// --- The run ----------------------------------------------------------------

interface AuditOptions {
  prefix: string;
  fix: boolean;
  // one line per finding, as found
  onFinding?: (finding: Finding) => void;
  now?: Date;
}

async function tableExists(client: pg.PoolClient, schema: string): Promise<boolean> {
  const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [
    qualifiedTable(schema),
  ]);
  return rows[0]?.found !== null && rows[0]?.found !== undefined;
}

// The listing is compared page by page (1,000 keys, one indexed query each),
// and its keys are kept in a temporary table, so the rows without an object
// come out of one anti-join at the end: memory stays flat however large the
// bucket. (A merge of two sorted streams would need both in one order; S3
// lists in UTF-8 byte order, but not every S3-compatible store does.)
export async function auditBucket(
  deps: { s3: S3Client; sqs: SQSClient; pool: pg.Pool; schema: string; outputs: StackOutputs },
  options: AuditOptions,
): Promise<AuditResult> {
  const { outputs } = deps;
  const table = qualifiedTable(deps.schema);
  const result: AuditResult = {
    bucket: outputs.bucket,
    prefix: options.prefix,
    objects: 0,
    rows: 0,
    missing: 0,
    stale: 0,
    orphans: 0,
    findings: [],
    fix: options.fix,
    enqueued: 0,
    skipped: [],
    failed: 0,
  };
  const fix: FixContext | undefined = options.fix
    ? {
        s3: deps.s3,
        sqs: deps.sqs,
        outputs,
        runStamp: createRunStamp(options.now),
        requestId: randomUUID(),
      }
    : undefined;
  if (fix !== undefined) result.runStamp = fix.runStamp;
  const report = (finding: Finding) => {
    result.findings.push(finding);
    result[finding.kind === FindingKind.orphan ? 'orphans' : finding.kind] += 1;
    options.onFinding?.(finding);
  };

  // the temporary table lives as long as the session: the connection is closed after use
  await withClient(
    deps.pool,
    async (client) => {
      const hasTable = await tableExists(client, deps.schema);
      await client.query('CREATE TEMPORARY TABLE audit_listed (file_name text PRIMARY KEY)');
      const pages = paginateListObjectsV2(
        { client: deps.s3, pageSize: 1_000 },
        { Bucket: outputs.bucket, Prefix: options.prefix },
      );
      for await (const page of pages) {
        const objects = page.Contents ?? [];
        if (objects.length === 0) continue;
        result.objects += objects.length;
        const keys = objects.map((o) => o.Key ?? '');
        await client.query('INSERT INTO audit_listed SELECT unnest($1::text[]) ON CONFLICT DO NOTHING', [
          keys,
        ]);
        const rows = new Map<string, Row>();
        if (hasTable) {
          const found = await client.query<Row>(
            `SELECT file_name, etag, size_bytes, line_count, sequencer FROM ${table}
            WHERE bucket = $1 AND file_name = ANY($2::text[])`,
            [outputs.bucket, keys],
          );
          for (const row of found.rows) rows.set(row.file_name, row);
        }
        const findings = compareObjects(objects, rows);
        for (const finding of findings) report(finding);
        if (fix !== undefined && findings.length > 0) {
          const sent = await enqueueFindings(fix, findings);
          result.enqueued += sent.enqueued;
          result.failed += sent.failed;
          result.skipped.push(...sent.skipped);
        }
      }
      if (hasTable) {
        const counted = await client.query<{ rows: string }>(
          `SELECT count(*) AS rows FROM ${table} WHERE bucket = $1 AND starts_with(file_name, $2)`,
          [outputs.bucket, options.prefix],
        );
        result.rows = Number(counted.rows[0]?.rows ?? 0);
        const orphans = await client.query<Row>(
          `SELECT file_name, etag, size_bytes, line_count, sequencer FROM ${table} AS t
          WHERE bucket = $1 AND starts_with(file_name, $2)
            AND NOT EXISTS (SELECT 1 FROM audit_listed AS l WHERE l.file_name = t.file_name)
          ORDER BY file_name`,
          [outputs.bucket, options.prefix],
        );
        for (const row of orphans.rows) {
          report({
            kind: FindingKind.orphan,
            key: row.file_name,
            row: {
              eTag: row.etag,
              size: Number(row.size_bytes),
              lines: Number(row.line_count),
              sequencer: row.sequencer,
            },
          });
        }
      }
    },
    { discardAfterUse: true },
  );
  return result;
}

function formatFinding(finding: Finding): string {
  const { object, row } = finding;
  switch (finding.kind) {
    case FindingKind.missing:
      return `missing  ${finding.key}  (${object?.size} bytes, uploaded ${object?.lastModified}; no row)`;
    case FindingKind.stale:
      return `stale    ${finding.key}  (row: ETag ${row?.eTag}, ${row?.size} bytes; object: ETag ${object?.eTag}, ${object?.size} bytes)`;
    default:
      return `orphan   ${finding.key}  (row of ${plural(row?.lines ?? 0, 'line')}; the object no longer exists; kept)`;
  }
}

export function formatSummary(result: AuditResult, queueUrl: string): string {
  const lines = [
    `s3://${result.bucket}/${result.prefix}: ${plural(result.objects, 'object')}, ${plural(result.rows, 'row')}; ` +
      `${result.missing} missing, ${result.stale} stale, ${result.orphans} rows without an object`,
  ];
  if (result.missing + result.stale === 0) lines.push('every object has its row');
  else if (!result.fix) lines.push('run again with --fix to re-enqueue the missing and stale objects');
  else {
    lines.push(
      `re-enqueued ${plural(result.enqueued, 'object')} as S3 ObjectCreated:Put events to ${queueUrl} (sequencer suffix ${result.runStamp}); the function records them`,
    );
    for (const skipped of result.skipped)
      lines.push(`  left alone: ${skipped.key} (${skipped.reason}: its own event records it)`);
    if (result.failed > 0) lines.push(`${result.failed} could not be sent: run again`);
  }
  return `${lines.join('\n')}\n`;
}

function parseAuditArgs(argv: string[]) {
  const values = parseFlags(argv, {
    fix: { type: 'boolean' },
    prefix: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  return {
    help: values.help === true,
    fix: values.fix === true,
    json: values.json === true,
    prefix: values.prefix,
  };
}

export function runAudit(argv: string[], io: Io = processIo, env?: Env): Promise<ExitCode> {
  return runCommand(async () => {
    const args = parseAuditArgs(argv);
    if (args.help) {
      io.out(help);
      return ExitCode.ok;
    }
    const config = loadOpsConfig(env);
    const target = await resolveStack(config, io.root);
    const { outputs } = target;
    const prefix = args.prefix ?? outputs.uploadsPrefix;
    // only the uploads prefix is notified (provision/resources/notification.ts): other keys are never counted
    if (!prefix.startsWith(outputs.uploadsPrefix)) {
      throw new UsageError(
        `--prefix ${prefix} must start with the uploads prefix ${outputs.uploadsPrefix}: only those objects are counted`,
      );
    }
    const db = await openDatabase(config, io.root);
    const s3 = createClient(target.aws, 's3');
    const sqs = createClient(target.aws, 'sqs');
    try {
      const result = await auditBucket(
        { s3, sqs, pool: db.pool, schema: db.schema, outputs },
        {
          prefix,
          fix: args.fix,
          ...(args.json ? {} : { onFinding: (finding: Finding) => io.out(`${formatFinding(finding)}\n`) }),
        },
      );
      io.out(args.json ? `${JSON.stringify(result, null, 2)}\n` : formatSummary(result, outputs.queueUrl));
      const unresolved = result.missing + result.stale > 0 && (!result.fix || result.failed > 0);
      return unresolved ? ExitCode.attention : ExitCode.ok;
    } finally {
      s3.destroy();
      sqs.destroy();
      await db.close();
    }
  }, io);
}

if (isMain(import.meta.url)) {
  process.exitCode = await runAudit(process.argv.slice(2));
}
