import { randomInt } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManifestEntry } from '../generator/generate.ts';
import { createRunId, NameStyle } from '../generator/names.ts';
import { type FilePlan, LineEnding, planFiles } from '../generator/plan.ts';
import { formatBytes } from '../generator/progress.ts';
import { maxSeed } from '../generator/random.ts';
import {
  createProgressLine,
  ExitCode,
  isMain,
  onInterrupt,
  type ProgressOutput,
  readWholeNumber,
  reportFailure,
} from '../lib/cli.ts';
import { type Env, loadLocalConfig } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { outputsPath, type StackOutputs, writeOutputs } from '../lib/outputs.ts';
import type { FileResult, LocalPipeline } from './pipeline.ts';
import { type LocalServices, startLocalServices } from './services.ts';

// `npm run demo`: the whole flow on this machine with the code that runs in
// AWS. Upload → S3 event → SNS → SQS → the function → Redis → PostgreSQL, then
// a check that every generated file is in the table with the line count the
// generator planned for it.
//
// The pipeline and the uploader (the AWS SDK, the emulator, the function) are
// imported only once Redis and PostgreSQL are starting: loading them takes
// about as long as the embedded PostgreSQL's initdb, which runs meanwhile.
// (Given servers are checked first: see runDemo.)

// The demo's stack is always stage `local`: its outputs file
// (.ada/outputs.local.json) then never overwrites a deployed stage's.
const demoStage = 'local';

// Defaults chosen for a short run, each overridable from the environment:
// a 5 s function timeout keeps the queue's visibility timeout at 6 × 5 + 1 =
// 31 s (AWS rule, lib/config.ts) instead of 365 s, and a 1 s batching window
// keeps the last partial batch from waiting 5 s.
export const demoDefaults = { FUNCTION_TIMEOUT_SECONDS: '5', BATCHING_WINDOW_SECONDS: '1' } as const;

const defaultCount = 25;
const maxCount = 10_000;
// mixed sizes: up to ~2 MB a file, with the generator's empty and no-final-newline files
const maxLines = 20_000;
const uploadConcurrency = 8;

const usage = `usage: npm run demo -- [--count N] [--seed N] [--keep] [--json] [--help]

Starts the local stack (S3, SNS and SQS emulated in-process), Redis and
PostgreSQL (REDIS_URL / DATABASE_URL when set, else embedded), the function
behind the local event-source runner; uploads N generated files and checks
that each one reaches PostgreSQL with the right line count.

  --count N   files to upload (default ${defaultCount}, 1-${maxCount})
  --seed N    generator seed, 0-${maxSeed} (default random, printed)
  --keep      keep everything running after the check and print how to use it (Ctrl-C stops)
  --json      print one JSON result on stdout instead of the table
  -h, --help  this text

Environment: LOCAL_AWS_PORT (emulator port, default 4566), REDIS_URL,
DATABASE_URL, DB_SCHEMA (default public), FUNCTION_TIMEOUT_SECONDS (default 5),
BATCHING_WINDOW_SECONDS (default 1), BATCH_SIZE, MAX_CONCURRENCY.
Exit codes: 0 every file recorded correctly, 1 something missing or wrong,
2 bad flags or configuration, 130 interrupted.`;

interface DemoArgs {
  help: boolean;
  keep: boolean;
  json: boolean;
  count: number;
  seed: number | undefined;
}

function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const values = parseFlags(argv, {
    help: { type: 'boolean', short: 'h' },
    keep: { type: 'boolean' },
    json: { type: 'boolean' },
    count: { type: 'string' },
    seed: { type: 'string' },
  });
  return {
    help: values.help ?? false,
    keep: values.keep ?? false,
    json: values.json ?? false,
    count: values.count === undefined ? defaultCount : readWholeNumber('count', values.count, 1, maxCount),
    seed: values.seed === undefined ? undefined : readWholeNumber('seed', values.seed, 0, maxSeed),
  };
}

// ---- output ----

