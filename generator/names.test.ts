import assert from 'node:assert/strict';
import { test } from 'node:test';
import { limits } from './args.ts';
import { createRunId, describeClient, NameStyle } from './names.ts';
import { planFiles } from './plan.ts';

const run = (names: NameStyle, runId: string, count = 2000, prefix = 'uploads/') =>
  [...planFiles({ prefix, count, minLines: 0, maxLines: 0, seed: 5, names, runId })].map((plan) => plan.key);

test('simple keys are plain ASCII under a date folder', () => {
  for (const key of run(NameStyle.simple, 'mx0abc123456', 50)) {
    assert.match(key, /^uploads\/\d{4}-\d{2}-\d{2}\/cli-\d{4}-[a-z]+-mx0abc123456-\d{6}\.txt$/);
  }
});

test('realistic keys carry spaces, accents, + and # in NFC form, under year/month/client folders', () => {
  const keys = run(NameStyle.realistic, 'mx0abc123456');
  for (const key of keys) {
    assert.match(
      key,
      /^uploads\/\d{4}\/\d{2}\/CLI-\d{4} [^/]+\/[^/]+ \d{4}-\d{2}-\d{2} lote mx0abc123456 #\d+\.(csv|txt)$/,
    );
    assert.equal(key, key.normalize('NFC'));
  }
  const all = keys.join('\n');
  for (const needle of [' ', '+', '#', '&', 'ã', 'é', 'ç'])
    assert.ok(all.includes(needle), `no key contains ${needle}`);
});

test('keys are unique within a run and never repeat across runs', () => {
  for (const style of Object.values(NameStyle)) {
    const first = run(style, createRunId(1_700_000_000_000), 20_000);
    assert.equal(new Set(first).size, first.length);
    const second = new Set(run(style, createRunId(1_700_000_000_000), 20_000));
    assert.equal(
      first.some((key) => second.has(key)),
      false,
    );
  }
});

test('run ids differ even when two runs start in the same millisecond', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => createRunId(1_700_000_000_000)));
  assert.equal(ids.size, 1000);
});

test('a client code always maps to the same company', () => {
  assert.deepEqual(describeClient(42), describeClient(42));
  assert.equal(describeClient(42).code, 'CLI-0042');
  assert.notEqual(describeClient(42).name, describeClient(43).name);
});

test('keys stay within the 1,024-byte S3 limit with the longest prefix allowed', () => {
  const prefix = `${'ç'.repeat(limits.prefixBytes / 2 - 1)}/`;
  assert.ok(Buffer.byteLength(prefix) <= limits.prefixBytes);
  for (const key of run(NameStyle.realistic, createRunId(), 2000, prefix)) {
    assert.ok(Buffer.byteLength(key) <= 1024, `${Buffer.byteLength(key)} bytes`);
  }
});
