import { formatElapsed } from '../lib/poll.ts';
import type { Log } from '../lib/reconcile.ts';

// The onProgress of pollUntil/retryWhile, worded like lib/poll.ts withProgress
// (which wraps SDK waiters): what is being waited on and for how long.
export function reportElapsed(log: Log, what: string): (elapsedMs: number) => void {
  return (elapsedMs) => log.progress(`waiting for ${what}: ${formatElapsed(elapsedMs)}`);
}

export interface InFlight {
  started(step: string): void;
  finished(step: string): void;
  // the log the steps write to: messages as they are, progress as the shared line
  log: Log;
}

// Steps that run at once share the one progress line: a step's own progress
// (a long wait reports every few seconds) redraws it with every step in
// flight and how long each has run, so concurrent waiters never overwrite
// each other's line: `in flight: cache 3 min 12 s, database 2 min 40 s`.
export function trackInFlight(log: Log, now: () => number = Date.now): InFlight {
  const since = new Map<string, number>();
  const draw = () => {
    const at = now();
    const steps = [...since].map(([step, from]) => `${step} ${formatElapsed(at - from)}`);
    log.progress(`in flight: ${steps.join(', ')}`);
  };
  return {
    started: (step) => since.set(step, now()),
    finished: (step) => since.delete(step),
    log: {
      info: (message) => log.info(message),
      warn: (message) => log.warn(message),
      progress: () => draw(),
    },
  };
}
