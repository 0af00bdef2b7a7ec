import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  NoSuchKey,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { stepError } from '../lib/errors.ts';
import { countLines } from './count.ts';
import type { UploadEvent } from './events.ts';

type ObjectCount =
  | { status: 'counted'; lines: number; bytes: number }
  | { status: 'skipped'; reason: 'changed' | 'missing' };

export const SkipReason = { changed: 'changed', missing: 'missing' } as const;

function describeObject(upload: UploadEvent): string {
  const version = upload.versionId === undefined ? '' : ` (version ${upload.versionId})`;
  return `s3://${upload.bucket}/${upload.key}${version}`;
}

// Streams the object the event announced and counts its lines. IfMatch pins the
// read to the bytes the event described: if the key was overwritten since, S3
// answers 412 PreconditionFailed and the newer upload's own event will count it.
export async function countObject(s3: S3Client, upload: UploadEvent): Promise<ObjectCount> {
  const where = describeObject(upload);
  let response: GetObjectCommandOutput;
  try {
    response = await s3.send(
      new GetObjectCommand({
        Bucket: upload.bucket,
        Key: upload.key,
        // If-Match takes the entity tag quoted, as S3 returns it in the ETag header (RFC 9110 §13.1.1).
        IfMatch: `"${upload.eTag}"`,
        ...(upload.versionId === undefined ? {} : { VersionId: upload.versionId }),
      }),
    );
  } catch (error) {
    if (isPreconditionFailed(error)) return { status: 'skipped', reason: SkipReason.changed };
    if (isNotFound(error)) return { status: 'skipped', reason: SkipReason.missing };
    throw stepError(
      `get ${where}`,
      error,
      'check s3:GetObject permission on the bucket and the network path to S3',
    );
  }

  const body = response.Body;
  // In Node the SDK returns the HTTP response (or a checksum-checking wrapper) as a Readable.
  if (!(body instanceof Readable)) {
    destroyBody(body);
    throw stepError(`read ${where}`, new Error('GetObject returned no Node.js stream body'));
  }
  try {
    // for-await destroys the stream when the loop exits early or throws; the
    // finally below covers a throw before iteration starts. An unconsumed,
    // undestroyed body keeps its socket and the client's pool runs dry.
    const { lines, bytes } = await countLines(body);
    const expected = response.ContentLength;
    if (expected !== undefined && bytes !== expected) {
      throw new Error(`body ended after ${bytes} of ${expected} bytes`);
    }
    return { status: 'counted', lines, bytes };
  } catch (error) {
    throw stepError(`read ${where}`, error, 'the message will be retried');
  } finally {
    if (!body.destroyed) body.destroy();
  }
}

function destroyBody(body: unknown): void {
  if (typeof body === 'object' && body !== null && 'destroy' in body && typeof body.destroy === 'function') {
    body.destroy();
  }
}

// S3 answers a failed If-Match with 412 PreconditionFailed; the SDK has no
// dedicated class for it, so the service exception's HTTP status decides.
function isPreconditionFailed(error: unknown): boolean {
  return error instanceof S3ServiceException && error.$metadata.httpStatusCode === 412;
}

// NoSuchKey is modelled for GetObject; a deleted version (NoSuchVersion) or
// bucket (NoSuchBucket) arrives as a plain 404 service exception.
function isNotFound(error: unknown): boolean {
  return (
    error instanceof NoSuchKey ||
    (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404)
  );
}
