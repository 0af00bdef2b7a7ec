import { randomInt } from 'node:crypto';
import { HeadBucketCommand, NoSuchBucket, NotFound, type S3Client } from '@aws-sdk/client-s3';
import { describeFailure, ExitCode, isMain, onInterrupt } from '../lib/cli.ts';
import { createClient } from '../lib/clients.ts';
import { type AwsConfig, ConfigError, loadAwsConfig, loadStackConfig } from '../lib/config.ts';
import { describeError, stepError } from '../lib/errors.ts';
import { outputsPath, readOutputs } from '../lib/outputs.ts';
import { type CliOptions, defaults, parseCliArgs, usage } from './args.ts';
import {
  GenerateAbortedError,
  type GenerateProgress,
  generateAndUpload,
  type ManifestEntry,
} from './generate.ts';
import { type ManifestWriter, openManifest } from './manifest.ts';
import { createRunId } from './names.ts';
import { createProgressReporter, formatBytes, ProgressMode } from './progress.ts';
import { maxSeed } from './random.ts';

interface Target {
  aws: AwsConfig;
  bucket: string;
  prefix: string;
}

function collectConfig(problems: string[], read: () => void): void {
  try {
    read();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
}

// Flags, environment and provisioning outputs, all checked before the first
// AWS call; every problem is returned together.
async function resolveTarget(options: CliOptions, problems: string[]): Promise<Target | undefined> {
  let aws: AwsConfig | undefined;
  collectConfig(problems, () => {
    aws = loadAwsConfig();
  });
  let stage: string | undefined;
  if (options.stage !== undefined) {
    const flag = options.stage;
    // the flag follows the same naming rule as the STAGE variable
    const stageProblems: string[] = [];
    collectConfig(stageProblems, () => {
      stage = loadStackConfig({ STAGE: flag }).stage;
    });
    problems.push(...stageProblems.map((problem) => problem.replace(/^STAGE=/, '--stage=')));
  } else {
    collectConfig(problems, () => {
      stage = loadStackConfig().stage;
    });
  }

  let bucket = options.bucket;
  let prefix = options.prefix;
  if (bucket === undefined && stage !== undefined) {
    const path = outputsPath(stage);
    try {
      const outputs = await readOutputs(stage);
      if (outputs === undefined) {
        problems.push(
          [
            `no bucket: --bucket is not given and ${path} (the provisioning outputs for stage ${stage}) does not exist. Either:`,
            `      run \`npx tsx provision/up.ts\` (with STAGE=${stage}) to create the stack in AWS, or`,
            '      pass --bucket NAME for an existing bucket, or',
            '      start the local stack with `npm run demo -- --keep` and use the bucket and AWS_ENDPOINT_URL it prints',
          ].join('\n'),
        );
      } else {
        bucket = outputs.bucket;
        prefix ??= outputs.uploadsPrefix;
        // a local stack's outputs name a bucket that exists only in the emulator
        if (outputs.endpoint !== undefined && aws !== undefined && aws.endpoints.s3 === undefined) {
          problems.push(
            `${path} describes a local stack at ${outputs.endpoint}: set AWS_ENDPOINT_URL=${outputs.endpoint} (with any dummy credentials) to upload there, or pass --bucket for a bucket in AWS`,
          );
        }
      }
    } catch (error) {
      problems.push(`cannot read ${path}: ${describeError(error)} (fix or delete it, or pass --bucket)`);
    }
  }
  if (aws === undefined || bucket === undefined || problems.length > 0) return undefined;
  return { aws, bucket, prefix: prefix ?? defaults.prefix };
}

// Fails fast, before anything is generated, when the bucket is wrong.
// HeadBucket is authorized as s3:ListBucket (HeadBucket API reference,
// Permissions), which an upload-only identity such as the scheduled
// generator's role does not hold: S3 then answers 403 for a bucket that exists
// (a missing one is 404), and the uploads themselves tell whether they may
// write, so the check is skipped with a note.
async function checkBucket(s3: S3Client, bucket: string): Promise<'ok' | 'missing' | 'unchecked'> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return 'ok';
  } catch (error) {
    if (error instanceof NotFound || error instanceof NoSuchBucket) return 'missing';
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 403) {
      return 'unchecked';
    }
    throw stepError(
      `reach bucket ${bucket}`,
      error,
      'check credentials, s3:ListBucket permission, AWS_REGION and AWS_ENDPOINT_URL',
    );
  }
}

interface Summary {
  ok: boolean;
  error?: string;
  bucket: string;
  prefix: string;
  runId: string;
  seed: number;
  names: string;
  files: number;
  filesPlanned: number;
  lines: number;
  bytes: number;
  multipart: number;
  durationMs: number;
  filesPerSecond: number;
  bytesPerSecond: number;
  manifest: string | null;
  memory: { startRssBytes: number; maxRssBytes: number };
}

function summarise(
  entries: readonly ManifestEntry[],
  base: Omit<
    Summary,
    'files' | 'lines' | 'bytes' | 'multipart' | 'filesPerSecond' | 'bytesPerSecond' | 'memory'
  >,
  startRssBytes: number,
): Summary {
  const bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
  const seconds = Math.max(base.durationMs, 1) / 1000;
  return {
    ...base,
    files: entries.length,
    lines: entries.reduce((sum, e) => sum + e.lines, 0),
    bytes,
    // S3 gives a multipart object an ETag of the form <md5-of-part-md5s>-<parts>
    multipart: entries.filter((e) => /-\d+$/.test(e.etag ?? '')).length,
    filesPerSecond: Math.round((entries.length / seconds) * 10) / 10,
    bytesPerSecond: Math.round(bytes / seconds),
    // resourceUsage reports the peak resident set in kilobytes
    memory: { startRssBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 },
  };
}

