import { type ParseArgsConfig, parseArgs } from 'node:util';
import { describeError, UsageError } from './errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

// A value that starts with a dash and a digit is a negative number, never a
// flag: no flag here is spelled -1.
const negativeNumber = /^-\d/;

// node:util parseArgs refuses `--count -1` as ambiguous (the value could be a
// flag). The generator reads it as the value -1; so do these commands: a
// value-taking flag followed by a negative number is joined as --count=-1, and
// the value's own check then says what range is allowed (lib/cli.ts).
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg === '--') {
      joined.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      negativeNumber.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

// Every command's flag parsing. Strict: an unknown flag, a missing value or a
// stray argument is a usage error, reported before any other work is done.
export function parseFlags<T extends Options>(argv: readonly string[], options: T) {
  try {
    return parseArgs({
      args: joinNegativeValues(argv, options),
      options,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError(`${describeError(error)} (see --help)`);
  }
}
