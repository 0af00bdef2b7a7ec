import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createProgressLine,
  DurationUnit,
  describeFailure,
  ExitCode,
  readDuration,
  readWholeNumber,
  reportFailure,
  runCommand,
  wholeNumberProblem,
} from './cli.ts';
import { ConfigError } from './config.ts';
import { EndpointUnreachableError, stepError, UsageError } from './errors.ts';
import { parseFlags } from './flags.ts';

test('a whole-number flag names the flag, the value and the range', () => {
  const cases: [string, number, number | undefined, string | undefined][] = [
    ['12', 1, 100, undefined],
    ['0', 0, undefined, undefined],
    ['many', 1, 100, '--n=many must be a whole number from 1 to 100'],
    ['1.5', 1, 100, '--n=1.5 must be a whole number from 1 to 100'],
    ['1e3', 1, undefined, '--n=1e3 must be a whole number ≥ 1'],
    ['-1', 0, 9, '--n=-1 must be a whole number from 0 to 9'],
    ['', 0, 9, '--n= must be a whole number from 0 to 9'],
    ['0', 1, 100, '--n=0 must be from 1 to 100'],
    ['101', 1, 100, '--n=101 must be from 1 to 100'],
    ['0', 1, undefined, '--n=0 must be ≥ 1'],
    ['99999999999999999999', 1, undefined, '--n=99999999999999999999 must be a whole number ≥ 1'],
  ];
  for (const [text, min, max, problem] of cases) {
    assert.equal(wholeNumberProblem('n', text, min, max), problem, text);
  }
  assert.equal(readWholeNumber('count', '7', 1, 10), 7);
  assert.throws(
    () => readWholeNumber('count', '11', 1, 10),
    (error: unknown) =>
      error instanceof UsageError && error.message === '--count=11 must be from 1 to 10 (see --help)',
  );
});

test('a duration flag is whole milliseconds, or seconds with fractions, returned in milliseconds', () => {
  assert.equal(readDuration('interval', '250', DurationUnit.milliseconds, { min: 100 }), 250);
  assert.equal(readDuration('age', '1.5', DurationUnit.seconds, { min: 0 }), 1_500);
  assert.equal(readDuration('age', '0', DurationUnit.seconds, { min: 0 }), 0);
  for (const [text, unit, message] of [
    ['99', DurationUnit.milliseconds, '--d=99 must be a whole number of milliseconds ≥ 100 (see --help)'],
    ['1.5', DurationUnit.milliseconds, '--d=1.5 must be a whole number of milliseconds ≥ 100 (see --help)'],
    ['soon', DurationUnit.seconds, '--d=soon must be a number of seconds ≥ 100 (see --help)'],
    ['-5', DurationUnit.seconds, '--d=-5 must be a number of seconds ≥ 100 (see --help)'],
    ['', DurationUnit.seconds, '--d= must be a number of seconds ≥ 100 (see --help)'],
  ] as const) {
    assert.throws(
      () => readDuration('d', text, unit, { min: 100 }),
      (error: unknown) => error instanceof UsageError && error.message === message,
      text,
    );
  }
});

test('a negative number after a flag is its value, written with a space or with =', () => {
  const options = { count: { type: 'string' }, json: { type: 'boolean' } } as const;
  assert.deepEqual({ ...parseFlags(['--count', '-1', '--json'], options) }, { count: '-1', json: true });
  assert.deepEqual({ ...parseFlags(['--count=-1'], options) }, { count: '-1' });
  // a dash that is not a number is still refused as a missing value
  assert.throws(() => parseFlags(['--count', '-x'], options), UsageError);
  // a boolean flag takes no value: a -1 after it is not joined to it
  assert.throws(() => parseFlags(['--json', '-1'], options), /Unknown option '-1'/);
  assert.throws(
    () => parseFlags(['--frobnicate'], options),
    (error: unknown) =>
      error instanceof UsageError && /Unknown option '--frobnicate'.*\(see --help\)$/.test(error.message),
  );
});

