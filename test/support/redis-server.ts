import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from '../../lib/net.ts';

// A redis-server of the test's own, on a free port, for the tests that must
// restart Redis or wipe it (FLUSHALL): the machine's shared Redis serves every
// other test at the same time and is never touched that way.

export interface PrivateRedis {
  url: string;
  port: number;
  // SHUTDOWN NOSAVE, then a new server on the same port: it comes back empty
  restart(): Promise<void>;
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

const startTimeoutMs = 10_000;

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'ada-test-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const launch = async () => {
    // no RDB snapshots, no AOF: a restart comes back empty, as a replaced node does
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    child = started;
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (started.exitCode !== null)
        throw new Error(`redis-server exited with ${started.exitCode} on port ${port}`);
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}`);
        await sleep(25);
      }
    }
  };

  const admin = async <T>(use: (redis: Redis) => Promise<T>): Promise<T> => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return await use(redis);
    } finally {
      redis.disconnect();
    }
  };

  const shutdown = async () => {
    const running = child;
    if (running === undefined || running.exitCode !== null) return;
    const exited = once(running, 'exit');
    await admin((redis) => redis.shutdown('NOSAVE')).catch(() => running.kill('SIGKILL'));
    await exited;
  };

  await launch();
  return {
    url,
    port,
    async restart() {
      await shutdown();
      await launch();
    },
    async flushAll() {
      await admin((redis) => redis.flushall());
    },
    async stop() {
      await shutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
