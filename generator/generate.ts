import { setMaxListeners } from 'node:events';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { stepError, UsageError } from '../lib/errors.ts';
import { GeneratedFileStream, maxLineBytes } from './content.ts';
import { createRunId, type NameStyle } from './names.ts';
import { type FilePlan, planFile } from './plan.ts';

// Generates planned files and streams each into S3 with lib-storage's Upload:
// one PutObject up to one part's size, a multipart upload above it. Memory per
// file is bounded by queueSize × partSize, never by the file's size.

export interface ManifestEntry {
  key: string;
  lines: number;
  bytes: number;
  sha256: string;
  // without the surrounding quotes, as S3 event records carry it; a multipart
  // upload's ends in `-<parts>`
  etag?: string;
  uploadedAt: string;
}

export interface GenerateProgress {
  filesDone: number;
  filesTotal: number;
  // bytes generated and handed to the uploader so far, across all files
  bytes: number;
  // lines generated so far, and planned in all, so a progress bar knows the
  // whole run's size before its first byte
  lines: number;
  linesTotal: number;
  // set on the call that reports a finished file
  completed?: ManifestEntry;
}

interface GenerateOptions {
  s3: S3Client;
  bucket: string;
  prefix: string;
  count: number;
  minLines: number;
  maxLines: number;
  concurrency: number;
  seed: number;
  names: NameStyle;
  // part of every key so runs never overwrite each other; fixed only by tests
  runId?: string;
  onProgress?: (progress: GenerateProgress) => void;
  signal?: AbortSignal;
}

// S3: parts are 5 MiB to 5 GiB, at most 10,000 per upload (multipart limits).
export const minPartBytes = 5 * 1024 * 1024;
const maxParts = 10_000;
// Parts held in memory per upload; two keep the connection busy while the
// next part is generated.
const uploadQueueSize = 2;

function choosePartSize(plan: FilePlan): number {
  const upperBound = plan.lines * maxLineBytes;
  return Math.max(minPartBytes, Math.ceil(upperBound / maxParts));
}

function stripQuotes(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '');
}

function hintFor(error: unknown): string {
  const name = error instanceof Error ? error.name : '';
  const code = (error as { code?: string } | undefined)?.code;
  if (name === 'NoSuchBucket') return 'the bucket does not exist: check --bucket, or run provision/up.ts';
  if (name === 'AccessDenied' || name === 'Forbidden') return 'check s3:PutObject permission on the bucket';
  if (name === 'CredentialsProviderError') return 'configure AWS credentials (AWS_PROFILE, or aws sso login)';
  if (code === 'ECONNREFUSED' || name === 'TimeoutError') {
    return 'is the endpoint up? for the local stack run npm run demo -- --keep and use the AWS_ENDPOINT_URL it prints';
  }
  return "rerun to retry: a new run's keys never collide with this one's";
}

interface UploadFileOptions {
  s3: S3Client;
  bucket: string;
  plan: FilePlan;
  signal?: AbortSignal;
  onChunk?: (bytes: number, lines: number) => void;
}

export async function uploadGeneratedFile(options: UploadFileOptions): Promise<ManifestEntry> {
  const { s3, bucket, plan, signal } = options;
  signal?.throwIfAborted();
  let reportedLines = 0;
  const body = new GeneratedFileStream(plan, {
    onChunk: (bytes) => {
      const lines = body.lines - reportedLines;
      reportedLines = body.lines;
      options.onChunk?.(bytes, lines);
    },
  });
  const abortController = new AbortController();
  const abort = () => abortController.abort();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const upload = new Upload({
      client: s3,
      params: {
        Bucket: bucket,
        Key: plan.key,
        Body: body,
        ContentType: `${plan.document.extension === 'csv' ? 'text/csv' : 'text/plain'}; charset=utf-8`,
      },
      partSize: choosePartSize(plan),
      queueSize: uploadQueueSize,
      abortController,
    });
    const result = await upload.done();
    const stats = body.stats();
    return {
      key: plan.key,
      lines: plan.lines,
      bytes: stats.bytes,
      sha256: stats.sha256,
      etag: stripQuotes(result.ETag),
      uploadedAt: new Date().toISOString(),
    };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw stepError(`upload s3://${bucket}/${plan.key}`, error, hintFor(error));
  } finally {
    signal?.removeEventListener('abort', abort);
    body.destroy();
  }
}

export class GenerateAbortedError extends Error {
  constructor(readonly completed: number) {
    super(`generation stopped after ${completed} file(s)`);
    this.name = 'GenerateAbortedError';
  }
}

// The CLI checks its flags with every problem listed (args.ts); programmatic
// callers get the first problem, before anything is uploaded.
function checkGenerateOptions(options: GenerateOptions): void {
  const { count, minLines, maxLines, concurrency } = options;
  const whole = (n: number) => Number.isInteger(n) && n >= 0;
  if (!whole(count)) throw new UsageError(`count must be a whole number ≥ 0 (got ${count})`);
  if (!whole(minLines) || !whole(maxLines) || minLines > maxLines) {
    throw new UsageError(`need whole numbers 0 ≤ minLines ≤ maxLines (got ${minLines}, ${maxLines})`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new UsageError(`concurrency must be a whole number ≥ 1 (got ${concurrency})`);
  }
}

// Runs up to `concurrency` uploads at once. The first failure stops new files
// from starting and aborts the ones in flight (a half-done run is rerun as a
// new run, whose keys never collide), then rejects with that failure, which
// names the key.
export async function generateAndUpload(options: GenerateOptions): Promise<ManifestEntry[]> {
  checkGenerateOptions(options);
  const runId = options.runId ?? createRunId();
  const planOptions = { ...options, runId };
  const plans: FilePlan[] = [];
  let linesTotal = 0;
  for (let index = 0; index < options.count; index++) {
    const plan = planFile(planOptions, index);
    plans.push(plan);
    linesTotal += plan.lines;
  }

  const stop = new AbortController();
  // every upload in flight listens on it; Node warns past 10 listeners
  setMaxListeners(options.concurrency + 10, stop.signal);
  const forward = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  const entries: ManifestEntry[] = [];
  const progress: GenerateProgress = {
    filesDone: 0,
    filesTotal: options.count,
    bytes: 0,
    lines: 0,
    linesTotal,
  };
  let failure: unknown;
  let next = 0;

  const work = async () => {
    while (!stop.signal.aborted && next < plans.length) {
      const plan = plans[next++] as FilePlan;
      try {
        const entry = await uploadGeneratedFile({
          s3: options.s3,
          bucket: options.bucket,
          plan,
          signal: stop.signal,
          onChunk: (bytes, lines) => {
            progress.bytes += bytes;
            progress.lines += lines;
            options.onProgress?.({ ...progress });
          },
        });
        entries.push(entry);
        progress.filesDone++;
        options.onProgress?.({ ...progress, completed: entry });
      } catch (error) {
        if (!stop.signal.aborted) {
          failure = error;
          stop.abort(error);
        }
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, plans.length) }, work));
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
  if (failure !== undefined) throw failure;
  if (options.signal?.aborted) throw new GenerateAbortedError(entries.length);
  return entries;
}
