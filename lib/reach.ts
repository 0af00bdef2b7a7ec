import { Redis } from 'ioredis';
import pg from 'pg';
import { describeError } from './errors.ts';

// A command's first look at the Redis and PostgreSQL it was given, before any
// work: one connection and one round trip each, within a few seconds, and a
// message that names the server (its password masked) and where the address
// came from. Without it a wrong REDIS_URL surfaced half a minute later as a
// MaxRetriesPerRequestError, and a wrong DATABASE_URL as a bare ECONNREFUSED.

// a reachable local or in-VPC server answers in milliseconds
export const reachTimeoutMs = 3_000;

class UnreachableServiceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnreachableServiceError';
  }
}

// The URL as it can be shown: user name kept, password replaced.
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

interface ReachTarget {
  // what to call it in the message: the URL, or host:port
  where: string;
  // where the address came from: REDIS_URL, DATABASE_URL, the stack outputs, ...
  source: string;
  // what to do about it
  hint: string;
}

// Connecting to "localhost" tries ::1 and 127.0.0.1; when both are refused
// Node rejects with an AggregateError whose own message is empty.
function describeCause(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    return error.errors.map((inner) => describeError(inner)).join('; ');
  }
  return describeError(error) || String(error);
}

function unreachable(service: string, target: ReachTarget, error: unknown): UnreachableServiceError {
  return new UnreachableServiceError(
    `cannot reach ${service} at ${target.where} (${target.source}): ${describeCause(error)}; ${target.hint}`,
    { cause: error },
  );
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// A PING on a connection of its own: no retries, no offline queue.
export async function checkRedisUrl(
  url: string,
  target: ReachTarget,
  timeoutMs = reachTimeoutMs,
): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // the connection's own error (ECONNREFUSED, ...) arrives as an event; the
  // promise then only says "Connection is closed."
  let connectionError: unknown;
  redis.on('error', (error: unknown) => {
    connectionError ??= error;
  });
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
    );
  } catch (error) {
    throw unreachable('Redis', target, connectionError ?? error);
  } finally {
    redis.disconnect();
  }
}

// SELECT 1 on a connection of its own.
export async function checkPostgresUrl(
  url: string,
  target: ReachTarget,
  timeoutMs = reachTimeoutMs,
): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await withTimeout(
      client.connect().then(() => client.query('SELECT 1')),
      timeoutMs,
    );
  } catch (error) {
    throw unreachable('PostgreSQL', target, error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// The same first look through a pool a command already built (from a host
// and a secret, say): one SELECT 1.
export async function checkPostgresPool(
  pool: pg.Pool,
  target: ReachTarget,
  timeoutMs = reachTimeoutMs,
): Promise<void> {
  try {
    await withTimeout(pool.query('SELECT 1'), timeoutMs);
  } catch (error) {
    throw unreachable('PostgreSQL', target, error);
  }
}
