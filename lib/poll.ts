import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError } from './errors.ts';

export interface PollOptions {
  // what is being waited on, for progress lines and the timeout message
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  maxIntervalMs?: number;
  onProgress?: (elapsedMs: number) => void;
}

// For services without an SDK waiter. `check` returns a value when done and
// undefined to keep waiting; intervals back off ×1.5 up to maxIntervalMs.
export async function pollUntil<T>(check: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const started = Date.now();
  let interval = options.intervalMs ?? 2_000;
  for (;;) {
    const result = await check();
    if (result !== undefined) return result;
    const elapsed = Date.now() - started;
    if (elapsed >= options.timeoutMs) {
      throw new TimeoutError(`gave up waiting for ${options.what} after ${Math.round(elapsed / 1000)} s`);
    }
    options.onProgress?.(elapsed);
    await sleep(Math.min(interval, options.timeoutMs - elapsed));
    interval = Math.min(interval * 1.5, options.maxIntervalMs ?? 20_000);
  }
}

// Retries `attempt` while `retryable(error)` holds, with a bound. Used where
// AWS is eventually consistent (a new IAM role that Lambda cannot assume yet).
export async function retryWhile<T>(
  attempt: () => Promise<T>,
  retryable: (error: unknown) => boolean,
  options: PollOptions,
): Promise<T> {
  const started = Date.now();
  let interval = options.intervalMs ?? 2_000;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      const elapsed = Date.now() - started;
      if (!retryable(error) || elapsed >= options.timeoutMs) throw error;
      options.onProgress?.(elapsed);
      await sleep(Math.min(interval, Math.max(0, options.timeoutMs - elapsed)));
      interval = Math.min(interval * 1.5, options.maxIntervalMs ?? 20_000);
    }
  }
}

// SDK waiters report nothing while they wait (RDS and ElastiCache take
// minutes): this reports what is being waited on and for how long, every
// `everyMs`, until `work` settles.
export async function withProgress<T>(
  what: string,
  progress: (message: string) => void,
  work: Promise<T>,
  everyMs = 10_000,
): Promise<T> {
  const started = Date.now();
  const timer = setInterval(
    () => progress(`waiting for ${what}: ${formatElapsed(Date.now() - started)}`),
    everyMs,
  );
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

export function formatElapsed(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
