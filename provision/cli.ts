import { createInterface } from 'node:readline/promises';
import { ConfigError } from '../lib/config.ts';
import { describeError, UsageError } from '../lib/errors.ts';
import type { Log } from '../lib/reconcile.ts';

// What up.ts and down.ts share: the console log, the prompt and the exit codes
// (flags: lib/flags.ts).

export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

export interface ConsoleLogOptions {
  // --json: stdout carries only the JSON document, so messages go to stderr
  json: boolean;
  out?: NodeJS.WriteStream;
  err?: NodeJS.WriteStream;
}

export type ConsoleLog = Log & { done(): void };

export function createConsoleLog(options: ConsoleLogOptions): ConsoleLog {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const messages = options.json ? err : out;
  let transient = false;
  const clear = () => {
    if (transient) {
      err.write('\r\x1b[K');
      transient = false;
    }
  };
  return {
    info(message) {
      clear();
      messages.write(`${message}\n`);
    },
    warn(message) {
      clear();
      err.write(`warning: ${message}\n`);
    },
    progress(message) {
      // rewritten in place on a terminal; one line each elsewhere (CI logs)
      if (err.isTTY) {
        err.write(`\r\x1b[K${message}`);
        transient = true;
      } else {
        err.write(`${message}\n`);
      }
    },
    done: clear,
  };
}

export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY);
}

export async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

// The edge of both scripts: configuration and usage problems exit 2 with every
// problem listed; AWS failures exit 1 with the step that failed.
export async function runCli(main: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = ExitCode.usage;
    } else if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = ExitCode.usage;
    } else {
      process.stderr.write(`error: ${describeError(error)}\n`);
      process.exitCode = ExitCode.failed;
    }
  }
}
