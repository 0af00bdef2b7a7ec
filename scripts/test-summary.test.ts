import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatSummary } from './test-summary.ts';

const run = promisify(execFile);
const reporter = fileURLToPath(new URL('./test-summary.ts', import.meta.url));
const sample = fileURLToPath(new URL('../test/support/test-summary-sample.ts', import.meta.url));

test('a suite skipped whole is counted and listed with its reason', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--test', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout', sample],
    // a clean environment: an inherited NODE_TEST_CONTEXT would make the inner
    // run report to this one instead of printing
    { cwd: fileURLToPath(new URL('..', import.meta.url)), env: {} },
  );
  assert.match(stdout, /^ℹ skipped 2 tests, 1 suite$/m);
  assert.match(
    stdout,
    /^ℹ {3}suite test\/support\/test-summary-sample\.ts › registry image push: needs docker-registry, skopeo, htpasswd$/m,
  );
  assert.match(
    stdout,
    /^ℹ {3}test test\/support\/test-summary-sample\.ts › skips itself: no redis-server on this machine$/m,
  );
  assert.match(
    stdout,
    /^ℹ {3}test test\/support\/test-summary-sample\.ts › skipped without a reason: no reason given$/m,
  );
  // node's own totals are replaced, not printed twice
  assert.equal(stdout.match(/^ℹ skipped /gm)?.length, 1);
  assert.match(stdout, /^ℹ pass 1$/m);
  // the tests themselves are still reported by the spec reporter
  assert.match(stdout, /✔ passes/);
});

test('a run with nothing skipped says so and lists nothing', () => {
  assert.equal(
    formatSummary(['tests 2', 'pass 2', 'skipped 0'], []),
    'ℹ tests 2\nℹ pass 2\nℹ skipped 0 tests, 0 suites\n',
  );
});