interface Output extends ProgressOutput {
  columns?: number;
}

function formatLatency(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// Keeps the start of a long key (date and client folder) and its end (file number and type).
export function shorten(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  const tail = Math.min(16, Math.ceil((width - 1) * 0.4));
  return `${chars.slice(0, width - 1 - tail).join('')}…${chars.slice(chars.length - tail).join('')}`;
}

function pad(text: string, width: number, right = false): string {
  const gap = ' '.repeat(Math.max(0, width - [...text].length));
  return right ? gap + text : text + gap;
}

interface DemoRow extends FileResult {
  bytes: number;
  // what makes the file an edge case for counting: empty, no final newline, CRLF
  shape: string;
}

function describeShape(plan: Pick<FilePlan, 'lines' | 'finalNewline' | 'eol'>): string {
  if (plan.lines === 0) return 'empty';
  const notes = [
    ...(plan.eol === LineEnding.crlf ? ['CRLF'] : []),
    ...(plan.finalNewline ? [] : ['no final newline']),
  ];
  return notes.join(', ');
}

export function formatTable(rows: readonly DemoRow[], prefix: string, width: number): string {
  const headers = ['file', 'size', 'shape', 'lines expected', 'lines recorded', 'latency'];
  const rightAligned = [false, true, false, true, true, true];
  const cells = rows.map((r) => [
    r.key.startsWith(prefix) ? r.key.slice(prefix.length) : r.key,
    formatBytes(r.bytes),
    r.shape,
    r.expected.toLocaleString('en-US'),
    r.recorded === undefined ? 'missing' : r.recorded.toLocaleString('en-US'),
    formatLatency(r.latencyMs),
  ]);
  const widths = headers.map((h, i) =>
    Math.max([...h].length, ...cells.map((c) => [...(c[i] ?? '')].length)),
  );
  // the file column takes what the others leave of the width
  const others = widths.slice(1).reduce((sum, w) => sum + w + 2, 0) + 3;
  widths[0] = Math.max(20, Math.min(widths[0] ?? 0, width - others));
  const line = (row: readonly string[], mark = '') =>
    row
      .map((cell, i) => {
        const w = widths[i] ?? 0;
        return pad(i === 0 ? shorten(cell, w) : cell, w, rightAligned[i]);
      })
      .join('  ') + mark;
  return [
    line(headers),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.map((row, i) => line(row, rows[i]?.ok ? '' : '  ✗')),
  ].join('\n');
}

export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

interface DemoSummary {
  ok: boolean;
  files: number;
  recorded: number;
  missing: string[];
  wrong: { key: string; expected: number; recorded: number }[];
  lines: number;
  deadLettered: number;
  latencyMs: { p50?: number | undefined; p95?: number | undefined; max?: number | undefined };
  elapsedMs: number;
}

export function summarise(
  files: readonly FileResult[],
  deadLettered: number,
  elapsedMs: number,
): DemoSummary {
  const latencies = files
    .filter((f) => f.ok && f.latencyMs !== undefined)
    .map((f) => f.latencyMs as number)
    .sort((a, b) => a - b);
  const missing = files.filter((f) => f.recorded === undefined).map((f) => f.key);
  const wrong = files
    .filter((f) => f.recorded !== undefined && !f.ok)
    .map((f) => ({ key: f.key, expected: f.expected, recorded: f.recorded as number }));
  const recorded = files.filter((f) => f.ok).length;
  return {
    ok: recorded === files.length && deadLettered === 0,
    files: files.length,
    recorded,
    missing,
    wrong,
    lines: files.reduce((sum, f) => sum + (f.recorded ?? 0), 0),
    deadLettered,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), max: latencies.at(-1) },
    elapsedMs,
  };
}

