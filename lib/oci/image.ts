import type { Architecture } from '../config.ts';
import { computeDigest } from './digest.ts';
import { fixedCreated, type Layer } from './layer.ts';
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  imageManifestMediaTypes,
  indexMediaTypes,
  layerMediaTypeFor,
  platformOf,
} from './media.ts';

// Pure image surgery, the way `crane append` does it: the base image's config
// and manifest plus one layer give the new config and manifest. No I/O here.

class ImageFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageFormatError';
  }
}

export function isIndex(mediaType: string): boolean {
  return indexMediaTypes.includes(mediaType);
}

function isImageManifest(mediaType: string): boolean {
  return imageManifestMediaTypes.includes(mediaType);
}

// Attestation manifests (BuildKit provenance/SBOM) sit in the index with
// platform unknown/unknown; they are not runnable images.
function isAttestation(descriptor: Descriptor): boolean {
  return (
    descriptor.platform?.os === 'unknown' ||
    descriptor.platform?.architecture === 'unknown' ||
    descriptor.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
  );
}

export function selectPlatformManifest(index: ImageIndex, architecture: Architecture): Descriptor {
  const wanted = platformOf[architecture];
  const candidates = index.manifests.filter(
    (descriptor) =>
      !isAttestation(descriptor) &&
      descriptor.platform?.os === wanted.os &&
      descriptor.platform?.architecture === wanted.architecture,
  );
  const chosen = candidates[0];
  if (chosen === undefined) {
    const offered = index.manifests
      .filter((descriptor) => !isAttestation(descriptor))
      .map((descriptor) => `${descriptor.platform?.os}/${descriptor.platform?.architecture}`)
      .join(', ');
    throw new ImageFormatError(
      `the base image has no ${wanted.os}/${wanted.architecture} manifest (it offers ${offered || 'none'}; choose another architecture or base image)`,
    );
  }
  return chosen;
}

export function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (error) {
    throw new ImageFormatError(`${what} is not JSON: ${error instanceof Error ? error.message : error}`);
  }
}

export function checkImageManifest(manifest: ImageManifest, mediaType: string, what: string): void {
  if (manifest.schemaVersion !== 2 || !isImageManifest(mediaType)) {
    throw new ImageFormatError(
      `${what} is ${mediaType}, schema ${manifest.schemaVersion}: only Docker v2 schema 2 and OCI image manifests are supported`,
    );
  }
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
    throw new ImageFormatError(`${what} has no config or layers`);
  }
}

interface AppendOptions {
  // the image's default command: Lambda's handler (index.handler)
  cmd: string[];
  // NAME=value pairs set in the image (replacing the base's value of the same name)
  env: Record<string, string>;
  createdBy: string;
}

interface AppendedImage {
  config: Buffer;
  manifest: Buffer;
  mediaType: string;
}

export function setEnv(base: readonly string[], values: Record<string, string>): string[] {
  const names = new Set(Object.keys(values));
  const kept = base.filter((pair) => !names.has(pair.split('=', 1)[0] ?? pair));
  return [...kept, ...Object.entries(values).map(([name, value]) => `${name}=${value}`)];
}

export function appendLayer(
  baseConfig: ImageConfig,
  baseManifest: ImageManifest,
  manifestMediaType: string,
  layer: Pick<Layer, 'diffId' | 'digest' | 'gzip'>,
  options: AppendOptions,
): AppendedImage {
  if (baseConfig.rootfs?.diff_ids?.length !== baseManifest.layers.length) {
    throw new ImageFormatError(
      `the base config lists ${baseConfig.rootfs?.diff_ids?.length ?? 0} diff_ids for ${baseManifest.layers.length} layers`,
    );
  }
  // Entrypoint, WorkingDir and the rest of the base's runtime config stay: the
  // Lambda base image's entrypoint starts the runtime interface client.
  const config: ImageConfig = {
    ...baseConfig,
    config: {
      ...baseConfig.config,
      Env: setEnv(baseConfig.config?.Env ?? [], options.env),
      Cmd: options.cmd,
    },
    rootfs: { ...baseConfig.rootfs, diff_ids: [...baseConfig.rootfs.diff_ids, layer.diffId] },
    history: [...(baseConfig.history ?? []), { created: fixedCreated, created_by: options.createdBy }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest: ImageManifest = {
    ...baseManifest,
    mediaType: manifestMediaType,
    config: { ...baseManifest.config, size: configBytes.byteLength, digest: computeDigest(configBytes) },
    layers: [
      ...baseManifest.layers,
      { mediaType: layerMediaTypeFor(manifestMediaType), size: layer.gzip.byteLength, digest: layer.digest },
    ],
  };
  return {
    config: configBytes,
    manifest: Buffer.from(JSON.stringify(manifest)),
    mediaType: manifestMediaType,
  };
}
