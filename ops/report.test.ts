import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { migrate, qualifiedTable } from '../lambda-image/schema.ts';
import { ExitCode } from '../lib/cli.ts';
import { freePort } from '../lib/net.ts';
import { reachTimeoutMs } from '../lib/reach.ts';
import { capture } from '../test/support/ops/io.ts';
import { createTestSchema, type TestSchema, testDatabaseUrl } from '../test/support/services.ts';
import { csvCell, type ReportRow, readReport, runReport } from './report.ts';

let db: TestSchema;
let root: string;

const files = [
  ['uploads/2024/a.txt', 3, '2024-01-10T08:00:00Z'],
  ['uploads/2024/b, "quoted".csv', 10, '2024-02-01T00:00:00Z'],
  ['uploads/2024/c.txt', 0, '2024-02-15T12:00:00Z'],
  ['uploads/2025/d.txt', 7, '2025-01-01T00:00:00Z'],
  ['uploads/=cmd|calc.txt', 1, '2025-03-01T00:00:00Z'],
  ['uploads/100%_done.txt', 2, '2025-03-02T00:00:00Z'],
] as const;

before(async () => {
  db = await createTestSchema('ops_report');
  await migrate(db.pool, db.schema);
  for (const [name, lines, time] of files) {
    await db.pool.query(
      `INSERT INTO ${qualifiedTable(db.schema)}
         (bucket, file_name, line_count, size_bytes, etag, version_id, sequencer, event_time)
       VALUES ('ada-bucket', $1, $2, $3, $4, NULL, '0055AED6DCD90281E5', $5)`,
      [name, lines, lines * 10, `etag-${lines}`, time],
    );
  }
  root = await mkdtemp(join(tmpdir(), 'ops-report-'));
});

after(async () => {
  await db.drop();
  await rm(root, { recursive: true, force: true });
});

const env = () => ({ DATABASE_URL: testDatabaseUrl, DB_SCHEMA: db.schema, STAGE: 'opstest' });

async function report(args: string[]): Promise<{ code: ExitCode; out: string; err: string }> {
  const io = capture(root);
  const code = await runReport(args, io, env());
  return { code, out: io.stdout(), err: io.stderr() };
}

test('the JSON report lists exactly what the database holds', async () => {
  const { code, out } = await report(['--json']);
  assert.equal(code, ExitCode.ok);
  const rows = JSON.parse(out) as ReportRow[];
  const { rows: expected } = await db.pool.query(
    `SELECT file_name, line_count::int, etag, event_time FROM ${qualifiedTable(db.schema)} ORDER BY bucket, file_name`,
  );
  assert.deepEqual(
    rows.map((r) => [r.fileName, r.lineCount, r.eTag, r.eventTime]),
    expected.map((r) => [r.file_name, r.line_count, r.etag, r.event_time.toISOString()]),
  );
});

test('filters by prefix and upload date; % and _ in a prefix are literal', async () => {
  const byPrefix = JSON.parse((await report(['--json', '--prefix', 'uploads/2024/'])).out) as ReportRow[];
  assert.deepEqual(
    byPrefix.map((r) => r.fileName),
    ['uploads/2024/a.txt', 'uploads/2024/b, "quoted".csv', 'uploads/2024/c.txt'],
  );
  const february = JSON.parse(
    (await report(['--format', 'json', '--since', '2024-02-01', '--until', '2024-03-01'])).out,
  ) as ReportRow[];
  assert.deepEqual(
    february.map((r) => r.fileName),
    ['uploads/2024/b, "quoted".csv', 'uploads/2024/c.txt'],
  );
  const literal = JSON.parse((await report(['--json', '--prefix', 'uploads/100%_'])).out) as ReportRow[];
  assert.deepEqual(
    literal.map((r) => r.fileName),
    ['uploads/100%_done.txt'],
  );
  const limited = JSON.parse((await report(['--json', '--limit', '2'])).out) as ReportRow[];
  assert.equal(limited.length, 2);
});