export function describeSummary(s: DemoSummary): string {
  const latency = `latency upload→row p50 ${formatLatency(s.latencyMs.p50)}, p95 ${formatLatency(s.latencyMs.p95)}, max ${formatLatency(s.latencyMs.max)}`;
  if (s.ok) {
    return `OK: ${s.recorded} of ${s.files} files in PostgreSQL with the expected line counts (${s.lines.toLocaleString('en-US')} lines) in ${formatLatency(s.elapsedMs)}; ${latency}; dead-letter queue empty`;
  }
  const lines = [
    `FAILED: ${s.recorded} of ${s.files} files recorded correctly; ${s.missing.length} missing, ${s.wrong.length} wrong, ${s.deadLettered} message(s) in the dead-letter queue`,
  ];
  for (const key of s.missing) lines.push(`  missing: ${key}`);
  for (const w of s.wrong) {
    lines.push(`  wrong:   ${w.key}: expected ${w.expected} lines, recorded ${w.recorded}`);
  }
  if (s.deadLettered > 0) {
    lines.push(
      '  inspect the dead-letter queue with --keep and the aws sqs receive-message command it prints',
    );
  }
  return lines.join('\n');
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function describeKeep(outputs: StackOutputs, services: LocalServices, env: Record<string, string>) {
  const exports = {
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL ?? '',
    AWS_REGION: env.AWS_REGION ?? '',
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID ?? '',
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY ?? '',
    STAGE: outputs.stage,
    REDIS_URL: services.redisUrl,
    DATABASE_URL: services.databaseUrl,
    ...(env.DB_SCHEMA === undefined ? {} : { DB_SCHEMA: env.DB_SCHEMA }),
  };
  const endpoint = outputs.endpoint ?? '';
  return [
    '',
    'The stack keeps running; Ctrl-C stops it. Endpoints:',
    `  S3, SNS, SQS  ${endpoint}  (region ${outputs.region}, any credentials)`,
    `  bucket        ${outputs.bucket}  (events for keys under ${outputs.uploadsPrefix})`,
    `  queue         ${outputs.queueUrl}`,
    `  DLQ           ${outputs.dlqUrl}`,
    `  Redis         ${services.redisUrl}  (${services.redis})`,
    `  PostgreSQL    ${services.databaseUrl}  (${services.database})`,
    `  outputs       ${outputsPath(outputs.stage)}`,
    '',
    'In another shell (from this directory):',
    `  export ${Object.entries(exports)
      .map(([name, value]) => `${name}=${shellQuote(value)}`)
      .join(' ')}`,
    `  aws s3 cp ./my-file.txt ${shellQuote(`s3://${outputs.bucket}/${outputs.uploadsPrefix}my file.txt`)} --endpoint-url ${endpoint}`,
    '  npx tsx generator/main.ts --count 50 --names realistic   # bucket and prefix from the outputs',
    `  npx tsx ops/report.ts --prefix ${outputs.uploadsPrefix}`,
    `  aws sqs receive-message --queue-url ${outputs.dlqUrl} --endpoint-url ${endpoint}`,
    '',
    'Files recorded from now on are listed here:',
  ].join('\n');
}

// Removes the outputs file only while it still describes this run's stack.
async function removeOutputs(outputs: StackOutputs): Promise<void> {
  const path = outputsPath(outputs.stage);
  try {
    const current = JSON.parse(await readFile(path, 'utf8')) as Partial<StackOutputs>;
    if (current.endpoint === outputs.endpoint && current.updatedAt === outputs.updatedAt) await rm(path);
  } catch {
    // gone or unreadable: nothing of ours to remove
  }
}

function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === 'EADDRINUSE';
}

