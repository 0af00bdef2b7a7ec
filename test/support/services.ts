import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadTestConfig } from '../../lib/config.ts';

// Tests talk to the machine's real PostgreSQL and Redis. Each test file works
// in its own schema and key prefix, so files run in parallel and leave nothing.
const config = loadTestConfig();
export const testDatabaseUrl = config.databaseUrl;
export const testRedisUrl = config.redisUrl;

export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${randomBytes(4).toString('hex')}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_');
}

export interface TestSchema {
  schema: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestSchema(label = 't', url = testDatabaseUrl): Promise<TestSchema> {
  const schema = uniqueName(label);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  await pool.query(`CREATE SCHEMA ${schema}`);
  return {
    schema,
    pool,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}

export interface TestRedis {
  prefix: string;
  redis: Redis;
  cleanup(): Promise<void>;
}

export async function createTestRedis(label = 't', url = testRedisUrl): Promise<TestRedis> {
  const prefix = `test:${uniqueName(label)}:`;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  return {
    prefix,
    redis,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}
