import { createInterface } from 'node:readline/promises';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './config.ts';
import { describeError, EndpointUnreachableError, UsageError, unreachableHint } from './errors.ts';

// The edge every command shares: up and down (provision/cli.ts), the ops
// commands (ops/common.ts), the generator, the demo and the local runner. Exit
// codes, the whole-number and duration flag values, the yes/no prompt, the
// progress line, Ctrl-C, and how a failure becomes one message. Flag parsing
// itself is lib/flags.ts.

// 1 is both "failed" and "needs attention" (ops/status, ops/audit): a script
// checking the code treats them alike. 130 = 128 + SIGINT, as shells report it.
export const ExitCode = { ok: 0, failed: 1, attention: 1, usage: 2, interrupted: 130 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

function describeRange(min: number, max: number | undefined): string {
  return max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
}

// A flag value that must be a whole number within a range; undefined when it
// is, else the problem (for commands that list every problem at once).
// Negative numbers reach here written either way (--count=-1 or --count -1,
// lib/flags.ts) and are refused with the range.
export function wholeNumberProblem(
  flag: string,
  text: string,
  min: number,
  max?: number,
): string | undefined {
  const value = Number(text);
  // whole numbers are 0, 1, 2, ...: a negative one is not, whatever the range
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    return `--${flag}=${text} must be a whole number ${describeRange(min, max)}`;
  }
  if (value < min || (max !== undefined && value > max)) {
    return `--${flag}=${text} must be ${describeRange(min, max)}`;
  }
  return undefined;
}

export function readWholeNumber(flag: string, text: string, min: number, max?: number): number {
  const problem = wholeNumberProblem(flag, text, min, max);
  if (problem !== undefined) throw new UsageError(`${problem} (see --help)`);
  return Number(text);
}

export const DurationUnit = { milliseconds: 'milliseconds', seconds: 'seconds' } as const;
export type DurationUnit = (typeof DurationUnit)[keyof typeof DurationUnit];

// A duration flag in its unit: whole milliseconds, or seconds with fractions
// allowed (0.5). Returned in milliseconds.
export function readDuration(
  flag: string,
  text: string,
  unit: DurationUnit,
  limits: { min: number; max?: number },
): number {
  const value = Number(text);
  const valid =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (unit === DurationUnit.seconds || Number.isSafeInteger(value)) &&
    value >= limits.min &&
    (limits.max === undefined || value <= limits.max);
  if (!valid) {
    const kind = unit === DurationUnit.milliseconds ? 'whole number of milliseconds' : 'number of seconds';
    throw new UsageError(
      `--${flag}=${text} must be a ${kind} ${describeRange(limits.min, limits.max)} (see --help)`,
    );
  }
  return unit === DurationUnit.seconds ? Math.round(value * 1000) : value;
}

export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

// Asks on a terminal; anything but y or yes is no.
export async function confirm(
  question: string,
  output: NodeJS.WritableStream = process.stdout,
): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  // the terminal's width: a longer line would wrap, and \r rewrites only its last row
  columns?: number;
}

export interface ProgressLine {
  update(text: string): void;
  // clears the line from a terminal; keep leaves the last text standing
  done(options?: { keep?: boolean }): void;
  // whether a line is on the terminal now (other output must clear it first)
  readonly shown: boolean;
}

// A status line rewritten in place on a terminal (\r, then ESC[K clears what
// a longer line left). In a log, where \r does not work, one plain line at
// most every `everyMs` (0: every update).
export function createProgressLine(
  out: ProgressOutput,
  options: { everyMs?: number; now?: () => number } = {},
): ProgressLine {
  const now = options.now ?? Date.now;
  const everyMs = options.everyMs ?? 0;
  // a log's first line waits a full interval too: a short wait prints nothing
  let last = now();
  let shown = false;
  let text = '';
  return {
    update(next) {
      text = next;
      if (out.isTTY) {
        const fits = out.columns && text.length >= out.columns ? `${text.slice(0, out.columns - 2)}…` : text;
        out.write(`\r${fits}\x1b[K`);
        shown = true;
      } else if (now() - last >= everyMs) {
        out.write(`${text}\n`);
        last = now();
      }
    },
    done(doneOptions = {}) {
      if (out.isTTY && shown) out.write(doneOptions.keep ? '\n' : '\r\x1b[K');
      shown = false;
      last = now();
    },
    get shown() {
      return shown;
    },
  };
}

interface Failure {
  code: ExitCode;
  message: string;
}

// One message and exit code for whatever stopped a command: 2 for bad flags or
// configuration (nothing was done), 1 for a failed step. An endpoint that did
// not answer, unwrapped by any step, still says what to check.
export function describeFailure(error: unknown): Failure {
  if (error instanceof UsageError || error instanceof ConfigError) {
    return { code: ExitCode.usage, message: error.message };
  }
  if (error instanceof EndpointUnreachableError) {
    return { code: ExitCode.failed, message: `${error.message} (${unreachableHint}: ${error.hint})` };
  }
  return { code: ExitCode.failed, message: describeError(error) };
}

interface FailureOptions {
  // where the message goes (stderr unless given)
  err?: (text: string) => void;
  // starts the message, for a command whose output shares a terminal with others
  name?: string;
}

// Writes whatever stopped a command as one line (a usage problem as it is, a
// failure after "error: ") and returns its exit code.
export function reportFailure(error: unknown, options: FailureOptions = {}): ExitCode {
  const failure = describeFailure(error);
  const write = options.err ?? ((text: string) => process.stderr.write(text));
  const label = options.name === undefined ? '' : `${options.name}: `;
  write(`${label}${failure.code === ExitCode.usage ? '' : 'error: '}${failure.message}\n`);
  return failure.code;
}

// Every command's body runs here: its exit code, or its failure reported.
export async function runCommand<Code extends number>(
  body: () => Promise<Code>,
  options: FailureOptions = {},
): Promise<Code | ExitCode> {
  try {
    return await body();
  } catch (error) {
    return reportFailure(error, options);
  }
}

// Whether the module at `url` is the script node was started with (not imported by a test).
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href;
}

// One Ctrl-C can arrive twice (from the terminal to the process group, and
// relayed by a wrapper such as the tsx CLI): a repeat within a second is the same press.
const repeatedSignalMs = 1_000;

// The first SIGINT or SIGTERM asks the command to stop; another one, a second
// or more later, quits at once (130). Returns what removes the handlers.
export function onInterrupt(stop: (signal: NodeJS.Signals) => void): () => void {
  let signalledAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalledAt !== undefined) {
      if (Date.now() - signalledAt > repeatedSignalMs) process.exit(ExitCode.interrupted);
      return;
    }
    signalledAt = Date.now();
    stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
