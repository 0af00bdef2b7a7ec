import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Redis } from 'ioredis';
import { freePort } from '../lib/net.ts';
import { startRedisEmulator } from './redis-emulator.ts';

// Redis and PostgreSQL for the demo. REDIS_URL / DATABASE_URL (passed in from
// loadLocalConfig) win; without them a fresh machine with only Node.js still
// runs the demo:
//  - PostgreSQL: PGlite (the PostgreSQL engine compiled to WebAssembly, in
//    memory), served over the wire protocol by pglite-socket so pg.Pool talks
//    to it like to any server. It runs as root and as any user (a native
//    postgres refuses root), and needs no install step.
//  - Redis: a redis-server found on the PATH (a free port, no persistence,
//    killed with this process); else the in-process emulation in
//    redis-emulator.ts.

export const RedisSource = {
  url: 'REDIS_URL',
  server: 'redis-server',
  emulation: 'emulation',
} as const;
export type RedisSource = (typeof RedisSource)[keyof typeof RedisSource];

export const DatabaseSource = { url: 'DATABASE_URL', pglite: 'pglite' } as const;
export type DatabaseSource = (typeof DatabaseSource)[keyof typeof DatabaseSource];

export interface LocalServicesOptions {
  redisUrl?: string | undefined;
  databaseUrl?: string | undefined;
  // the redis-server command to try; false skips it (tests of the fallback)
  redisServer?: string | false;
  // one line per service saying which was chosen
  log?: (line: string) => void;
  // pglite-socket multiplexes connections onto one PGlite session
  maxDatabaseConnections?: number;
}

export interface LocalServices {
  redisUrl: string;
  databaseUrl: string;
  redis: RedisSource;
  database: DatabaseSource;
  stop(): Promise<void>;
}

// Connections pglite-socket accepts at once: the function's pool, the demo's
// pool and migrations fit comfortably.
const defaultMaxDatabaseConnections = 32;
const redisStartTimeoutMs = 10_000;

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

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

async function startPglite(maxConnections: number) {
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

export async function startLocalServices(options: LocalServicesOptions = {}): Promise<LocalServices> {
  const log = options.log ?? (() => {});
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
  };
  try {
    let databaseUrl: string;
    let database: DatabaseSource;
    if (options.databaseUrl !== undefined) {
      databaseUrl = options.databaseUrl;
      database = DatabaseSource.url;
      log(`PostgreSQL: ${redact(databaseUrl)} (DATABASE_URL)`);
    } else {
      const pglite = await startPglite(options.maxDatabaseConnections ?? defaultMaxDatabaseConnections);
      stops.push(pglite.stop);
      databaseUrl = pglite.url;
      database = DatabaseSource.pglite;
      log(`PostgreSQL: embedded PGlite (in memory) on ${databaseUrl} (set DATABASE_URL to use a server)`);
    }

    let redisUrl: string;
    let redis: RedisSource;
    const command = options.redisServer ?? 'redis-server';
    const version =
      options.redisUrl === undefined && command !== false ? await redisServerVersion(command) : undefined;
    if (options.redisUrl !== undefined) {
      redisUrl = options.redisUrl;
      redis = RedisSource.url;
      log(`Redis: ${redact(redisUrl)} (REDIS_URL)`);
    } else if (command !== false && version !== undefined) {
      const server = await startRedisServer(command);
      stops.push(server.stop);
      redisUrl = server.url;
      redis = RedisSource.server;
      log(
        `Redis: redis-server ${version} from the PATH on ${redisUrl}, no persistence (set REDIS_URL to use another)`,
      );
    } else {
      const emulator = await startRedisEmulator({ port: 0 });
      stops.push(emulator.stop);
      redisUrl = emulator.url;
      redis = RedisSource.emulation;
      log(
        `Redis: in-process emulation on ${redisUrl} (no redis-server on the PATH; set REDIS_URL to use a server)`,
      );
    }
    return { redisUrl, databaseUrl, redis, database, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
