import type { Log } from '../lib/reconcile.ts';

const progressEveryMs = 10_000;

// SDK waiters report nothing while they wait; RDS, ElastiCache and VPC
// functions take minutes, so say what is being waited on and for how long.
export async function withProgress<T>(log: Log, what: string, wait: Promise<T>): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => {
    log.progress(`waiting for ${what} (${Math.round((Date.now() - started) / 1000)} s)`);
  }, progressEveryMs);
  timer.unref();
  try {
    return await wait;
  } finally {
    clearInterval(timer);
  }
}

export function reportElapsed(log: Log, what: string): (elapsedMs: number) => void {
  return (elapsedMs) => log.progress(`waiting for ${what} (${Math.round(elapsedMs / 1000)} s)`);
}
