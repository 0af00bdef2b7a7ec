import { constants, gzipSync } from 'node:zlib';
import { pack as createTarPack } from 'tar-stream';
import { computeDigest } from './digest.ts';

// A reproducible image layer: same files → same bytes → same digest, so an
// unchanged build pushes nothing. tar-stream writes the entries exactly as
// given (no filesystem metadata leaks in); only the gzip wrapper is fixed up here.

// SOURCE_DATE_EPOCH-style constant for every entry's mtime and the history
// entry: 1980-01-01T00:00:00Z, the earliest date ZIP-based tools accept.
export const fixedMtimeSeconds = 315_532_800;
export const fixedCreated = new Date(fixedMtimeSeconds * 1000).toISOString().replace('.000Z', 'Z');

const dirMode = 0o755;
const fileMode = 0o644;

export interface LayerFile {
  // absolute path inside the image, e.g. /var/task/index.mjs
  path: string;
  contents: Uint8Array;
}

export interface Layer {
  gzip: Buffer;
  // sha256 of the uncompressed tar: goes into the config's rootfs.diff_ids
  diffId: string;
  // sha256 of the gzip: the blob's name in the registry and the manifest
  digest: string;
  entries: string[];
}

function normalize(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0 || parts.includes('..')) {
    throw new Error(`layer path ${path} must be an absolute file path without ".." segments`);
  }
  return parts.join('/');
}

// Entry names in order: each parent directory once, before its children (the
// runtime reads /var/task through these entries, so their modes are explicit).
export function layerEntries(paths: readonly string[]): { name: string; type: 'directory' | 'file' }[] {
  const files = [...new Set(paths.map(normalize))].sort();
  const dirs = new Set<string>();
  const entries: { name: string; type: 'directory' | 'file' }[] = [];
  for (const file of files) {
    const parts = file.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ name: dir, type: 'directory' });
      }
    }
    entries.push({ name: file, type: 'file' });
  }
  return entries;
}

async function packTar(files: readonly LayerFile[]): Promise<Buffer> {
  const byName = new Map(files.map((file) => [normalize(file.path), file.contents]));
  if (byName.size !== files.length) throw new Error('layer has the same path twice');
  const pack = createTarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  const mtime = new Date(fixedMtimeSeconds * 1000);
  for (const entry of layerEntries([...byName.keys()])) {
    // uid/gid 0 and empty user/group names: the files belong to root in any image
    const common = { name: entry.name, uid: 0, gid: 0, uname: '', gname: '', mtime };
    if (entry.type === 'directory') {
      pack.entry({ ...common, type: 'directory', mode: dirMode });
    } else {
      const contents = byName.get(entry.name) ?? new Uint8Array();
      const body = Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
      // 0644: Lambda runs the function as an unprivileged user, who must read the code
      await new Promise<void>((resolve, reject) =>
        pack.entry({ ...common, type: 'file', mode: fileMode, size: body.byteLength }, body, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    }
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

// zlib already writes mtime 0 and no file name (RFC 1952 header); the OS byte
// depends on the platform zlib was built for, so it is pinned to 3 (Unix).
function gzipDeterministic(data: Buffer): Buffer {
  const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
  gz[9] = 3;
  return gz;
}

export async function createLayer(files: readonly LayerFile[]): Promise<Layer> {
  const tarBytes = await packTar(files);
  const gzip = gzipDeterministic(tarBytes);
  return {
    gzip,
    diffId: computeDigest(tarBytes),
    digest: computeDigest(gzip),
    entries: layerEntries(files.map((file) => file.path)).map((entry) => entry.name),
  };
}
