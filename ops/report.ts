import type pg from 'pg';
import { qualifiedTable, tableName } from '../lambda-image/schema.ts';
import { ExitCode, isMain, readWholeNumber, runCommand } from '../lib/cli.ts';
import { type Env, loadOpsConfig } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { type Io, openDatabase, processIo } from './common.ts';

// The recorded files and their line counts: what the accountants want to see.
// Reads PostgreSQL only, page by page, so a million rows never sit in memory.

const ReportFormat = { table: 'table', csv: 'csv', json: 'json' } as const;
type ReportFormat = (typeof ReportFormat)[keyof typeof ReportFormat];

interface ReportFilter {
  bucket?: string | undefined;
  // file names (S3 keys) starting with this
  prefix?: string | undefined;
  // upload time (the S3 event's time), since inclusive, until exclusive
  since?: Date | undefined;
  until?: Date | undefined;
  limit?: number | undefined;
}

export interface ReportRow {
  bucket: string;
  fileName: string;
  lineCount: number;
  sizeBytes: number;
  eTag: string;
  versionId: string | null;
  eventTime: string;
  recordedAt: string;
}

const help = `Usage: npx tsx ops/report.ts [options]

The recorded files with their line counts, from PostgreSQL.

Options:
  --prefix TEXT      only files whose name (S3 key) starts with TEXT, e.g. uploads/2024/
  --bucket NAME      only files of this bucket
  --since DATE       uploaded at or after DATE (ISO 8601; a bare date is UTC midnight)
  --until DATE       uploaded before DATE
  --limit N          at most N files
  --format FORMAT    table (default), csv or json
  --json             same as --format json
  -h, --help         show this help

Database: DATABASE_URL, or DB_HOST with DB_SECRET_ARN (and DB_PORT, DB_NAME,
DB_CA_FILE), or the database of STAGE in .ada/outputs.<stage>.json.
DB_SCHEMA names the schema (default public).
CSV text cells that a spreadsheet would run as a formula (starting with = + - @)
are prefixed with ' (OWASP "CSV injection").
`;

// rows per query: large enough to be quick, small enough to stream
const defaultPageSize = 1_000;

interface DbRow {
  bucket: string;
  file_name: string;
  line_count: string;
  size_bytes: string;
  etag: string;
  version_id: string | null;
  event_time: Date;
  recorded_at: Date;
}

// Keyset pagination on the UNIQUE (bucket, file_name) index: each page starts
// after the last row of the previous one, so pages stay cheap however deep.
export async function* readReport(
  pool: pg.Pool,
  schema: string,
  filter: ReportFilter = {},
  pageSize = defaultPageSize,
): AsyncGenerator<ReportRow> {
  let after: [string, string] | undefined;
  let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
  while (remaining > 0) {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const bind = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (filter.bucket !== undefined) conditions.push(`bucket = ${bind(filter.bucket)}`);
    // starts_with, not LIKE: a key may contain % or _
    if (filter.prefix !== undefined) conditions.push(`starts_with(file_name, ${bind(filter.prefix)})`);
    if (filter.since !== undefined) conditions.push(`event_time >= ${bind(filter.since)}`);
    if (filter.until !== undefined) conditions.push(`event_time < ${bind(filter.until)}`);
    if (after !== undefined) conditions.push(`(bucket, file_name) > (${bind(after[0])}, ${bind(after[1])})`);
    const size = Math.min(pageSize, remaining);
    const { rows } = await pool.query<DbRow>(
      `SELECT bucket, file_name, line_count, size_bytes, etag, version_id, event_time, recorded_at
         FROM ${qualifiedTable(schema)}
        ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
        ORDER BY bucket, file_name
        LIMIT ${bind(size)}`,
      values,
    );
    for (const row of rows) {
      yield {
        bucket: row.bucket,
        fileName: row.file_name,
        // bigint arrives as a string (pg); line counts fit a double up to 2^53
        lineCount: Number(row.line_count),
        sizeBytes: Number(row.size_bytes),
        eTag: row.etag,
        versionId: row.version_id,
        eventTime: row.event_time.toISOString(),
        recordedAt: row.recorded_at.toISOString(),
      };
    }
    remaining -= rows.length;
    const last = rows.at(-1);
    if (last === undefined || rows.length < size) return;
    after = [last.bucket, last.file_name];
  }
}

const columns = [
  ['bucket', 'bucket'],
  ['fileName', 'file_name'],
  ['lineCount', 'line_count'],
  ['sizeBytes', 'size_bytes'],
  ['eTag', 'etag'],
  ['versionId', 'version_id'],
  ['eventTime', 'event_time'],
  ['recordedAt', 'recorded_at'],
] as const satisfies readonly (readonly [keyof ReportRow, string])[];

