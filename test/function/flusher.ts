import { Redis } from 'ioredis';
import pg from 'pg';
import { FlushStage, flushBuffer } from '../../lambda-image/flush.ts';
import type { BufferSettings } from '../../lib/config.ts';

// A flusher in a process of its own, for the test that kills one mid-flush:
//   node --import tsx test/function/flusher.ts <redis url> <database url> <schema> <settings JSON>
// It takes the flush lock, reads the buffered entries, prints "claimed" and
// then waits forever (renewing its lease) until the test kills it.

const [redisUrl, databaseUrl, schema, settingsJson] = process.argv.slice(2);
if (
  redisUrl === undefined ||
  databaseUrl === undefined ||
  schema === undefined ||
  settingsJson === undefined
) {
  process.stderr.write('usage: flusher.ts <redis url> <database url> <schema> <settings JSON>\n');
  process.exit(2);
}
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
const settings = JSON.parse(settingsJson) as BufferSettings;
await flushBuffer(redis, pool, settings, schema, {
  checkpoint: async (stage) => {
    if (stage !== FlushStage.claimed) return;
    process.stdout.write('claimed\n');
    await new Promise(() => undefined);
  },
});
