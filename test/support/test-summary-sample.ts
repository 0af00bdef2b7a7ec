import { describe, test } from 'node:test';

// Run by test-summary.test.ts through the summary reporter: one suite skipped
// whole, one test skipped at run time, one skipped without a reason.

describe('registry image push', { skip: 'needs docker-registry, skopeo, htpasswd' }, () => {
  test('never runs', () => {});
});

describe('a suite that runs', () => {
  test('passes', () => {});
  test('skips itself', (t) => t.skip('no redis-server on this machine'));
});

test('skipped without a reason', { skip: true }, () => {});
