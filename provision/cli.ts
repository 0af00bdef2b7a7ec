import { confirm as ask, createProgressLine, describeFailure, ExitCode, isInteractive } from '../lib/cli.ts';
import type { Log } from '../lib/reconcile.ts';

// What up.ts and down.ts share: the console log and their edge, on the
// project's one CLI edge (lib/cli.ts: exit codes, prompt, progress line,
// failure messages; flags: lib/flags.ts).

export { ExitCode, isInteractive };

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
  // rewritten in place on a terminal; one line each elsewhere (CI logs)
  const progress = createProgressLine(err);
  return {
    info(message) {
      progress.done();
      messages.write(`${message}\n`);
    },
    warn(message) {
      progress.done();
      err.write(`warning: ${message}\n`);
    },
    progress(message) {
      progress.update(message);
    },
    done() {
      progress.done();
    },
  };
}

// up's and down's question before they change anything (asked on stdout, with the plan)
export function confirm(question: string): Promise<boolean> {
  return ask(question, process.stdout);
}

// The edge of both scripts: configuration and usage problems exit 2 with every
// problem listed; AWS failures exit 1 with the step that failed, or the
// endpoint that did not answer.
export async function runCli(main: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (error) {
    const failure = describeFailure(error);
    process.stderr.write(
      failure.code === ExitCode.usage ? `${failure.message}\n` : `error: ${failure.message}\n`,
    );
    process.exitCode = failure.code;
  }
}
