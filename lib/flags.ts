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

// The same flags read leniently, for a command that reports every problem at
// once (the generator): an unknown flag, a repeated one, a missing value or a
// stray argument is added to `problems`, and reading goes on.
export function collectFlags<T extends Options>(
  argv: readonly string[],
  options: T,
  problems: string[],
): Partial<Record<keyof T, string | boolean>> {
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Partial<Record<keyof T, string | boolean>> = {};
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind === 'positional') {
      problems.push(`unexpected argument ${JSON.stringify(token.value)} (flags start with --)`);
      continue;
    }
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined) {
      problems.push(`unknown flag ${token.rawName} (see --help)`);
      continue;
    }
    const name = token.name as keyof T;
    if (seen.has(token.name)) problems.push(`--${token.name} is given more than once`);
    seen.add(token.name);
    if (option.type === 'boolean') {
      if (token.value !== undefined) problems.push(`--${token.name} takes no value`);
      values[name] = true;
      continue;
    }
    // without strict parsing, `--count --json` would take "--json" as the count
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
      problems.push(`--${token.name} needs a value`);
      continue;
    }
    values[name] = token.value;
  }
  return values;
}