function describeSummary(s: Summary): string {
  const where = `s3://${s.bucket}/${s.prefix}`;
  const head = s.ok
    ? `uploaded ${s.files} files`
    : `uploaded ${s.files} of ${s.filesPlanned} files before failing`;
  return [
    `${head} (${s.lines.toLocaleString('en-US')} lines, ${formatBytes(s.bytes)}, ${s.multipart} multipart) to ${where}`,
    `  in ${(s.durationMs / 1000).toFixed(1)} s: ${s.filesPerSecond} files/s, ${formatBytes(s.bytesPerSecond)}/s`,
    `  run ${s.runId}, seed ${s.seed} (--seed ${s.seed} makes the same contents again)`,
    s.manifest === null ? '  no manifest (add --manifest FILE to keep one)' : `  manifest: ${s.manifest}`,
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const { options, problems } = parseCliArgs(argv);
  if (options.help) {
    process.stdout.write(`${usage}\n`);
    return ExitCode.ok;
  }
  const target = await resolveTarget(options, problems);
  const fail = (code: number, message: string, extra: Partial<Summary> = {}) => {
    process.stderr.write(`${message}\n`);
    if (options.json) process.stdout.write(`${JSON.stringify({ ok: false, error: message, ...extra })}\n`);
    return code;
  };
  if (target === undefined) {
    return fail(
      ExitCode.usage,
      `generator: cannot start:\n${problems.map((p) => `  - ${p}`).join('\n')}\nRun with --help for usage.`,
      { problems } as Partial<Summary>,
    );
  }

  let manifest: ManifestWriter | undefined;
  if (options.manifest !== undefined) {
    try {
      manifest = await openManifest(options.manifest);
    } catch (error) {
      return fail(
        ExitCode.usage,
        `generator: cannot write the manifest ${options.manifest}: ${describeError(error)}`,
      );
    }
  }

  const s3 = createClient(target.aws, 's3');
  const seed = options.seed ?? randomInt(0, maxSeed + 1);
  const runId = createRunId();
  const abort = new AbortController();
  let interrupted = false;
  // a second Ctrl-C does not wait for the in-flight uploads to abort
  const removeSignalHandlers = onInterrupt(() => {
    interrupted = true;
    process.stderr.write('\nstopping: aborting uploads in flight (Ctrl-C again to quit now)\n');
    abort.abort(new Error('interrupted'));
  });

  const mode = options.json
    ? ProgressMode.silent
    : process.stderr.isTTY
      ? ProgressMode.bar
      : ProgressMode.lines;
  const reporter = createProgressReporter(mode, process.stderr);
  const entries: ManifestEntry[] = [];
  const started = Date.now();
  const startRssBytes = process.memoryUsage.rss();
  const base = () => ({
    ok: true,
    bucket: target.bucket,
    prefix: target.prefix,
    runId,
    seed,
    names: options.names,
    filesPlanned: options.count,
    durationMs: Date.now() - started,
    manifest: manifest?.path ?? null,
  });

  try {
    const bucket = await checkBucket(s3, target.bucket);
    if (bucket === 'unchecked') {
      process.stderr.write(
        `generator: may not look at bucket ${target.bucket} (HeadBucket answered 403: no s3:ListBucket); uploading anyway\n`,
      );
    }
    if (bucket === 'missing') {
      return fail(
        ExitCode.usage,
        `generator: bucket ${target.bucket} does not exist${target.aws.endpoints.s3 ? ` at ${target.aws.endpoints.s3}` : ''} (check --bucket or the stage's outputs; run provision/up.ts, or npm run demo -- --keep for the local stack)`,
      );
    }
    await generateAndUpload({
      s3,
      bucket: target.bucket,
      prefix: target.prefix,
      count: options.count,
      minLines: options.minLines,
      maxLines: options.maxLines,
      concurrency: options.concurrency,
      seed,
      names: options.names,
      runId,
      signal: abort.signal,
      onProgress: (progress: GenerateProgress) => {
        if (progress.completed !== undefined) {
          entries.push(progress.completed);
          manifest?.write(progress.completed);
        }
        reporter.update(progress);
      },
    });
    reporter.finish();
    const summary = summarise(entries, base(), startRssBytes);
    process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : `${describeSummary(summary)}\n`);
    return ExitCode.ok;
  } catch (error) {
    reporter.finish();
    const summary = summarise(entries, { ...base(), ok: false }, startRssBytes);
    const message =
      error instanceof GenerateAbortedError || interrupted
        ? `generator: interrupted after ${entries.length} of ${options.count} files`
        : `generator: ${describeFailure(error).message}`;
    if (!options.json) process.stderr.write(`${describeSummary(summary)}\n`);
    return fail(interrupted ? ExitCode.interrupted : ExitCode.failed, message, { ...summary, ok: false });
  } finally {
    await manifest?.close();
    removeSignalHandlers();
    s3.destroy();
  }
}

if (isMain(import.meta.url)) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // aborted uploads can leave a request settling in the background; do not
  // let it hold the process open once the result is printed
  setTimeout(() => process.exit(code), 2000).unref();
}
