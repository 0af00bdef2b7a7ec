import { confirm, createProgressLine, ExitCode, isInteractive, runCommand } from '../lib/cli.ts';
import type { Log } from '../lib/reconcile.ts';

// What up.ts and down.ts share: the console log, on the project's one CLI
// edge (lib/cli.ts: exit codes, prompt, progress line, failure messages;
// flags: lib/flags.ts). Their question before they change anything is asked
// on stdout, with the plan.

export { confirm, ExitCode, isInteractive };

interface ConsoleLogOptions {
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

// Configuration and usage problems exit 2 with every problem listed; AWS
// failures exit 1 with the step that failed, or the endpoint that did not answer.
export async function runCli(main: () => Promise<number>): Promise<void> {
  process.exitCode = await runCommand(main);
}
