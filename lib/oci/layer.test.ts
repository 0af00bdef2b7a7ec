import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { computeDigest } from './digest.ts';
import { createLayer, layerEntries } from './layer.ts';

const files = [
  { path: '/var/task/index.mjs', contents: Buffer.from('export const handler = 1;\n') },
  { path: '/var/task/index.mjs.map', contents: Buffer.from('{"version":3}') },
];

test('the same files give byte-identical layers, whatever order they come in', async () => {
  const first = await createLayer(files);
  const second = await createLayer([...files].reverse());
  assert.ok(first.gzip.equals(second.gzip));
  assert.equal(first.digest, second.digest);
  assert.equal(first.diffId, second.diffId);
});

test('diff_id names the uncompressed tar and digest the gzip', async () => {
  const layer = await createLayer(files);
  assert.equal(layer.diffId, computeDigest(gunzipSync(layer.gzip)));
  assert.equal(layer.digest, computeDigest(layer.gzip));
  assert.notEqual(layer.diffId, layer.digest);
});

test('a changed byte changes the digest', async () => {
  const changed = await createLayer([
    files[0] as (typeof files)[0],
    { path: '/var/task/index.mjs.map', contents: Buffer.from('{"version":4}') },
  ]);
  assert.notEqual(changed.digest, (await createLayer(files)).digest);
});

test('the gzip header carries no timestamp and no file name', async () => {
  const { gzip } = await createLayer(files);
  assert.deepEqual([...gzip.subarray(0, 3)], [0x1f, 0x8b, 8]);
  // FLG: no FNAME/FCOMMENT/FEXTRA (RFC 1952 2.3.1)
  assert.equal(gzip[3], 0);
  assert.equal(gzip.readUInt32LE(4), 0);
  assert.equal(gzip[9], 3);
});

test('every parent directory is listed once, before its children', () => {
  assert.deepEqual(
    layerEntries(['/var/task/a.js', '/var/task/lib/b.js', '/opt/c']).map((e) => e.name),
    ['opt/', 'opt/c', 'var/', 'var/task/', 'var/task/a.js', 'var/task/lib/', 'var/task/lib/b.js'],
  );
});

test('paths that climb out of the root are refused', async () => {
  await assert.rejects(
    createLayer([{ path: '/var/../etc/passwd', contents: Buffer.from('x') }]),
    /without "\.\."/,
  );
});
