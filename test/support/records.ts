import type pg from 'pg';
import type { CountedRecord } from '../../lambda-image/buffer.ts';
import { qualifiedTable } from '../../lambda-image/schema.ts';
import type { BufferSettings } from '../../lib/config.ts';

// Shared builders for the function's tests: records, buffer settings, rows.

export function testBufferSettings(
  keyPrefix: string,
  overrides: Partial<BufferSettings> = {},
): BufferSettings {
  return {
    keyPrefix,
    dedupeTtlSeconds: 3600,
    flushMaxEntries: 1000,
    flushLockMs: 10_000,
    claimIdleMs: 200,
    flushGatherMs: 0,
    ...overrides,
  };
}

export function countedRecord(overrides: Partial<CountedRecord> = {}): CountedRecord {
  return {
    bucket: 'uploads-test',
    key: 'uploads/a.txt',
    size: 10,
    eTag: 'd41d8cd98f00b204e9800998ecf8427e',
    sequencer: '0055AED6DCD90281E5',
    eventTime: '2025-01-02T03:04:05.000Z',
    eventName: 'ObjectCreated:Put',
    lines: 3,
    bytes: 10,
    ...overrides,
  };
}

// `count` records for distinct keys uploads/<label>-<i>.txt, each with i lines
export function countedRecords(count: number, label = 'f'): CountedRecord[] {
  return Array.from({ length: count }, (_, i) =>
    countedRecord({ key: `uploads/${label}-${i}.txt`, lines: i, bytes: i * 2 }),
  );
}

export interface Row {
  bucket: string;
  file_name: string;
  line_count: string;
  size_bytes: string;
  etag: string;
  version_id: string | null;
  sequencer: string;
  recorded_at: Date;
}

export async function readRows(pool: pg.Pool, schema: string): Promise<Row[]> {
  const { rows } = await pool.query<Row>(
    `SELECT bucket, file_name, line_count, size_bytes, etag, version_id, sequencer, recorded_at
       FROM ${qualifiedTable(schema)} ORDER BY bucket, file_name`,
  );
  return rows;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
