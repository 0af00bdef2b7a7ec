import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeDigest } from './digest.ts';
import { appendLayer, selectPlatformManifest, setEnv } from './image.ts';
import { fixedCreated } from './layer.ts';
import { type ImageConfig, type ImageIndex, type ImageManifest, MediaType } from './media.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;

const index: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaType.ociIndex,
  manifests: [
    {
      mediaType: MediaType.ociManifest,
      digest: d('a'),
      size: 1,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    {
      mediaType: MediaType.ociManifest,
      digest: d('b'),
      size: 1,
      platform: { os: 'linux', architecture: 'amd64' },
    },
    {
      mediaType: MediaType.ociManifest,
      digest: d('c'),
      size: 1,
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    },
  ],
};

test('the platform manifest matches the function architecture, attestations skipped', () => {
  assert.equal(selectPlatformManifest(index, 'arm64').digest, d('c'));
  assert.equal(selectPlatformManifest(index, 'x86_64').digest, d('b'));
});

test('a missing platform names what the base offers', () => {
  const amd64Only = { ...index, manifests: index.manifests.slice(0, 2) };
  assert.throws(
    () => selectPlatformManifest(amd64Only, 'arm64'),
    /no linux\/arm64 manifest \(it offers linux\/amd64;/,
  );
});

const baseConfig: ImageConfig = {
  architecture: 'arm64',
  os: 'linux',
  config: {
    Env: ['PATH=/bin', 'NODE_OPTIONS=--old'],
    Entrypoint: ['/lambda-entrypoint.sh'],
    WorkingDir: '/var/task',
  },
  rootfs: { type: 'layers', diff_ids: [d('1')] },
  history: [{ created: '2025-01-01T00:00:00Z', created_by: 'base' }],
};

// a manifest family's media types: a layer added to a base keeps its family
const oci = { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip };
const docker = {
  manifest: MediaType.dockerManifest,
  config: MediaType.dockerConfig,
  layer: MediaType.dockerLayerGzip,
};
type Family = typeof oci | typeof docker;

function baseManifest(family: Family): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: family.manifest,
    config: { mediaType: family.config, digest: d('9'), size: 10 },
    layers: [{ mediaType: family.layer, digest: d('2'), size: 20 }],
  };
}

const layer = { diffId: d('3'), digest: d('4'), gzip: Buffer.alloc(30) };
const options = {
  cmd: ['index.handler'],
  env: { NODE_OPTIONS: '--enable-source-maps', DB_CA_FILE: '/x.pem' },
  createdBy: 'app',
};

function appendToBase(family: Family) {
  return appendLayer(baseConfig, baseManifest(family), family.manifest, layer, options);
}

test('appending a layer keeps the entrypoint and adds diff_id, history and Cmd', () => {
  const image = appendToBase(oci);
  const config = JSON.parse(image.config.toString()) as ImageConfig;
  assert.deepEqual(config.config?.Entrypoint, ['/lambda-entrypoint.sh']);
  assert.equal(config.config?.WorkingDir, '/var/task');
  assert.deepEqual(config.config?.Cmd, ['index.handler']);
  assert.deepEqual(config.config?.Env, [
    'PATH=/bin',
    'NODE_OPTIONS=--enable-source-maps',
    'DB_CA_FILE=/x.pem',
  ]);
  assert.deepEqual(config.rootfs.diff_ids, [d('1'), d('3')]);
  assert.deepEqual(config.history?.at(-1), { created: fixedCreated, created_by: 'app' });
  const manifest = JSON.parse(image.manifest.toString()) as ImageManifest;
  assert.equal(manifest.config.digest, computeDigest(image.config));
  assert.equal(manifest.config.size, image.config.byteLength);
  assert.equal(manifest.config.mediaType, MediaType.ociConfig);
  assert.deepEqual(manifest.layers.at(-1), { mediaType: MediaType.ociLayerGzip, size: 30, digest: d('4') });
});

test('a Docker v2 base gets a Docker layer type', () => {
  const image = appendToBase(docker);
  const manifest = JSON.parse(image.manifest.toString()) as ImageManifest;
  assert.equal(manifest.mediaType, MediaType.dockerManifest);
  assert.equal(manifest.config.mediaType, MediaType.dockerConfig);
  assert.equal(manifest.layers.at(-1)?.mediaType, MediaType.dockerLayerGzip);
});

test('the same inputs give the same manifest bytes', () => {
  const a = appendToBase(oci);
  const b = appendLayer(
    structuredClone(baseConfig),
    baseManifest(oci),
    MediaType.ociManifest,
    layer,
    options,
  );
  assert.ok(a.manifest.equals(b.manifest));
});

test('a base whose config and manifest disagree on the layer count is refused', () => {
  const broken = { ...baseConfig, rootfs: { type: 'layers' as const, diff_ids: [] } };
  assert.throws(
    () => appendLayer(broken, baseManifest(oci), MediaType.ociManifest, layer, options),
    /0 diff_ids for 1 layers/,
  );
});

test('setEnv replaces a variable by name only', () => {
  assert.deepEqual(setEnv(['A=1', 'AB=2', 'B=x=y'], { A: '3' }), ['AB=2', 'B=x=y', 'A=3']);
});
