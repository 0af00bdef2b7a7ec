import { type ParseArgsConfig, parseArgs } from 'node:util';
import { describeError, UsageError } from './errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

// Every command's flag parsing. Strict: an unknown flag, a missing value or a
// stray argument is a usage error, reported before any other work is done.
export function parseFlags<T extends Options>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`${describeError(error)} (see --help)`);
  }
}
