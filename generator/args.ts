import { wholeNumberProblem } from '../lib/cli.ts';
import { collectFlags } from '../lib/flags.ts';
import { NameStyle } from './names.ts';
import { maxSeed } from './random.ts';

// The generator's command line, checked completely before anything runs: every
// problem is collected so a user fixes them all in one pass (exit code 2).

export interface CliOptions {
  help: boolean;
  count: number;
  minLines: number;
  maxLines: number;
  bucket?: string;
  prefix?: string;
  concurrency: number;
  seed?: number;
  manifest?: string;
  names: NameStyle;
  json: boolean;
  stage?: string;
}

export const limits = {
  count: { min: 1, max: 1_000_000 },
  // ~100 bytes a line: the upper limit is a ~10 GB file
  lines: { min: 0, max: 100_000_000 },
  // each upload holds up to 2 parts of 5 MiB, so 64 caps memory near 640 MiB
  concurrency: { min: 1, max: 64 },
  // S3 keys are at most 1,024 bytes; the generated part needs ~200 of them
  prefixBytes: 512,
} as const;

export const defaults = {
  count: 20,
  minLines: 0,
  maxLines: 5000,
  concurrency: 8,
  names: NameStyle.simple,
  prefix: 'uploads/',
} as const;

const flags = {
  help: { type: 'boolean', short: 'h' },
  count: { type: 'string' },
  'min-lines': { type: 'string' },
  'max-lines': { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  concurrency: { type: 'string' },
  seed: { type: 'string' },
  manifest: { type: 'string' },
  names: { type: 'string' },
  json: { type: 'boolean' },
  stage: { type: 'string' },
} as const;
type Flag = keyof typeof flags;

export const usage = `Usage: npx tsx generator/main.ts [options]

Makes text files with a known number of lines and uploads them to S3,
streaming (multipart above 5 MiB), and writes a manifest of what it uploaded.

Options:
  --count N           files to upload (${limits.count.min}-${limits.count.max}, default ${defaults.count})
  --min-lines N       fewest lines in a file (default ${defaults.minLines}; 0 allows empty files)
  --max-lines N       most lines in a file (up to ${limits.lines.max}, default ${defaults.maxLines})
  --bucket NAME       target bucket (default: the bucket in .ada/outputs.<stage>.json)
  --prefix P          key prefix ending in / (default: the stack's uploads prefix, else ${defaults.prefix})
  --concurrency N     uploads at once (${limits.concurrency.min}-${limits.concurrency.max}, default ${defaults.concurrency})
  --seed N            0-${maxSeed}; the same seed makes the same file contents (default: random)
  --manifest FILE     write one JSON line per uploaded file (key, lines, bytes, sha256, etag)
  --names STYLE       simple (ASCII, default) or realistic (spaces, accents, +, #)
  --json              print one JSON summary on stdout and nothing else there
  --stage S           whose provisioning outputs to read (default: STAGE, else dev)
  -h, --help          show this help

AWS settings come from the environment: AWS_REGION, AWS_PROFILE or other
credentials, and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for an emulator.

Exit codes: 0 done, 1 an upload or AWS call failed, 2 bad flags or configuration.`;

function readInt(problems: string[], flag: string, raw: string, min: number, max: number) {
  const problem = wholeNumberProblem(flag, raw, min, max);
  if (problem === undefined) return Number(raw);
  problems.push(problem);
  return undefined;
}

// S3 general purpose bucket naming rules (Bucket naming rules, S3 User Guide).
export function checkBucketName(name: string): string | undefined {
  const rules =
    'must be 3-63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit';
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) return `--bucket=${name} ${rules}`;
  if (name.includes('..')) return `--bucket=${name} must not contain two dots in a row`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return `--bucket=${name} must not look like an IP address`;
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) {
    return `--bucket=${name} uses a prefix or suffix that S3 reserves`;
  }
  return undefined;
}

export function checkPrefix(prefix: string): string[] {
  const problems: string[] = [];
  const shown = JSON.stringify(prefix);
  if (prefix === '')
    return [
      `--prefix must not be empty (e.g. ${defaults.prefix}): keys at the bucket root miss the uploads notification`,
    ];
  if (!prefix.endsWith('/')) problems.push(`--prefix=${shown} must end with / (e.g. ${prefix}/)`);
  if (prefix.startsWith('/'))
    problems.push(`--prefix=${shown} must not start with / (S3 keys have no leading slash)`);
  if (prefix.includes('//')) problems.push(`--prefix=${shown} must not contain an empty folder (//)`);
  if (prefix.split('/').some((part) => part === '.' || part === '..')) {
    problems.push(`--prefix=${shown} must not contain . or .. folders`);
  }
  // S3 accepts control characters in keys, but XML list responses and most
  // tools do not handle them (S3 User Guide, object key naming)
  if ([...prefix].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
    problems.push(`--prefix=${shown} must not contain control characters`);
  }
  if (Buffer.byteLength(prefix, 'utf8') > limits.prefixBytes) {
    problems.push(`--prefix must be at most ${limits.prefixBytes} bytes (S3 keys are at most 1,024)`);
  }
  return problems;
}

export function parseCliArgs(argv: readonly string[]): { options: CliOptions; problems: string[] } {
  const problems: string[] = [];
  const values = collectFlags(argv, flags, problems);
  const text = (flag: Flag): string | undefined => {
    const value = values[flag];
    return typeof value === 'string' ? value : undefined;
  };
  const int = (flag: Flag, fallback: number, min: number, max: number): number | undefined => {
    const raw = text(flag);
    return raw === undefined ? fallback : readInt(problems, flag, raw, min, max);
  };

  const count = int('count', defaults.count, limits.count.min, limits.count.max);
  const minLines = int('min-lines', defaults.minLines, limits.lines.min, limits.lines.max);
  const maxLines = int('max-lines', defaults.maxLines, limits.lines.min, limits.lines.max);
  if (minLines !== undefined && maxLines !== undefined && minLines > maxLines) {
    problems.push(`--min-lines=${minLines} must not be more than --max-lines=${maxLines}`);
  }
  const concurrency = int(
    'concurrency',
    defaults.concurrency,
    limits.concurrency.min,
    limits.concurrency.max,
  );
  const rawSeed = text('seed');
  const seed = rawSeed === undefined ? undefined : readInt(problems, 'seed', rawSeed, 0, maxSeed);

  const bucket = text('bucket');
  if (bucket !== undefined) {
    const problem = checkBucketName(bucket);
    if (problem) problems.push(problem);
  }
  const prefix = text('prefix');
  if (prefix !== undefined) problems.push(...checkPrefix(prefix));

  const names = text('names') ?? defaults.names;
  if (!Object.values(NameStyle).includes(names as NameStyle)) {
    problems.push(`--names=${names} must be one of ${Object.values(NameStyle).join(', ')}`);
  }
  const manifest = text('manifest');
  if (manifest !== undefined && manifest.trim() === '') problems.push('--manifest needs a file path');

  return {
    options: {
      help: values.help === true,
      count: count ?? defaults.count,
      minLines: minLines ?? defaults.minLines,
      maxLines: maxLines ?? defaults.maxLines,
      bucket,
      prefix,
      concurrency: concurrency ?? defaults.concurrency,
      seed,
      manifest,
      names: names as NameStyle,
      json: values.json === true,
      stage: text('stage'),
    },
    problems,
  };
}
