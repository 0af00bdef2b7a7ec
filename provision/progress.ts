import { formatElapsed } from '../lib/poll.ts';
import type { Log } from '../lib/reconcile.ts';

// The onProgress of pollUntil/retryWhile, worded like lib/poll.ts withProgress
// (which wraps SDK waiters): what is being waited on and for how long.
export function reportElapsed(log: Log, what: string): (elapsedMs: number) => void {
  return (elapsedMs) => log.progress(`waiting for ${what}: ${formatElapsed(elapsedMs)}`);
}
