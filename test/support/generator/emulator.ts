import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { emulatorCredentials, startEmulator } from '../../../local/emulator.ts';
import { localRegion } from '../../../local/stack.ts';

// The generator's tests upload to the project's S3 emulator (local/emulator.ts,
// the one the demo and the end-to-end tests use), started in this process on a
// free port, through the real SDK client.

export const region = localRegion;
export const credentials = emulatorCredentials;

export interface S3Emulator {
  port: number;
  endpoint: string;
  s3: S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Emulator(): Promise<S3Emulator> {
  const emulator = await startEmulator({ port: 0 });
  const { endpoint, port } = emulator;
  const s3 = new S3Client({ region, endpoint, forcePathStyle: true, credentials, maxAttempts: 1 });
  return {
    port,
    endpoint,
    s3,
    createBucket: async (name) => {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop: async () => {
      s3.destroy();
      await emulator.stop();
    },
  };
}

// The line rule of docs/design.md, written the plainest way as the reference the generator's
// own accounting is checked against: `\n` bytes, plus one for a non-empty file
// that does not end in `\n`.
export function countLinesReference(bytes: Uint8Array): number {
  let newlines = 0;
  for (const byte of bytes) if (byte === 10) newlines++;
  return bytes.length > 0 && bytes[bytes.length - 1] !== 10 ? newlines + 1 : newlines;
}

export interface Downloaded {
  bytes: number;
  lines: number;
  sha256: string;
  etag: string | undefined;
}

// Streams the object, so a large one is hashed and counted without holding it
export async function downloadObject(s3: S3Client, bucket: string, key: string): Promise<Downloaded> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  let bytes = 0;
  let newlines = 0;
  let last = -1;
  for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
    for (const byte of chunk) if (byte === 10) newlines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  return {
    bytes,
    lines: bytes > 0 && last !== 10 ? newlines + 1 : newlines,
    sha256: hash.digest('hex'),
    etag: response.ETag?.replace(/^"|"$/g, ''),
  };
}

export const mainPath = fileURLToPath(new URL('../../../generator/main.ts', import.meta.url));
export const tsxLoader = import.meta.resolve('tsx');
