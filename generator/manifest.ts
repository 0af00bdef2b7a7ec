import { open } from 'node:fs/promises';
import type { ManifestEntry } from './generate.ts';

// The manifest: one JSON line per uploaded file, written as each upload
// completes, so an interrupted run still lists everything it did upload.

export interface ManifestWriter {
  readonly path: string;
  write(entry: ManifestEntry): void;
  close(): Promise<void>;
}

function formatManifestLine(entry: ManifestEntry): string {
  const { key, lines, bytes, sha256, etag, uploadedAt } = entry;
  return `${JSON.stringify({ key, lines, bytes, sha256, etag, uploadedAt })}\n`;
}

export function parseManifest(text: string): ManifestEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ManifestEntry);
}

// Opened before the first upload, so an unwritable path fails the run before
// anything is uploaded.
export async function openManifest(path: string): Promise<ManifestWriter> {
  const handle = await open(path, 'w');
  const stream = handle.createWriteStream({ encoding: 'utf8' });
  return {
    path,
    write(entry) {
      stream.write(formatManifestLine(entry));
    },
    close: () =>
      new Promise((resolve, reject) => {
        stream.once('error', reject);
        stream.end(() => resolve());
      }),
  };
}