test('pages through the table without skipping or repeating a row', async () => {
  const all: string[] = [];
  for await (const row of readReport(db.pool, db.schema, {}, 2)) all.push(row.fileName);
  const { rows } = await db.pool.query(
    `SELECT file_name FROM ${qualifiedTable(db.schema)} ORDER BY file_name`,
  );
  assert.deepEqual(
    all,
    rows.map((r) => r.file_name),
  );
  const limited: string[] = [];
  for await (const row of readReport(db.pool, db.schema, { limit: 3 }, 2)) limited.push(row.fileName);
  assert.deepEqual(limited, all.slice(0, 3));
});

test('CSV quotes commas and quotes, and defuses spreadsheet formulas', async () => {
  const { out } = await report(['--format', 'csv', '--prefix', 'uploads/']);
  const lines = out.split('\r\n');
  assert.equal(lines[0], 'bucket,file_name,line_count,size_bytes,etag,version_id,event_time,recorded_at');
  assert.ok(lines.some((l) => l.startsWith('ada-bucket,"uploads/2024/b, ""quoted"".csv",10,100,etag-10,,')));
  assert.equal(csvCell('=1+1'), "'=1+1");
  assert.equal(csvCell('uploads/=cmd|calc.txt'), 'uploads/=cmd|calc.txt');
  assert.equal(csvCell(null), '');
});

test('the table ends with the totals', async () => {
  const { code, out } = await report([]);
  assert.equal(code, ExitCode.ok);
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^file\s+lines\s+bytes\s+uploaded$/);
  assert.equal(lines.at(-1), `6 files, 23 lines`);
  assert.match(out, /uploads\/2024\/a\.txt\s+3\s+30\s+2024-01-10T08:00:00\.000Z/);
});

test('usage problems and a missing database are reported with what to do', async () => {
  const badFormat = await report(['--format', 'xml']);
  assert.equal(badFormat.code, ExitCode.usage);
  assert.match(badFormat.err, /--format xml must be one of table, csv, json/);
  const badDate = await report(['--since', 'yesterday']);
  assert.equal(badDate.code, ExitCode.usage);
  assert.match(badDate.err, /--since yesterday is not a date/);
  const unknown = await report(['--colour']);
  assert.equal(unknown.code, ExitCode.usage);

  const io = capture(root);
  const code = await runReport([], io, { STAGE: 'opstest' });
  assert.equal(code, ExitCode.usage);
  assert.match(io.stderr(), /set DATABASE_URL/);
  assert.match(io.stderr(), /outputs\.opstest\.json/);
});

test('an unreachable database is named, password masked, and exits 1 at once', async () => {
  const closed = await freePort();
  const io = capture(root);
  const started = Date.now();
  const code = await runReport([], io, { DATABASE_URL: `postgres://ada:hunter2@127.0.0.1:${closed}/ops` });
  assert.equal(code, ExitCode.failed);
  assert.match(
    io.stderr(),
    new RegExp(
      `^error: cannot reach PostgreSQL at postgres://ada:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/ops \\(DATABASE_URL\\): .*ECONNREFUSED`,
    ),
  );
  assert.doesNotMatch(io.stderr(), /hunter2/);
  assert.ok(Date.now() - started < reachTimeoutMs, `${Date.now() - started} ms`);
});

test('--help explains the command without touching the database', async () => {
  const io = capture(root);
  assert.equal(await runReport(['--help'], io, {}), ExitCode.ok);
  assert.match(io.stdout(), /Usage: npx tsx ops\/report\.ts/);
});

test('a schema without the table is reported as a configuration problem', async () => {
  const io = capture(root);
  const code = await runReport([], io, { DATABASE_URL: testDatabaseUrl, DB_SCHEMA: 'no_such_schema_here' });
  assert.equal(code, ExitCode.usage);
  assert.match(io.stderr(), /no table no_such_schema_here\.line_counts: check DB_SCHEMA/);
});
