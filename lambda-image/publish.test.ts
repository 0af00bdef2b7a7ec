import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { fixedCreated, fixedMtimeSeconds } from '../lib/oci/layer.ts';
import { MediaType } from '../lib/oci/media.ts';
import { RegistryClient } from '../lib/oci/registry.ts';
import type { Log } from '../lib/reconcile.ts';
import {
  type EcrControlPlane,
  registrySkipReason,
  startEcrControlPlane,
  startRegistry,
  type TestRegistry,
} from '../test/support/registry.ts';
import {
  baseEntrypoint,
  baseEnv,
  baseWorkingDir,
  Flavor,
  type PublicRegistry,
  startPublicRegistry,
} from '../test/support/registry-public.ts';
import { type PublishOptions, publishImage } from './publish.ts';
import { rdsCaBundlePath } from './recipe.ts';

const run = promisify(execFile);
const skip = registrySkipReason();

const quietLog: Log = { info() {}, warn() {}, progress() {} };

interface SkopeoConfig {
  architecture: string;
  config: { Cmd: string[]; Entrypoint: string[]; Env: string[]; WorkingDir: string };
  rootfs: { diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

describe('daemonless image publish', { skip }, () => {
  let registry: TestRegistry;
  let control: EcrControlPlane;
  let publicEcr: PublicRegistry;
  let workDir: string;

  before(async () => {
    registry = await startRegistry();
    control = await startEcrControlPlane(registry);
    publicEcr = await startPublicRegistry();
    workDir = await mkdtemp(join(tmpdir(), 'publish-test-'));
  });

  after(async () => {
    await publicEcr?.stop();
    await control?.stop();
    await registry?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  function options(repository: string, overrides: Partial<PublishOptions> = {}): PublishOptions {
    return {
      ecr: control.ecr,
      repositoryUri: `${registry.host}/${repository}`,
      architecture: 'arm64',
      log: quietLog,
      baseImage: publicEcr.reference,
      entry: 'test/support/bundle-entry.ts',
      caBundleUrl: publicEcr.caBundleUrl,
      ...overrides,
    };
  }

  async function skopeo(...args: string[]): Promise<string> {
    const { stdout } = await run('skopeo', [...args], { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  }
  const creds = () => ['--tls-verify=false', '--creds', `${registry.username}:${registry.password}`];

  test('publishes an image whose config keeps the base entrypoint and runs index.handler', async () => {
    const published = await publishImage(options('app'));
    assert.match(published.imageUri, new RegExp(`^${registry.host}/app@sha256:[0-9a-f]{64}$`));
    assert.equal(published.baseDigest, publicEcr.platforms.arm64.manifestDigest);
    // base layer, app layer, config: all new to this repository
    assert.equal(published.pushedBlobs, 3);
    assert.ok(control.tokenRequests >= 1, 'ECR GetAuthorizationToken was called');

    const config = JSON.parse(
      await skopeo('inspect', '--config', ...creds(), `docker://${published.imageUri}`),
    ) as SkopeoConfig;
    assert.equal(config.architecture, 'arm64');
    assert.deepEqual(config.config.Cmd, ['index.handler']);
    assert.deepEqual(config.config.Entrypoint, baseEntrypoint);
    assert.equal(config.config.WorkingDir, baseWorkingDir);
    for (const pair of baseEnv) assert.ok(config.config.Env.includes(pair), `base env ${pair} kept`);
    assert.ok(config.config.Env.includes(`DB_CA_FILE=${rdsCaBundlePath}`));
    assert.equal(config.rootfs.diff_ids.length, 2);
    assert.equal(config.rootfs.diff_ids[0], publicEcr.platforms.arm64.diffId);
    assert.equal(config.history.length, 2);
    assert.equal(config.history[1]?.created, fixedCreated);
    assert.match(config.history[1]?.created_by ?? '', /bundle/);

    const raw = JSON.parse(
      await skopeo('inspect', '--raw', ...creds(), `docker://${published.imageUri}`),
    ) as {
      mediaType: string;
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(raw.mediaType, MediaType.ociManifest);
    assert.equal(raw.layers[0]?.digest, publicEcr.platforms.arm64.layerDigest);
    assert.equal(raw.layers[1]?.mediaType, MediaType.ociLayerGzip);
  });

  test('the pushed image copies to a directory and its layer lists root-owned 0755/0644 entries at the fixed mtime', async () => {
    const published = await publishImage(options('app'));
    const target = join(workDir, 'copy');
    await skopeo(
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `${registry.username}:${registry.password}`,
      `docker://${published.imageUri}`,
      `dir:${target}`,
    );
    const manifest = JSON.parse(await readFile(join(target, 'manifest.json'), 'utf8')) as {
      layers: { digest: string }[];
    };
    const appLayer = join(target, (manifest.layers.at(-1)?.digest ?? '').replace('sha256:', ''));

    const { stdout } = await run('tar', ['--numeric-owner', '--full-time', '-tvzf', appLayer], {
      env: { ...process.env, TZ: 'UTC' },
    });
    const listing = stdout.trim().split('\n');
    assert.deepEqual(
      listing.map((line) => line.split(/\s+/).at(-1)),
      ['var/', 'var/task/', 'var/task/index.mjs', 'var/task/index.mjs.map', 'var/task/rds-global-bundle.pem'],
    );
    for (const line of listing) {
      const [mode, owner, , date, time, name] = line.split(/\s+/);
      assert.equal(mode, name?.endsWith('/') ? 'drwxr-xr-x' : '-rw-r--r--', line);
      assert.equal(owner, '0/0', line);
      assert.equal(`${date} ${time}`, '1980-01-01 00:00:00', line);
    }

    // the same facts from the tar headers themselves, plus: no links of any kind
    const extractor = extract();
    const headers: Header[] = [];
    extractor.on('entry', (header, stream, next) => {
      headers.push(header);
      stream.resume();
      stream.on('end', next);
    });
    extractor.end(gunzipSync(await readFile(appLayer)));
    await once(extractor, 'finish');
    for (const header of headers) {
      assert.ok(header.type === 'file' || header.type === 'directory', `${header.name} is ${header.type}`);
      assert.equal(header.mode, header.type === 'directory' ? 0o755 : 0o644);
      assert.equal(header.uid, 0);
      assert.equal(header.gid, 0);
      assert.equal(header.mtime?.getTime(), fixedMtimeSeconds * 1000);
    }
  });

  test('republishing unchanged sources uploads no blob and yields the same digest', async () => {
    const first = await publishImage(options('again'));
    assert.equal(first.pushedBlobs, 3);
    const second = await publishImage(options('again'));
    assert.equal(second.pushedBlobs, 0);
    assert.equal(second.digest, first.digest);
    assert.equal(second.imageUri, first.imageUri);
    assert.equal(second.tag, first.tag);
  });

  test('base blobs come through the redirect without the registry token', async () => {
    const before = { ...publicEcr.stats };
    await publishImage(options('redirected'));
    assert.ok(publicEcr.stats.blobRedirects > before.blobRedirects, 'blob GETs were redirected');
    assert.ok(publicEcr.stats.cdnRequests > before.cdnRequests, 'the second origin served them');
    assert.equal(publicEcr.stats.cdnRejected, 0, 'no request carried Authorization to the second origin');
    assert.ok(publicEcr.stats.tokenRequests >= 1, 'an anonymous token was requested');
  });

  test('an x86_64 function gets the linux/amd64 base, not the first entry or the attestation', async () => {
    const published = await publishImage(options('amd', { architecture: 'x86_64' }));
    assert.equal(published.baseDigest, publicEcr.platforms.amd64.manifestDigest);
    const config = JSON.parse(
      await skopeo('inspect', '--config', ...creds(), `docker://${published.imageUri}`),
    ) as SkopeoConfig;
    assert.equal(config.architecture, 'amd64');
    assert.equal(config.rootfs.diff_ids[0], publicEcr.platforms.amd64.diffId);
  });

  test('a Docker v2 base keeps Docker media types in the pushed manifest', async () => {
    const dockerBase = await startPublicRegistry({ flavor: Flavor.docker });
    try {
      const published = await publishImage(
        options('docker', { baseImage: dockerBase.reference, caBundleUrl: dockerBase.caBundleUrl }),
      );
      const raw = JSON.parse(
        await skopeo('inspect', '--raw', ...creds(), `docker://${published.imageUri}`),
      ) as {
        mediaType: string;
        config: { mediaType: string };
        layers: { mediaType: string }[];
      };
      assert.equal(raw.mediaType, MediaType.dockerManifest);
      assert.equal(raw.config.mediaType, MediaType.dockerConfig);
      assert.deepEqual(
        raw.layers.map((layer) => layer.mediaType),
        [MediaType.dockerLayerGzip, MediaType.dockerLayerGzip],
      );
    } finally {
      await dockerBase.stop();
    }
  });

  test('a corrupted base blob is refused with a digest mismatch and nothing is tagged', async () => {
    const tampered = await startPublicRegistry();
    try {
      tampered.corrupt(tampered.platforms.arm64.layerDigest);
      const publish = publishImage(
        options('tampered', { baseImage: tampered.reference, caBundleUrl: tampered.caBundleUrl }),
      );
      await assert.rejects(publish, (error: Error) => {
        assert.equal(error.name, 'DigestMismatchError');
        assert.match(error.message, /digest mismatch for base layer/);
        assert.ok(error.message.includes(tampered.platforms.arm64.layerDigest));
        return true;
      });
      const target = new RegistryClient({
        host: registry.host,
        repository: 'tampered',
        auth: { kind: 'basic', username: registry.username, password: registry.password },
      });
      assert.equal(await target.hasBlob(tampered.platforms.arm64.layerDigest), false);

      tampered.corrupt(tampered.platforms.arm64.configDigest);
      await assert.rejects(
        publishImage(
          options('tampered', { baseImage: tampered.reference, caBundleUrl: tampered.caBundleUrl }),
        ),
        /digest mismatch for base image config/,
      );
    } finally {
      await tampered.stop();
    }
  });

  test('wrong registry credentials fail with the HTTP status and what to check', async () => {
    const wrong = await startEcrControlPlane({ ...registry, password: 'not-the-password' });
    try {
      await assert.rejects(
        publishImage(options('denied', { ecr: wrong.ecr })),
        /HTTP 401.*check the credentials/,
      );
    } finally {
      await wrong.stop();
    }
  });
});
