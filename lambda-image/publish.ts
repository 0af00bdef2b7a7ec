import { type ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import type { Architecture } from '../lib/config.ts';
import { AwsStepError, stepError } from '../lib/errors.ts';
import { computeDigest } from '../lib/oci/digest.ts';
import {
  appendLayer,
  checkImageManifest,
  isIndex,
  parseJson,
  selectPlatformManifest,
} from '../lib/oci/image.ts';
import { createLayer, type LayerFile } from '../lib/oci/layer.ts';
import { type ImageConfig, type ImageIndex, type ImageManifest, platformOf } from '../lib/oci/media.ts';
import { formatImageReference, parseImageReference } from '../lib/oci/reference.ts';
import { type FetchedManifest, RegistryClient, RegistryError } from '../lib/oci/registry.ts';
import { withProgress } from '../lib/poll.ts';
import type { Log } from '../lib/reconcile.ts';
import { bundleFunction, defaultEntry } from './bundle.ts';
import { baseImage, imageCmd, imageEnv, rdsCaBundlePath, rdsCaBundleUrl, taskRoot } from './recipe.ts';

// The daemonless image build, the way ko, Jib and `crane append` work: take the
// Lambda base image's manifest and config from public ECR, add one layer with
// the bundle, push to the function's ECR repository over the registry API,
// and hand back repo@sha256:... (provision/resources/function.ts deploys it
// with UpdateFunctionCode). Same sources → same digest → nothing pushed.

export interface PublishOptions {
  ecr: ECRClient;
  // <account>.dkr.ecr.<region>.amazonaws.com/<name>
  repositoryUri: string;
  architecture: Architecture;
  log: Log;
  // defaults: the pinned Lambda base image, the function's entry, the RDS CA bundle
  baseImage?: string;
  entry?: string;
  caBundleUrl?: string;
}

interface PublishedImage {
  // repository@sha256:..., what UpdateFunctionCode deploys
  imageUri: string;
  digest: string;
  // blobs uploaded by this publish: 0 when nothing changed
  pushedBlobs: number;
  tag: string;
  // the platform manifest of the base image that was used
  baseDigest: string;
}

interface BaseImage {
  client: RegistryClient;
  manifest: ImageManifest;
  mediaType: string;
  digest: string;
  config: ImageConfig;
}

async function pullBaseImage(reference: string, architecture: Architecture, log: Log): Promise<BaseImage> {
  const ref = parseImageReference(reference);
  const client = new RegistryClient({
    host: ref.host,
    repository: ref.repository,
    auth: { kind: 'anonymous' },
  });
  let fetched: FetchedManifest = await client.getManifest(ref.digest ?? ref.tag ?? 'latest');
  if (isIndex(fetched.mediaType)) {
    const index = parseJson<ImageIndex>(fetched.bytes, `index of ${reference}`);
    const chosen = selectPlatformManifest(index, architecture);
    log.info(
      `base image ${formatImageReference(ref)} is index ${fetched.digest}; ${chosen.platform?.os}/${chosen.platform?.architecture} is ${chosen.digest}`,
    );
    fetched = await client.getManifest(chosen.digest);
  } else {
    log.info(`base image ${formatImageReference(ref)} is manifest ${fetched.digest}`);
  }
  const manifest = parseJson<ImageManifest>(fetched.bytes, `manifest ${fetched.digest}`);
  checkImageManifest(manifest, fetched.mediaType, `base manifest ${fetched.digest}`);
  const configBytes = await client.getBlob(manifest.config.digest, 'base image config');
  const config = parseJson<ImageConfig>(configBytes, `config ${manifest.config.digest}`);
  const wanted = platformOf[architecture];
  if (config.architecture !== undefined && config.architecture !== wanted.architecture) {
    throw new RegistryError(
      `base image ${reference} is built for ${config.architecture}, the function runs on ${architecture} (use a multi-platform base or the matching tag)`,
    );
  }
  return { client, manifest, mediaType: fetched.mediaType, digest: fetched.digest, config };
}

async function fetchCaBundle(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (error) {
    throw new RegistryError(`cannot download the RDS CA bundle from ${url}: ${error} (check the network)`, {
      cause: error,
    });
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  if (!response.ok || !bytes.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new RegistryError(
      `the RDS CA bundle at ${url} answered HTTP ${response.status} without PEM certificates (retry later)`,
    );
  }
  return bytes;
}

// ECR's registry API takes HTTP Basic with the pair inside the authorization
// token: base64("AWS:<password>"), valid for 12 hours (GetAuthorizationToken).
async function fetchEcrCredentials(ecr: ECRClient): Promise<{ username: string; password: string }> {
  let token: string | undefined;
  try {
    const answer = await ecr.send(new GetAuthorizationTokenCommand({}));
    token = answer.authorizationData?.[0]?.authorizationToken;
  } catch (error) {
    throw stepError('get an ECR authorization token', error, 'check ecr:GetAuthorizationToken permission');
  }
  const pair = token === undefined ? '' : Buffer.from(token, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon <= 0) throw new AwsStepError('ECR GetAuthorizationToken returned no usable token (retry)');
  return { username: pair.slice(0, colon), password: pair.slice(colon + 1) };
}

// A tag derived from the content: the same image always gets the same tag, so
// it works with immutable tags (re-pushing identical content is skipped).
function contentTag(digest: string): string {
  return `build-${digest.slice('sha256:'.length, 'sha256:'.length + 20)}`;
}

async function buildLayerFiles(entry: string, caBundle: Uint8Array): Promise<LayerFile[]> {
  const bundle = await bundleFunction({ entry });
  return [
    ...bundle.files.map((file) => ({ path: `${taskRoot}/${file.name}`, contents: file.contents })),
    { path: rdsCaBundlePath, contents: caBundle },
  ];
}

export async function publishImage(options: PublishOptions): Promise<PublishedImage> {
  const { log } = options;
  const base = await pullBaseImage(options.baseImage ?? baseImage, options.architecture, log);

  const caBundle = await fetchCaBundle(options.caBundleUrl ?? rdsCaBundleUrl);
  const layer = await createLayer(await buildLayerFiles(options.entry ?? defaultEntry, caBundle));
  const image = appendLayer(base.config, base.manifest, base.mediaType, layer, {
    cmd: [...imageCmd],
    env: imageEnv,
    createdBy: `ada-linecount: COPY bundle and RDS CA bundle to ${taskRoot}`,
  });
  const manifest = parseJson<ImageManifest>(image.manifest, 'new manifest');
  const digest = computeDigest(image.manifest);
  log.info(
    `image ${digest}: app layer ${layer.digest} (${layer.gzip.byteLength} bytes gzip, ${layer.entries.length} entries)`,
  );

  const target = parseImageReference(`${options.repositoryUri}:latest`);
  const credentials = await fetchEcrCredentials(options.ecr);
  const registry = new RegistryClient({
    host: target.host,
    repository: target.repository,
    auth: { kind: 'basic', ...credentials },
  });

  let pushedBlobs = 0;
  const push = async (blobDigest: string, what: string, bytes: () => Promise<Uint8Array>) => {
    if (await registry.hasBlob(blobDigest)) return;
    const body = await bytes();
    await withProgress(
      `upload of ${what} ${blobDigest}`,
      (message) => log.progress(message),
      registry.uploadBlob(blobDigest, body),
    );
    pushedBlobs++;
    log.info(`pushed ${what} ${blobDigest} (${body.byteLength} bytes)`);
  };
  // Layers and config first: a registry refuses a manifest whose blobs it lacks.
  for (const baseLayer of base.manifest.layers) {
    // copied from public ECR only when the repository lacks it (first push, or a new base)
    await push(baseLayer.digest, 'base layer', () => base.client.getBlob(baseLayer.digest, 'base layer'));
  }
  await push(layer.digest, 'app layer', async () => layer.gzip);
  await push(manifest.config.digest, 'config', async () => image.config);

  const tag = contentTag(digest);
  const existing = await registry.findManifest(tag);
  if (existing === digest) {
    log.info(`${options.repositoryUri}:${tag} already holds ${digest}: nothing to push`);
  } else {
    const stored = await registry.putManifest(tag, image.manifest, image.mediaType);
    if (stored !== digest) {
      throw new RegistryError(
        `${options.repositoryUri} stored manifest ${tag} as ${stored}, expected ${digest} (the registry rewrote the manifest; do not deploy it)`,
      );
    }
    log.info(`pushed manifest ${options.repositoryUri}:${tag}`);
  }
  return {
    imageUri: `${options.repositoryUri}@${digest}`,
    digest,
    pushedBlobs,
    tag,
    baseDigest: base.digest,
  };
}
