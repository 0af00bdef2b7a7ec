import type { Redis } from 'ioredis';

// Wakes the invocations that wait for a commit: flushes PUBLISH on the
// buffer's channel after every settled batch and when they release the lock
// (flush.ts), and one subscriber connection per execution environment counts
// what arrives. A waiter notes the count before it looks at its marks and
// sleeps until the count moves, so an announcement made after the look is
// never missed (Redis delivers a channel's messages in order).
//
// Pub/sub is at-most-once: a message published while the subscriber
// reconnects is lost. Every wait therefore has a timeout (the lock's lease at
// most), and without a subscription (a server without SUBSCRIBE, such as the
// demo's emulation, or one that cannot be reached) waits are short polls.

export interface Notifier {
  // announcements seen so far
  readonly generation: number;
  // resolves once an announcement after `since` arrives, or after timeoutMs
  wait(since: number, timeoutMs: number): Promise<void>;
  close(): void;
}

// how long a wait may last while no subscription delivers announcements
const pollMs = 25;

export function createNotifier(redis: Redis, channel: string): Notifier {
  let generation = 0;
  let subscriber: Redis | undefined;
  let listening = false;
  let unavailable = false;
  let closed = false;
  const sleepers = new Set<() => void>();

  const wake = () => {
    generation += 1;
    for (const sleeper of sleepers) sleeper();
    sleepers.clear();
  };

  const close = () => {
    closed = true;
    listening = false;
    redis.off('end', close);
    subscriber?.disconnect();
    subscriber = undefined;
  };
  // the subscriber lives as long as the connection it was made from
  redis.once('end', close);

  const start = () => {
    if (subscriber !== undefined || unavailable || closed) return;
    // A connection in subscriber mode takes no other commands (Redis Pub/Sub
    // reference), so it is a second connection, made with the first one's
    // options; commands wait for it to connect, and it resubscribes itself
    // after a reconnect.
    const connection = redis.duplicate({ enableOfflineQueue: true, lazyConnect: false });
    subscriber = connection;
    connection.on('error', () => undefined);
    connection.on('message', (from: string) => {
      if (from === channel) wake();
    });
    let subscribed = false;
    connection.on('close', () => {
      listening = false;
    });
    // after a reconnect: ioredis has sent SUBSCRIBE again (autoResubscribe)
    connection.on('ready', () => {
      if (subscribed) listening = true;
    });
    connection.subscribe(channel).then(
      () => {
        subscribed = true;
        listening = true;
      },
      () => {
        // e.g. ERR unknown command: poll from now on
        unavailable = true;
        listening = false;
        connection.disconnect();
        if (subscriber === connection) subscriber = undefined;
      },
    );
  };

  return {
    get generation() {
      return generation;
    },
    wait(since, timeoutMs) {
      start();
      if (generation > since) return Promise.resolve();
      const limit = listening ? timeoutMs : Math.min(timeoutMs, pollMs);
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          sleepers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, limit));
        sleepers.add(done);
      });
    },
    close,
  };
}