export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const guarded = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(guarded) ? `"${guarded.replaceAll('"', '""')}"` : guarded;
}

// Writes the rows in the chosen format as they arrive. The table's column
// widths come from the first page; a longer value later only widens its row.
async function writeReport(
  rows: AsyncIterable<ReportRow>,
  format: ReportFormat,
  out: (text: string) => void,
): Promise<{ files: number; lines: number }> {
  let files = 0;
  let lines = 0;
  if (format === ReportFormat.json) {
    out('[');
    for await (const row of rows) {
      out(`${files === 0 ? '\n' : ',\n'}  ${JSON.stringify(row)}`);
      files++;
      lines += row.lineCount;
    }
    out(files === 0 ? ']\n' : '\n]\n');
    return { files, lines };
  }
  if (format === ReportFormat.csv) {
    out(`${columns.map(([, header]) => header).join(',')}\r\n`);
    for await (const row of rows) {
      out(`${columns.map(([key]) => csvCell(row[key])).join(',')}\r\n`);
      files++;
      lines += row.lineCount;
    }
    return { files, lines };
  }
  const shown = [
    ['fileName', 'file'],
    ['lineCount', 'lines'],
    ['sizeBytes', 'bytes'],
    ['eventTime', 'uploaded'],
  ] as const;
  const numeric = new Set<string>(['lineCount', 'sizeBytes']);
  const buffered: ReportRow[] = [];
  let widths: number[] | undefined;
  const line = (cells: string[]) =>
    `${cells
      .map((cell, i) =>
        numeric.has(shown[i]?.[0] ?? '') ? cell.padStart(widths?.[i] ?? 0) : cell.padEnd(widths?.[i] ?? 0),
      )
      .join('  ')
      .trimEnd()}\n`;
  const cellsOf = (row: ReportRow) => shown.map(([key]) => String(row[key]));
  const start = () => {
    widths = shown.map(([, header], i) =>
      Math.max(header.length, ...buffered.map((row) => cellsOf(row)[i]?.length ?? 0)),
    );
    out(line(shown.map(([, header]) => header)));
    for (const row of buffered) out(line(cellsOf(row)));
    buffered.length = 0;
  };
  for await (const row of rows) {
    files++;
    lines += row.lineCount;
    if (widths === undefined) {
      buffered.push(row);
      if (buffered.length >= defaultPageSize) start();
    } else out(line(cellsOf(row)));
  }
  if (widths === undefined) start();
  out(`${files} file${files === 1 ? '' : 's'}, ${lines} line${lines === 1 ? '' : 's'}\n`);
  return { files, lines };
}

function parseDate(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new UsageError(`--${flag} ${value} is not a date (e.g. 2024-05-31 or 2024-05-31T12:00:00Z)`);
  return date;
}

function parseReportArgs(argv: string[]): {
  help: boolean;
  format: ReportFormat;
  filter: ReportFilter;
} {
  const values = parseFlags(argv, {
    prefix: { type: 'string' },
    bucket: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    format: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const format = values.json ? ReportFormat.json : (values.format ?? ReportFormat.table);
  if (!Object.values(ReportFormat).includes(format as ReportFormat)) {
    throw new UsageError(`--format ${format} must be one of ${Object.values(ReportFormat).join(', ')}`);
  }
  const limit = values.limit === undefined ? undefined : readWholeNumber('limit', values.limit, 1);
  const filter: ReportFilter = {
    bucket: values.bucket,
    prefix: values.prefix,
    since: parseDate('since', values.since),
    until: parseDate('until', values.until),
    limit,
  };
  return { help: values.help ?? false, format: format as ReportFormat, filter };
}

export function runReport(argv: string[], io: Io = processIo, env?: Env): Promise<ExitCode> {
  return runCommand(async () => {
    const args = parseReportArgs(argv);
    if (args.help) {
      io.out(help);
      return ExitCode.ok;
    }
    const config = loadOpsConfig(env);
    const db = await openDatabase(config, io.root);
    try {
      await writeReport(readReport(db.pool, db.schema, args.filter), args.format, io.out);
    } catch (error) {
      // 42P01 undefined_table (PostgreSQL Appendix A)
      if ((error as { code?: unknown }).code === '42P01') {
        throw new UsageError(
          `no table ${db.schema}.${tableName}: check DB_SCHEMA (the function creates the table on its first run)`,
        );
      }
      throw error;
    } finally {
      await db.close();
    }
    return ExitCode.ok;
  }, io);
}

if (isMain(import.meta.url)) {
  process.exitCode = await runReport(process.argv.slice(2));
}
