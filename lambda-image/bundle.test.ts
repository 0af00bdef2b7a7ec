import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { testDatabaseUrl, testRedisUrl } from '../test/support/services.ts';
import { type Bundle, bundleFileName, bundleFunction, projectRoot } from './bundle.ts';

const run = promisify(execFile);
const entry = 'test/support/bundle-entry.ts';

// one build of the stand-in entry serves every test that only reads it
let entryBuild: Promise<Bundle> | undefined;
function buildFixture(): Promise<Bundle> {
  entryBuild ??= bundleFunction({ entry });
  return entryBuild;
}

function file(bundle: Bundle, name: string): Buffer {
  const found = bundle.files.find((f) => f.name === name);
  assert.ok(found, `${name} in the bundle`);
  return Buffer.from(found.contents);
}

// Imports the bundle in a fresh Node.js process from a directory with no
// node_modules above it, as Lambda does from /var/task: anything not bundled
// fails to resolve. Module scope reads the configuration, so it gets an env.
async function importInChild(bundle: Bundle): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bundle-test-'));
  try {
    for (const f of bundle.files) await writeFile(join(dir, f.name), f.contents);
    const script =
      `const m = await import(${JSON.stringify(join(dir, bundleFileName))});` +
      'console.log(JSON.stringify(Object.keys(m).sort())); process.exit(0);';
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'us-east-1',
        REDIS_URL: testRedisUrl,
        REDIS_TLS: 'false',
        DATABASE_URL: testDatabaseUrl,
        // nothing is written at import, but should a cold start touch them, it stays in its own names
        DB_SCHEMA: 'bundle_import_check',
        REDIS_KEY_PREFIX: `test:bundle-import-${process.pid}:`,
      },
      timeout: 30_000,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('two builds of the same sources are byte-identical', async () => {
  const first = await buildFixture();
  const second = await bundleFunction({ entry });
  assert.deepEqual(
    first.files.map((f) => f.name),
    [bundleFileName, `${bundleFileName}.map`],
  );
  for (const f of first.files)
    assert.ok(file(second, f.name).equals(Buffer.from(f.contents)), `${f.name} identical`);
});

test('the source map is linked and names sources relative to the bundle, not this checkout', async () => {
  const bundle = await buildFixture();
  assert.match(file(bundle, bundleFileName).toString(), /\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
  const map = JSON.parse(file(bundle, `${bundleFileName}.map`).toString()) as {
    sources: string[];
    sourcesContent: string[];
  };
  assert.ok(map.sources.includes(`../../${entry}`));
  assert.ok(map.sources.every((source) => !source.includes(projectRoot)));
  assert.equal(map.sourcesContent.length, map.sources.length);
});

test('the AWS SDK and CommonJS dependencies are inside the bundle', async () => {
  const bundle = await buildFixture();
  const code = file(bundle, bundleFileName).toString();
  assert.doesNotMatch(code, /from\s*["']@aws-sdk\//);
  assert.doesNotMatch(code, /require\(["'](@aws-sdk|pg|ioredis)["']\)/);
  assert.ok(code.startsWith("import { createRequire as __bundleCreateRequire } from 'node:module';"));
  assert.deepEqual(await importInChild(bundle), ['flushHandler', 'handler', 'migrateHandler']);
});

test('an entry without handler and flushHandler is refused', async () => {
  await assert.rejects(
    bundleFunction({ entry: 'lib/names.ts' }),
    /lib\/names\.ts does not export flushHandler, handler/,
  );
});

test('a missing entry fails with the entry named', async () => {
  await assert.rejects(
    bundleFunction({ entry: 'lambda-image/absent.ts' }),
    /cannot bundle lambda-image\/absent\.ts/,
  );
});

test('the function entry bundles and loads with handler, flushHandler and migrateHandler', async () => {
  const bundle = await bundleFunction();
  assert.deepEqual(bundle.exports, ['flushHandler', 'handler', 'migrateHandler']);
  const exported = await importInChild(bundle);
  assert.ok(exported.includes('handler') && exported.includes('flushHandler'), exported.join(', '));
  assert.ok(exported.includes('migrateHandler'), exported.join(', '));
});
