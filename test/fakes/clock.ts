import { syncBuiltinESMExports } from 'node:module';
import timersPromises from 'node:timers/promises';

// A virtual clock for the whole process: Date.now, setTimeout, setInterval
// and node:timers/promises' setTimeout (lib/poll.ts, the SDK waiters, the
// SDK's retries) all run on it, and waiting costs no real time. Whenever
// nothing but timers is left to do, the clock jumps to the earliest one and
// fires it. Work that takes real time without a timer (a request to the
// in-process S3/SNS/SQS emulator) is passed to `hold`: the clock stands still
// until it settles, so such work takes no virtual time. Installed for a
// benchmark run (bench/provision.ts), not for tests: node:test has its own
// mock timers, which advance only when told.

export interface VirtualClock {
  now(): number;
  // the clock does not move until `work` settles
  hold<T>(work: Promise<T>): Promise<T>;
  // puts the real timers back
  restore(): void;
}

interface Timer {
  id: number;
  at: number;
  // firing order among timers due at the same time: the order they were set
  seq: number;
  callback: () => void;
  every?: number;
}

type Handle = { [Symbol.toPrimitive](): number } & Record<string, unknown>;

// Event-loop turns with nothing but timers left before the clock jumps:
// enough for an answered request's continuation to run and set its next timer.
const idleTurns = 5;
// A held request that has not settled after this long (real time) is waiting
// on a virtual timer itself: let the clock move rather than wait forever.
const stuckMs = 2_000;

export function installVirtualClock(): VirtualClock {
  const real = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    setInterval: globalThis.setInterval,
    clearInterval: globalThis.clearInterval,
    setImmediate: globalThis.setImmediate,
    dateNow: Date.now,
    sleep: timersPromises.setTimeout,
  };
  let now = real.dateNow();
  let seq = 0;
  let held = 0;
  let lastChange = real.dateNow();
  let stopped = false;
  const timers = new Map<number, Timer>();

  const schedule = (callback: () => void, ms: unknown, every?: number): Handle => {
    const delay = Math.max(1, Number(ms) || 0);
    const timer: Timer = { id: ++seq, at: now + delay, seq, callback, ...(every ? { every: delay } : {}) };
    timers.set(timer.id, timer);
    const handle: Handle = {
      [Symbol.toPrimitive]: () => timer.id,
      ref: () => handle,
      unref: () => handle,
      hasRef: () => true,
      refresh: () => {
        timer.at = now + delay;
        timers.set(timer.id, timer);
        return handle;
      },
      close: () => timers.delete(timer.id),
    };
    return handle;
  };
  const clear = (handle: unknown) => {
    if (handle !== undefined && handle !== null) timers.delete(Number(handle));
  };
  const fireNext = () => {
    let next: Timer | undefined;
    for (const timer of timers.values()) {
      if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) {
        next = timer;
      }
    }
    if (next === undefined) return;
    now = Math.max(now, next.at);
    if (next.every === undefined) timers.delete(next.id);
    else next.at = now + next.every;
    next.callback();
  };
  let idle = 0;
  const turn = () => {
    if (stopped) return;
    const stuck = held > 0 && real.dateNow() - lastChange > stuckMs;
    if (timers.size > 0 && (held === 0 || stuck)) {
      idle += 1;
      if (idle >= idleTurns) {
        idle = 0;
        lastChange = real.dateNow();
        fireNext();
      }
    } else idle = 0;
    real.setImmediate(turn);
  };

  const virtual = {
    setTimeout: (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      schedule(() => callback(...args), ms),
    setInterval: (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      schedule(() => callback(...args), ms, 1),
    sleep: <T>(ms?: number, value?: T, options?: { signal?: AbortSignal }) =>
      new Promise<T>((resolve, reject) => {
        const signal = options?.signal;
        if (signal?.aborted) return reject(signal.reason);
        const handle = schedule(() => resolve(value as T), ms);
        signal?.addEventListener('abort', () => {
          clear(handle);
          reject(signal.reason);
        });
      }),
  };
  Object.assign(globalThis, {
    setTimeout: virtual.setTimeout,
    clearTimeout: clear,
    setInterval: virtual.setInterval,
    clearInterval: clear,
  });
  Date.now = () => now;
  Object.assign(timersPromises, { setTimeout: virtual.sleep });
  syncBuiltinESMExports();
  real.setImmediate(turn);

  return {
    now: () => now,
    hold: async (work) => {
      held += 1;
      lastChange = real.dateNow();
      try {
        return await work;
      } finally {
        held -= 1;
        lastChange = real.dateNow();
      }
    },
    restore: () => {
      stopped = true;
      Object.assign(globalThis, {
        setTimeout: real.setTimeout,
        clearTimeout: real.clearTimeout,
        setInterval: real.setInterval,
        clearInterval: real.clearInterval,
      });
      Date.now = real.dateNow;
      Object.assign(timersPromises, { setTimeout: real.sleep });
      syncBuiltinESMExports();
    },
  };
}
