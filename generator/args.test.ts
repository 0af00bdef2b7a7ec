import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBucketName, checkPrefix, defaults, parseCliArgs } from './args.ts';

test('no flags gives the documented defaults', () => {
  const { options, problems } = parseCliArgs([]);
  assert.deepEqual(problems, []);
  assert.equal(options.count, defaults.count);
  assert.equal(options.minLines, 0);
  assert.equal(options.maxLines, 5000);
  assert.equal(options.concurrency, 8);
  assert.equal(options.names, 'simple');
  assert.equal(options.json, false);
  assert.equal(options.bucket, undefined);
  assert.equal(options.seed, undefined);
});

test('every flag is read, in --flag value and --flag=value forms', () => {
  const { options, problems } = parseCliArgs([
    '--count=3',
    '--min-lines',
    '10',
    '--max-lines=20',
    '--bucket',
    'my-bucket',
    '--prefix',
    'inbox/2025/',
    '--concurrency=2',
    '--seed',
    '4294967295',
    '--manifest',
    'out.jsonl',
    '--names',
    'realistic',
    '--json',
    '--stage',
    'prod',
  ]);
  assert.deepEqual(problems, []);
  assert.deepEqual(options, {
    help: false,
    count: 3,
    minLines: 10,
    maxLines: 20,
    bucket: 'my-bucket',
    prefix: 'inbox/2025/',
    concurrency: 2,
    seed: 4_294_967_295,
    manifest: 'out.jsonl',
    names: 'realistic',
    json: true,
    stage: 'prod',
  });
});

test('every problem is reported at once', () => {
  const { problems } = parseCliArgs([
    '--count',
    '0',
    '--min-lines',
    '-1',
    '--max-lines',
    '1e3',
    '--concurrency',
    '65',
    '--seed',
    '4294967296',
    '--bucket',
    'My_Bucket',
    '--prefix',
    '/uploads',
    '--names',
    'fancy',
    '--json=yes',
    '--colour',
    'stray',
  ]);
  const expected = [
    /--count=0 must be from 1 to 1000000/,
    /--min-lines=-1 must be a whole number/,
    /--max-lines=1e3 must be a whole number/,
    /--concurrency=65 must be from 1 to 64/,
    /--seed=4294967296 must be from 0 to 4294967295/,
    /--bucket=My_Bucket must be 3-63 lowercase/,
    /--prefix="\/uploads" must end with \//,
    /--prefix="\/uploads" must not start with \//,
    /--names=fancy must be one of simple, realistic/,
    /--json takes no value/,
    /unknown flag --colour/,
    /unexpected argument "stray"/,
  ];
  for (const pattern of expected) {
    assert.ok(
      problems.some((p) => pattern.test(p)),
      `missing ${pattern} in:\n${problems.join('\n')}`,
    );
  }
  assert.equal(problems.length, expected.length, problems.join('\n'));
});

test('min-lines above max-lines is refused', () => {
  assert.deepEqual(parseCliArgs(['--min-lines', '10', '--max-lines', '9']).problems, [
    '--min-lines=10 must not be more than --max-lines=9',
  ]);
  assert.deepEqual(parseCliArgs(['--min-lines', '7', '--max-lines', '7']).problems, []);
});

test('a flag without its value is caught, not swallowed by the next flag', () => {
  assert.deepEqual(parseCliArgs(['--count', '--json']).problems, ['--count needs a value']);
  assert.deepEqual(parseCliArgs(['--bucket']).problems, ['--bucket needs a value']);
  assert.deepEqual(parseCliArgs(['--count', '1', '--count', '2']).problems, [
    '--count is given more than once',
  ]);
});

test('--help is recognised whatever else is given', () => {
  assert.equal(parseCliArgs(['--help', '--count', 'x']).options.help, true);
  assert.equal(parseCliArgs(['-h']).options.help, true);
});

test('bucket names follow the S3 naming rules', () => {
  const cases: [string, boolean][] = [
    ['ada-linecount-dev-000000000000-us-east-1', true],
    ['my.bucket.name', true],
    ['abc', true],
    ['ab', false],
    ['a'.repeat(64), false],
    ['Upper', false],
    ['under_score', false],
    ['-leading', false],
    ['trailing-', false],
    ['two..dots', false],
    ['192.168.1.1', false],
    ['xn--bucket', false],
    ['bucket-s3alias', false],
  ];
  for (const [name, valid] of cases) assert.equal(checkBucketName(name) === undefined, valid, name);
});

test('prefixes must be folder-shaped', () => {
  const cases: [string, boolean][] = [
    ['uploads/', true],
    ['uploads/escritório/2025/', true],
    ['', false],
    ['uploads', false],
    ['/uploads/', false],
    ['uploads//x/', false],
    ['uploads/../', false],
    ['up\tloads/', false],
    [`${'x'.repeat(600)}/`, false],
  ];
  for (const [prefix, valid] of cases)
    assert.equal(checkPrefix(prefix).length === 0, valid, JSON.stringify(prefix));
});