export async function runDemo(
  argv: readonly string[],
  env: Env,
  io: { out: Output; err: Output } = { out: process.stdout, err: process.stderr },
): Promise<number> {
  let args: DemoArgs;
  let port: number;
  let redisUrl: string | undefined;
  let databaseUrl: string | undefined;
  const failureOptions = { name: 'demo', err: (text: string) => io.err.write(text) };
  try {
    args = parseDemoArgs(argv);
    if (args.help) {
      io.out.write(`${usage}\n`);
      return ExitCode.ok;
    }
    ({ emulatorPort: port, redisUrl, databaseUrl } = loadLocalConfig(env));
  } catch (error) {
    return reportFailure(error, failureOptions);
  }

  // with --json, stdout carries the result alone
  const say = (text: string) => (args.json ? io.err : io.out).write(`${text}\n`);
  const warn = (text: string) => io.err.write(`demo: warning: ${text}\n`);
  const abort = new AbortController();
  const removeSignalHandlers = onInterrupt(() => {
    io.err.write('\ndemo: stopping (Ctrl-C again to quit at once)\n');
    abort.abort();
  });

  const started = Date.now();
  let services: LocalServices | undefined;
  let pipeline: LocalPipeline | undefined;
  let outputs: StackOutputs | undefined;
  try {
    say('ada-linecount demo: upload → S3 event → SNS → SQS → function → Redis → PostgreSQL, on this machine');
    const starting = startLocalServices({ redisUrl, databaseUrl, log: (line) => say(`  ${line}`) });
    // Loading the modules holds the event loop for a second or more, which a
    // given REDIS_URL/DATABASE_URL's 3 s check would count against the server:
    // only the embedded services' start (child processes) runs beside it.
    if (redisUrl !== undefined || databaseUrl !== undefined) await starting.catch(() => undefined);
    const loading = Promise.all([import('./pipeline.ts'), import('../generator/generate.ts')]);
    // either may fail first; the other's failure must not go unhandled
    loading.catch(() => undefined);
    services = await starting;
    const [{ startLocalPipeline }, { generateAndUpload }] = await loading;
    const settings: Env = {
      ...demoDefaults,
      ...env,
      STAGE: demoStage,
      REDIS_URL: services.redisUrl,
      DATABASE_URL: services.databaseUrl,
    };
    try {
      pipeline = await startLocalPipeline({
        env: settings,
        port,
        log: { info() {}, progress() {}, warn },
      });
    } catch (error) {
      if (!isAddressInUse(error)) throw error;
      io.err.write(
        `demo: port ${port} on 127.0.0.1 is already in use (another demo with --keep, or another emulator?): ` +
          `stop it, or choose another port, e.g. LOCAL_AWS_PORT=${port === 4566 ? 4567 : port + 1} npm run demo\n`,
      );
      return ExitCode.usage;
    }
    const { stack } = pipeline;
    outputs = stack.outputs;
    const fn = stack.config.fn;
    say(
      `  S3/SNS/SQS: emulator on ${stack.endpoint}; bucket, topic, queue, DLQ, subscription and notification ` +
        `reconciled (${stack.changes.length} created) by the provisioning code`,
    );
    say(
      `  function: ${fn.maxConcurrency} environments at most, batch ${fn.batchSize}, window ${fn.batchingWindowSeconds} s, ` +
        `timeout ${fn.timeoutSeconds} s; flush schedule every 1 s; table ${pipeline.runtime.database.schema}.line_counts`,
    );
    say(`  outputs: ${await writeOutputs(outputs)} (for the generator and ops commands)`);

    const seed = args.seed ?? randomInt(0, maxSeed + 1);
    say(
      `uploading ${args.count} generated files (seed ${seed}) to s3://${outputs.bucket}/${outputs.uploadsPrefix}`,
    );
    const generate = {
      prefix: outputs.uploadsPrefix,
      count: args.count,
      minLines: 0,
      maxLines,
      seed,
      names: NameStyle.realistic,
      runId: createRunId(),
    };
    // the same plans the generator follows, to say what each file is like
    const plans = new Map([...planFiles(generate)].map((plan) => [plan.key, plan]));
    // a terminal's line rewritten in place; in a log, one line every few seconds
    const progress = createProgressLine(io.err, { everyMs: 3_000 });
    const uploadStarted = Date.now();
    let entries: ManifestEntry[];
    try {
      entries = await generateAndUpload({
        ...generate,
        s3: stack.clients.s3,
        bucket: outputs.bucket,
        concurrency: uploadConcurrency,
        signal: abort.signal,
        onProgress: (p) => progress.update(`  uploaded ${p.filesDone}/${p.filesTotal} files`),
      });
    } finally {
      progress.done();
    }
    const uploadMs = Date.now() - uploadStarted;

    const timeoutMs = Math.max(30_000, args.count * 100);
    const waited = await pipeline.waitForFiles(entries, {
      timeoutMs,
      intervalMs: 200,
      signal: abort.signal,
      onProgress: (done, total) =>
        progress.update(`  waiting for PostgreSQL: ${done}/${total} files recorded`),
    });
    progress.done();
    if (abort.signal.aborted) return ExitCode.interrupted;
    // a message that failed maxReceiveCount times is there; one still retrying is not yet
    const dlq = await pipeline.queueDepth(outputs.dlqUrl);
    const deadLettered = dlq.visible + dlq.inFlight;
    const summary = summarise(waited.files, deadLettered, Date.now() - uploadStarted);
    const rows: DemoRow[] = waited.files.map((file, i) => {
      const plan = plans.get(file.key);
      return { ...file, bytes: entries[i]?.bytes ?? 0, shape: plan === undefined ? '' : describeShape(plan) };
    });
    if (!waited.complete) {
      say(`  gave up waiting after ${formatLatency(waited.waitedMs)}`);
    }
    if (args.json) {
      io.out.write(
        `${JSON.stringify({
          ok: summary.ok,
          summary,
          seed,
          uploadMs,
          endpoint: stack.endpoint,
          bucket: outputs.bucket,
          redis: services.redis,
          database: services.database,
          runner: pipeline.stats,
          files: rows.map((f) => ({
            key: f.key,
            bytes: f.bytes,
            shape: f.shape,
            expected: f.expected,
            recorded: f.recorded ?? null,
            latencyMs: f.latencyMs ?? null,
            ok: f.ok,
          })),
        })}\n`,
      );
    } else {
      // a terminal's width; a log's lines are not wrapped, so keys are shown whole there
      const width = io.out.isTTY ? Math.max(80, io.out.columns ?? 120) : 240;
      io.out.write(`\n${formatTable(rows, outputs.uploadsPrefix, width)}\n\n`);
      io.out.write(`${describeSummary(summary)}\n`);
      say(
        `  uploads took ${formatLatency(uploadMs)}; whole demo ${formatLatency(Date.now() - started)} ` +
          `(${pipeline.stats?.batches ?? 0} batches, ${pipeline.stats?.flushes ?? 0} scheduled flushes)`,
      );
    }
    if (args.keep && !abort.signal.aborted) {
      say(describeKeep(outputs, services, stack.env));
      await watchRecorded(pipeline, say, abort.signal);
    }
    return summary.ok ? ExitCode.ok : ExitCode.failed;
  } catch (error) {
    if (abort.signal.aborted) return ExitCode.interrupted;
    return reportFailure(error, failureOptions);
  } finally {
    // the handlers stay during the stop: a second Ctrl-C still quits at once
    if (outputs !== undefined) await removeOutputs(outputs);
    await pipeline?.stop().catch((error) => warn(`stopping the stack: ${describeError(error)}`));
    await services?.stop();
    removeSignalHandlers();
    if (args.keep && pipeline !== undefined) io.err.write('demo: stopped; nothing of it is left running\n');
  }
}

// --keep: prints each row committed from now on until Ctrl-C.
async function watchRecorded(
  pipeline: LocalPipeline,
  say: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let since = new Date();
  while (!signal.aborted) {
    await sleep(1_000, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) break;
    try {
      for (const row of await pipeline.readRecorded(since, 1_000)) {
        say(`  recorded ${row.key}: ${row.lines.toLocaleString('en-US')} lines`);
        since = row.recordedAt;
      }
    } catch (error) {
      say(`  cannot read the table: ${describeError(error)}`);
    }
  }
}

if (isMain(import.meta.url)) {
  process.exitCode = await runDemo(process.argv.slice(2), process.env);
}
