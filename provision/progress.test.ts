import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectingLog } from '../test/provision/context.ts';
import { reportElapsed, trackInFlight } from './progress.ts';

test('steps waiting at once share one progress line that names each with how long it has run', () => {
  const log = collectingLog();
  let now = 0;
  const inFlight = trackInFlight(log, () => now);
  inFlight.started('cache');
  now = 60_000;
  inFlight.started('database');
  now = 192_000;
  // each step's own progress redraws the shared line, whatever it says
  reportElapsed(inFlight.log, 'replication group x')(192_000);
  inFlight.log.progress('waiting for db instance y: 2 min 12 s');
  inFlight.log.info('create db instance y');
  inFlight.finished('cache');
  now = 200_000;
  inFlight.log.progress('waiting for db instance y: 2 min 20 s');
  assert.deepEqual(log.lines, [
    'progress: in flight: cache 3 min 12 s, database 2 min 12 s',
    'progress: in flight: cache 3 min 12 s, database 2 min 12 s',
    'create db instance y',
    'progress: in flight: database 2 min 20 s',
  ]);
});
