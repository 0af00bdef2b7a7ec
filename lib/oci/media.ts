import type { Architecture } from '../config.ts';

// Manifest and blob media types of the two families a registry serves: Docker
// v2 schema 2 and OCI image spec v1. An image keeps its base's family, so a
// layer added to a Docker manifest gets the Docker layer type and vice versa.
export const MediaType = {
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

export const indexMediaTypes: readonly string[] = [MediaType.dockerManifestList, MediaType.ociIndex];
export const imageManifestMediaTypes: readonly string[] = [MediaType.dockerManifest, MediaType.ociManifest];

// The Accept header for a manifest GET: without it a registry may answer with
// (or convert to) an older schema.
export const manifestAccept = [...indexMediaTypes, ...imageManifestMediaTypes].join(', ');

export function layerMediaTypeFor(manifestMediaType: string): MediaType {
  return manifestMediaType === MediaType.dockerManifest ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
}

// Lambda's architecture names → the OCI platform of the matching image
export const platformOf = {
  arm64: { os: 'linux', architecture: 'arm64' },
  x86_64: { os: 'linux', architecture: 'amd64' },
} as const satisfies Record<Architecture, { os: string; architecture: string }>;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  [field: string]: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  [field: string]: unknown;
}

interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  [field: string]: unknown;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    [field: string]: unknown;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [field: string]: unknown;
}
