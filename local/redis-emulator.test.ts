import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { testRedisUrl, uniqueName } from '../test/support/services.ts';
import { type RedisEmulator, startRedisEmulator } from './redis-emulator.ts';

// Every command the buffer may use, through ioredis, against the emulator and
// — the same assertions — against the machine's real Redis, so the emulator
// is checked against the real thing and not against itself.

let emulator: RedisEmulator;
before(async () => {
  emulator = await startRedisEmulator({ port: 0 });
});
after(async () => {
  await emulator.stop();
});

const targets = [
  { name: 'the emulator', url: () => emulator.url },
  { name: 'real Redis', url: () => testRedisUrl },
];

for (const target of targets) {
  describe(`Redis commands on ${target.name}`, () => {
    const prefix = `test:${uniqueName('redisemu')}:`;
    const key = (name: string) => `${prefix}${name}`;
    const clients: Redis[] = [];
    const connect = async (options: { connectionName?: string; db?: number } = {}) => {
      const client = new Redis(target.url(), { lazyConnect: true, maxRetriesPerRequest: 1, ...options });
      await client.connect();
      clients.push(client);
      return client;
    };
    let redis: Redis;

    before(async () => {
      redis = await connect();
    });
    after(async () => {
      for (const db of [0, 1]) {
        await redis.select(db);
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 100);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      }
      for (const client of clients) client.disconnect();
    });

    test('connects with ioredis (HELLO, CLIENT SETINFO, ready check) and answers PING, ECHO, INFO', async () => {
      const named = await connect({ connectionName: 'linecount-test' });
      assert.equal(named.status, 'ready');
      assert.equal(await named.ping(), 'PONG');
      assert.equal(await named.echo('hello'), 'hello');
      assert.match(await named.info(), /redis_version:\d/);
    });

    test('QUIT closes the connection politely', async () => {
      const client = await connect();
      assert.equal(await client.quit(), 'OK');
    });

    test('SELECT switches to another keyspace', async () => {
      const client = await connect({ db: 1 });
      await client.set(key('db'), 'one');
      assert.equal(await redis.get(key('db')), null);
      await client.select(0);
      assert.equal(await client.get(key('db')), null);
      await client.select(1);
      assert.equal(await client.get(key('db')), 'one');
      await client.del(key('db'));
    });

    test('GET, SET with NX, EX and PX, DEL and EXISTS', async () => {
      assert.equal(await redis.get(key('missing')), null);
      assert.equal(await redis.set(key('a'), 'value ü'), 'OK');
      assert.equal(await redis.get(key('a')), 'value ü');
      assert.equal(await redis.set(key('a'), 'other', 'NX'), null);
      assert.equal(await redis.get(key('a')), 'value ü');
      assert.equal(await redis.set(key('b'), '1', 'EX', 100, 'NX'), 'OK');
      const ttl = await redis.pttl(key('b'));
      assert.ok(ttl > 99_000 && ttl <= 100_000, String(ttl));
      assert.equal(await redis.set(key('c'), '1', 'PX', 50), 'OK');
      assert.equal(await redis.exists(key('a'), key('b'), key('a'), key('none')), 3);
      await sleep(80);
      assert.equal(await redis.get(key('c')), null, 'expired after PX');
      assert.equal(await redis.del(key('a'), key('b'), key('none')), 2);
      assert.equal(await redis.exists(key('a')), 0);
    });

    test('MGET answers each key, nil for a missing one or one of another type', async () => {
      await redis.set(key('m1'), 'one');
      await redis.set(key('m2'), 'two');
      await redis.xadd(key('mstream'), '*', 'f', 'v');
      assert.deepEqual(await redis.mget(key('m1'), key('none'), key('m2'), key('mstream')), [
        'one',
        null,
        'two',
        null,
      ]);
      await redis.del(key('m1'), key('m2'), key('mstream'));
    });

    test('PEXPIRE and PTTL', async () => {
      await redis.set(key('p'), 'x');
      assert.equal(await redis.pttl(key('p')), -1);
      assert.equal(await redis.pttl(key('none')), -2);
      assert.equal(await redis.pexpire(key('p'), 60), 1);
      assert.equal(await redis.pexpire(key('none'), 60), 0);
      const ttl = await redis.pttl(key('p'));
      assert.ok(ttl > 0 && ttl <= 60, String(ttl));
      await sleep(90);
      assert.equal(await redis.exists(key('p')), 0);
    });

    test('SCAN with MATCH and COUNT visits every matching key', async () => {
      const names = Array.from({ length: 25 }, (_, i) => key(`scan:${i}`));
      for (const name of names) await redis.set(name, '1');
      await redis.set(key('other'), '1');
      const found = new Set<string>();
      let cursor = '0';
      let rounds = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', key('scan:*'), 'COUNT', 7);
        for (const k of keys) found.add(k);
        cursor = next;
        rounds += 1;
      } while (cursor !== '0' && rounds < 10_000);
      assert.deepEqual([...found].sort(), [...names].sort());
      await redis.del(...names, key('other'));
    });

    test('MULTI/EXEC runs the queued commands; DISCARD drops them', async () => {
      const result = await redis.multi().set(key('t1'), 'a').get(key('t1')).exists(key('t1')).exec();
      // plain [error, value] pairs (ioredis decorates the arrays it returns)
      assert.deepEqual(
        result?.map(([e, value]) => [e, value]),
        [
          [null, 'OK'],
          [null, 'a'],
          [null, 1],
        ],
      );
      const client = await connect();
      assert.equal(await client.multi({ pipeline: false }), 'OK');
      assert.equal(await client.set(key('t2'), 'b'), 'QUEUED');
      assert.equal(await client.discard(), 'OK');
      assert.equal(await redis.get(key('t2')), null);
    });

    test('WATCH aborts EXEC when another client wrote the key, UNWATCH releases it', async () => {
      const other = await connect();
      const watcher = await connect();
      await watcher.watch(key('seen'));
      assert.equal(await watcher.exists(key('seen')), 0);
      await other.set(key('seen'), 'them', 'EX', 60);
      assert.equal(await watcher.multi().set(key('seen'), 'me', 'EX', 60).exec(), null);
      assert.equal(await watcher.get(key('seen')), 'them');

      await watcher.watch(key('seen'));
      await watcher.unwatch();
      await other.set(key('seen'), 'again');
      assert.deepEqual(await watcher.multi().set(key('seen'), 'me').exec(), [[null, 'OK']]);

      // the lock release pattern: WATCH → GET → MULTI DEL → EXEC
      await watcher.watch(key('seen'));
      assert.equal(await watcher.get(key('seen')), 'me');
      assert.deepEqual(await watcher.multi().del(key('seen')).exec(), [[null, 1]]);
      // a deleted key counts as modified for a watcher too
      await watcher.set(key('gone'), '1');
      await watcher.watch(key('gone'));
      await other.del(key('gone'));
      assert.equal(await watcher.multi().set(key('gone'), '2').exec(), null);
    });

    test('stream: XGROUP CREATE MKSTREAM, XADD, XLEN, XRANGE, XREADGROUP, XACK, XDEL', async () => {
      const stream = key('stream');
      assert.equal(await redis.xgroup('CREATE', stream, 'flushers', '0', 'MKSTREAM'), 'OK');
      await assert.rejects(redis.xgroup('CREATE', stream, 'flushers', '0', 'MKSTREAM'), /BUSYGROUP/);
      await assert.rejects(redis.xgroup('CREATE', key('nostream'), 'g', '0'), /requires the key to exist/);
      const ids: string[] = [];
      for (const n of [1, 2, 3]) ids.push((await redis.xadd(stream, '*', 'record', `r${n}`)) ?? '');
      assert.equal(await redis.xlen(stream), 3);
      assert.match(ids[0] ?? '', /^\d+-\d+$/);
      assert.deepEqual(await redis.xrange(stream, '-', '+', 'COUNT', 1), [[ids[0], ['record', 'r1']]]);
      assert.deepEqual(
        (await redis.xrange(stream, ids[1] ?? '', '+')).map(([id]) => id),
        ids.slice(1),
      );
      const first = await redis.xreadgroup('GROUP', 'flushers', 'c1', 'COUNT', 2, 'STREAMS', stream, '>');
      assert.deepEqual(first, [
        [
          stream,
          [
            [ids[0], ['record', 'r1']],
            [ids[1], ['record', 'r2']],
          ],
        ],
      ]);
      const second = await redis.xreadgroup('GROUP', 'flushers', 'c1', 'COUNT', 10, 'STREAMS', stream, '>');
      assert.deepEqual(second, [[stream, [[ids[2], ['record', 'r3']]]]]);
      assert.equal(
        await redis.xreadgroup('GROUP', 'flushers', 'c1', 'COUNT', 10, 'STREAMS', stream, '>'),
        null,
      );
      assert.equal(await redis.xack(stream, 'flushers', ids[0] ?? '', ids[0] ?? ''), 1);
      assert.equal(await redis.xdel(stream, ids[0] ?? '', '999-0'), 1);
      assert.equal(await redis.xlen(stream), 2);
      await assert.rejects(redis.xreadgroup('GROUP', 'nogroup', 'c1', 'STREAMS', stream, '>'), /NOGROUP/);
      await redis.set(key('plain'), 'x');
      await assert.rejects(redis.xlen(key('plain')), /WRONGTYPE/);
      await assert.rejects(redis.get(stream), /WRONGTYPE/);
    });

    test('XPENDING summary and XAUTOCLAIM hand idle entries to another consumer', async () => {
      const stream = key('claims');
      await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
      assert.deepEqual(await redis.xpending(stream, 'g'), [0, null, null, null]);
      const ids: string[] = [];
      for (const n of [1, 2, 3, 4]) ids.push((await redis.xadd(stream, '*', 'n', String(n))) ?? '');
      await redis.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 3, 'STREAMS', stream, '>');
      await redis.xreadgroup('GROUP', 'g', 'alive', 'COUNT', 1, 'STREAMS', stream, '>');
      assert.deepEqual(await redis.xpending(stream, 'g'), [
        4,
        ids[0],
        ids[3],
        [
          ['alive', '1'],
          ['dead', '3'],
        ],
      ]);
      // nothing is idle long enough yet
      const none = (await redis.xautoclaim(stream, 'g', 'rescuer', 60_000, '0-0', 'COUNT', 10)) as unknown[];
      assert.equal(none[0], '0-0');
      assert.deepEqual(none[1], []);
      await sleep(30);
      // an entry deleted while pending is dropped from the pending list and reported
      await redis.xdel(stream, ids[1] ?? '');
      const page1 = (await redis.xautoclaim(stream, 'g', 'rescuer', 20, '0-0', 'COUNT', 1)) as [
        string,
        [string, string[]][],
        string[],
      ];
      assert.deepEqual(page1[1], [[ids[0], ['n', '1']]]);
      const page2 = (await redis.xautoclaim(stream, 'g', 'rescuer', 20, page1[0], 'COUNT', 10)) as [
        string,
        [string, string[]][],
        string[],
      ];
      assert.equal(page2[0], '0-0');
      assert.deepEqual(
        page2[1].map(([id]) => id),
        [ids[2], ids[3]],
      );
      assert.deepEqual([...page1[2], ...page2[2]], [ids[1]]);
      assert.deepEqual(await redis.xpending(stream, 'g'), [3, ids[0], ids[3], [['rescuer', '3']]]);
      assert.equal(await redis.xack(stream, 'g', ids[0] ?? '', ids[2] ?? '', ids[3] ?? ''), 3);
      assert.deepEqual(await redis.xpending(stream, 'g'), [0, null, null, null]);
    });

    test('the dedupe pattern: WATCH → EXISTS → MULTI SET EX + XADD → EXEC, one winner among racers', async () => {
      const seen = key('dedupe:seen');
      const stream = key('dedupe:stream');
      const racers = await Promise.all([connect(), connect(), connect()]);
      const attempt = async (client: Redis) => {
        for (;;) {
          await client.watch(seen);
          if ((await client.exists(seen)) === 1) {
            await client.unwatch();
            return 'duplicate';
          }
          const result = await client.multi().set(seen, '1', 'EX', 60).xadd(stream, '*', 'r', 'x').exec();
          if (result !== null) return 'buffered';
        }
      };
      const outcomes = await Promise.all(racers.map(attempt));
      assert.deepEqual(outcomes.sort(), ['buffered', 'duplicate', 'duplicate']);
      assert.equal(await redis.xlen(stream), 1);
    });

    test('an unknown command is an error, not a hang', async () => {
      await assert.rejects(redis.call('NOSUCHCOMMAND', 'x'), /unknown command/i);
    });
  });
}