test('on a terminal the progress line is rewritten in place; in a log it is one line per interval', () => {
  const terminal: string[] = [];
  const onTerminal = createProgressLine({ write: (text) => terminal.push(text), isTTY: true });
  onTerminal.update('1/3');
  onTerminal.update('2/3');
  assert.equal(onTerminal.shown, true);
  onTerminal.done();
  assert.deepEqual(terminal, ['\r1/3\x1b[K', '\r2/3\x1b[K', '\r\x1b[K']);
  const narrow: string[] = [];
  const cut = createProgressLine({ write: (text) => narrow.push(text), isTTY: true, columns: 10 });
  cut.update('in flight: cache, database');
  cut.update('short');
  assert.deepEqual(narrow, ['\rin fligh…\x1b[K', '\rshort\x1b[K']);
  const kept: string[] = [];
  const keeping = createProgressLine({ write: (text) => kept.push(text), isTTY: true });
  keeping.update('done');
  keeping.done({ keep: true });
  assert.deepEqual(kept, ['\rdone\x1b[K', '\n']);

  let clock = 0;
  const log: string[] = [];
  const inLog = createProgressLine({ write: (text) => log.push(text) }, { everyMs: 3_000, now: () => clock });
  inLog.update('soon');
  clock = 3_000;
  inLog.update('a');
  clock = 4_000;
  inLog.update('b');
  clock = 6_000;
  inLog.update('c');
  inLog.done();
  assert.deepEqual(log, ['a\n', 'c\n']);
  const everyLine: string[] = [];
  const each = createProgressLine({ write: (text) => everyLine.push(text) });
  each.update('x');
  each.update('y');
  assert.deepEqual(everyLine, ['x\n', 'y\n']);
});

test('a failure becomes one message: usage and configuration exit 2, the rest 1', () => {
  assert.deepEqual(describeFailure(new UsageError('--x is bad')), {
    code: ExitCode.usage,
    message: '--x is bad',
  });
  assert.equal(describeFailure(new ConfigError(['AWS_REGION is not set'])).code, ExitCode.usage);
  assert.deepEqual(describeFailure(new Error('boom')), { code: ExitCode.failed, message: 'boom' });
});

test('an endpoint that did not answer is said as such, whatever hint the failed step guessed', () => {
  const unreachable = new EndpointUnreachableError(
    'no answer from http://127.0.0.1:9 for STS GetCallerIdentity (connect ECONNREFUSED 127.0.0.1:9)',
    'http://127.0.0.1:9',
    'is anything serving there?',
  );
  const wrapped = stepError(
    'identify the AWS caller (sts:GetCallerIdentity)',
    unreachable,
    'check that credentials are configured',
  );
  const failure = describeFailure(wrapped);
  assert.equal(failure.code, ExitCode.failed);
  assert.equal(
    failure.message,
    'cannot identify the AWS caller (sts:GetCallerIdentity): no answer from http://127.0.0.1:9 for STS GetCallerIdentity ' +
      '(connect ECONNREFUSED 127.0.0.1:9) (the request got no answer, so credentials and permissions were not checked: ' +
      'is anything serving there?)',
  );
  // unwrapped, it still says what to check
  assert.match(describeFailure(unreachable).message, /not checked: is anything serving there\?\)$/);
  // any other failure keeps the step's own hint
  assert.match(
    stepError('create queue q', new Error('denied'), 'check sqs:CreateQueue').message,
    /\(check sqs:CreateQueue\)$/,
  );
});

test('every command ends the same way: its own code, or one line for what stopped it', async () => {
  const lines: string[] = [];
  const err = (text: string) => lines.push(text);
  assert.equal(await runCommand(async () => ExitCode.attention, { err }), ExitCode.attention);
  assert.equal(
    await runCommand(
      async () => {
        throw new UsageError('--x is bad');
      },
      { err },
    ),
    ExitCode.usage,
  );
  assert.equal(reportFailure(new Error('boom'), { err }), ExitCode.failed);
  assert.equal(reportFailure(new Error('boom'), { err, name: 'demo' }), ExitCode.failed);
  assert.deepEqual(lines, ['--x is bad\n', 'error: boom\n', 'demo: error: boom\n']);
});
