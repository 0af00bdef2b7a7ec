import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { pack as packTar } from 'tar-stream';

// A stand-in for public ECR (public.ecr.aws) serving a synthetic Lambda base
// image, with the behaviour the daemonless build must cope with:
// - anonymous Bearer auth: /v2/ answers 401 with a challenge, a token
//   endpoint hands out a pull token;
// - a multi-platform index (linux/amd64, linux/arm64) plus a BuildKit
//   attestation entry (platform unknown/unknown);
// - blob GETs answered with a 307 to a second origin (public ECR redirects to
//   CloudFront/S3) that rejects any request carrying Authorization, as a
//   pre-signed S3 URL does;
// - on demand, corrupted blob bytes, to prove digests are verified.

export const Flavor = { oci: 'oci', docker: 'docker' } as const;
export type Flavor = (typeof Flavor)[keyof typeof Flavor];

const types = {
  oci: {
    index: 'application/vnd.oci.image.index.v1+json',
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

export const baseEnv = [
  'PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin',
  'LANG=en_US.UTF-8',
  'LAMBDA_TASK_ROOT=/var/task',
  'LAMBDA_RUNTIME_DIR=/var/runtime',
];
export const baseEntrypoint = ['/lambda-entrypoint.sh'];
export const baseWorkingDir = '/var/task';

export interface BasePlatform {
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  diffId: string;
}

export interface PublicRegistryStats {
  tokenRequests: number;
  unauthorized: number;
  blobRedirects: number;
  cdnRequests: number;
  // requests the second origin refused because they carried Authorization
  cdnRejected: number;
}

export interface PublicRegistry {
  host: string;
  reference: string;
  caBundleUrl: string;
  indexDigest: string;
  platforms: { amd64: BasePlatform; arm64: BasePlatform };
  stats: PublicRegistryStats;
  corrupt(digest: string): void;
  stop(): Promise<void>;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function baseLayerTar(architecture: string): Promise<Buffer> {
  const pack = packTar();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  const mtime = new Date('2025-11-01T00:00:00Z');
  const add = (name: string, mode: number, body?: string) =>
    new Promise<void>((resolve, reject) => {
      const header = { name, mode, mtime, uid: 0, gid: 0 };
      if (body === undefined) {
        pack.entry({ ...header, type: 'directory' }, (error) => (error ? reject(error) : resolve()));
      } else {
        pack.entry({ ...header, type: 'file' }, Buffer.from(body), (error) =>
          error ? reject(error) : resolve(),
        );
      }
    });
  await add('lambda-entrypoint.sh', 0o755, '#!/bin/sh\nexec /var/runtime/bootstrap "$@"\n');
  await add('var/', 0o755);
  await add('var/runtime/', 0o755);
  await add('var/runtime/bootstrap', 0o755, `#!/bin/sh\necho synthetic runtime for ${architecture}\n`);
  await add('var/task/', 0o755);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function startPublicRegistry(
  options: { flavor?: Flavor; repository?: string; tag?: string } = {},
): Promise<PublicRegistry> {
  const flavor = options.flavor ?? Flavor.oci;
  const repository = options.repository ?? 'lambda/nodejs';
  const tag = options.tag ?? '24';
  const mt = types[flavor];
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  const corrupted = new Set<string>();
  const stats: PublicRegistryStats = {
    tokenRequests: 0,
    unauthorized: 0,
    blobRedirects: 0,
    cdnRequests: 0,
    cdnRejected: 0,
  };
  const tokens = new Set<string>();

  const platforms = {} as { amd64: BasePlatform; arm64: BasePlatform };
  const entries: object[] = [];
  for (const architecture of ['amd64', 'arm64'] as const) {
    const layerTar = await baseLayerTar(architecture);
    const layerGz = gzipSync(layerTar);
    const diffId = sha256(layerTar);
    const config = Buffer.from(
      JSON.stringify({
        architecture,
        os: 'linux',
        created: '2025-11-01T00:00:00Z',
        config: { Env: baseEnv, Entrypoint: baseEntrypoint, WorkingDir: baseWorkingDir },
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [{ created: '2025-11-01T00:00:00Z', created_by: 'synthetic Lambda base layer' }],
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mt.manifest,
        config: { mediaType: mt.config, size: config.byteLength, digest: sha256(config) },
        layers: [{ mediaType: mt.layer, size: layerGz.byteLength, digest: sha256(layerGz) }],
      }),
    );
    blobs.set(sha256(layerGz), layerGz);
    blobs.set(sha256(config), config);
    manifests.set(sha256(manifest), { bytes: manifest, mediaType: mt.manifest });
    platforms[architecture] = {
      manifestDigest: sha256(manifest),
      configDigest: sha256(config),
      layerDigest: sha256(layerGz),
      diffId,
    };
    entries.push({
      mediaType: mt.manifest,
      digest: sha256(manifest),
      size: manifest.byteLength,
      platform: { architecture, os: 'linux', ...(architecture === 'arm64' ? { variant: 'v8' } : {}) },
    });
  }
  // a provenance attestation, as BuildKit adds it: not a runnable image
  const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1' }));
  const emptyConfig = Buffer.from('{}');
  const attestation = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.oci.manifest,
      config: { mediaType: types.oci.config, size: emptyConfig.byteLength, digest: sha256(emptyConfig) },
      layers: [
        { mediaType: 'application/vnd.in-toto+json', size: statement.byteLength, digest: sha256(statement) },
      ],
    }),
  );
  blobs.set(sha256(statement), statement);
  blobs.set(sha256(emptyConfig), emptyConfig);
  manifests.set(sha256(attestation), { bytes: attestation, mediaType: types.oci.manifest });
  entries.push({
    mediaType: types.oci.manifest,
    digest: sha256(attestation),
    size: attestation.byteLength,
    annotations: {
      'vnd.docker.reference.digest': platforms.arm64.manifestDigest,
      'vnd.docker.reference.type': 'attestation-manifest',
    },
    platform: { architecture: 'unknown', os: 'unknown' },
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mt.index, manifests: entries }));
  const indexDigest = sha256(index);
  manifests.set(indexDigest, { bytes: index, mediaType: mt.index });

  const cdn = createServer((request, response) => {
    stats.cdnRequests++;
    request.resume();
    // S3 refuses a pre-signed URL that also carries an Authorization header
    if (request.headers.authorization !== undefined) {
      stats.cdnRejected++;
      response.statusCode = 400;
      response.end(
        '<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>',
      );
      return;
    }
    const url = new URL(request.url ?? '/', 'http://cdn');
    if (url.pathname === '/global/global-bundle.pem') {
      response.end('-----BEGIN CERTIFICATE-----\nMIIBfakeRdsCaForTests\n-----END CERTIFICATE-----\n');
      return;
    }
    const digest = url.pathname.replace(/^\/blobs\//, '');
    const blob = blobs.get(digest);
    if (blob === undefined || !url.searchParams.has('X-Amz-Signature')) {
      response.statusCode = 403;
      response.end('<Error><Code>AccessDenied</Code></Error>');
      return;
    }
    const bytes = corrupted.has(digest) ? Buffer.concat([blob, Buffer.from('tampered')]) : blob;
    response.setHeader('content-length', bytes.byteLength);
    response.end(request.method === 'HEAD' ? undefined : bytes);
  });
  cdn.listen(0, '127.0.0.1');
  await once(cdn, 'listening');
  const cdnOrigin = `http://127.0.0.1:${portOf(cdn)}`;

  let host = '';
  const registry = createServer((request, response) => {
    request.resume();
    handleRegistry(request, response);
  });
  const handleRegistry = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      if (scope !== `repository:${repository}:pull`) {
        response.statusCode = 403;
        response.end(JSON.stringify({ errors: [{ code: 'DENIED', message: `anonymous scope ${scope}` }] }));
        return;
      }
      stats.tokenRequests++;
      const token = randomBytes(12).toString('hex');
      tokens.add(token);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ token }));
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer === undefined || !tokens.has(bearer)) {
      stats.unauthorized++;
      response.statusCode = 401;
      response.setHeader(
        'www-authenticate',
        `Bearer realm="http://${host}/token",service="public.test",scope="aws"`,
      );
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }),
      );
      return;
    }
    const prefix = `/v2/${repository}/`;
    const rest = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : '';
    const [kind, reference] = rest.split('/');
    if (kind === 'manifests' && reference !== undefined) {
      const found = manifests.get(reference === tag ? indexDigest : reference);
      if (found === undefined) return notFound(response, 'MANIFEST_UNKNOWN');
      response.setHeader('content-type', found.mediaType);
      response.setHeader('docker-content-digest', sha256(found.bytes));
      response.setHeader('content-length', found.bytes.byteLength);
      response.end(request.method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    if (kind === 'blobs' && reference !== undefined && blobs.has(reference)) {
      stats.blobRedirects++;
      response.statusCode = 307;
      response.setHeader(
        'location',
        `${cdnOrigin}/blobs/${reference}?X-Amz-Signature=${randomBytes(8).toString('hex')}`,
      );
      response.end();
      return;
    }
    notFound(response, kind === 'blobs' ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN');
  };
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  host = `127.0.0.1:${portOf(registry)}`;

  return {
    host,
    reference: `${host}/${repository}:${tag}`,
    caBundleUrl: `${cdnOrigin}/global/global-bundle.pem`,
    indexDigest,
    platforms,
    stats,
    corrupt(digest: string) {
      corrupted.add(digest);
    },
    async stop() {
      for (const server of [registry, cdn]) {
        server.closeAllConnections();
        server.close();
        await once(server, 'close');
      }
    },
  };
}

function notFound(response: ServerResponse, code: string): void {
  response.statusCode = 404;
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ errors: [{ code, message: 'not found' }] }));
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return address.port;
}
