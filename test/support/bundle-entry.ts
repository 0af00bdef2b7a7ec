import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadRuntimeConfig } from '../../lib/config.ts';

// A stand-in entry for the bundle tests, shaped like handler.ts: module-scope
// configuration and clients (cold start), the three named handler exports, and
// the same kinds of dependencies (the AWS SDK, CommonJS packages that call require).

const config = loadRuntimeConfig();
const s3 = new S3Client({ region: config.aws.region ?? 'us-east-1' });
const pool = new pg.Pool({ connectionString: config.database.url, max: 1 });
const redis = new Redis(config.redis.url ?? 'redis://127.0.0.1:6379', { lazyConnect: true });

export async function handler(): Promise<{ batchItemFailures: [] }> {
  return { batchItemFailures: [] };
}

export async function flushHandler(): Promise<{ clients: string[] }> {
  return { clients: [s3.constructor.name, pool.constructor.name, redis.constructor.name] };
}

export async function migrateHandler(): Promise<{ tables: string[] }> {
  return { tables: [] };
}
