import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// The IAM evaluator (@cloud-copilot/iam-simulate and iam-data) is AGPL-3.0: a
// development dependency for the tests, never part of what the project runs or
// ships. Every source file outside the tests is bundled as an entry point (npm
// packages left as imports), and no module it reaches, directly or through
// another file, may be one of those packages or a test file.

const root = fileURLToPath(new URL('../../', import.meta.url));
const sourceDirectories = [
  'lib',
  'lambda-image',
  'provision',
  'teardown',
  'local',
  'generator',
  'ops',
  'bench',
];
const isTestFile = (path: string) => path.endsWith('.test.ts') || /(^|\/)test\//.test(path);
// The provisioning benchmark plays up and down on the test fakes (whose IAM
// fake decides requests with the evaluator): like the tests, it is run from
// the repository by a developer and is no part of what the project runs or ships.
const onTestFakes = new Set(['bench/provision.ts']);

function* sources(directory: string): Generator<string> {
  for (const entry of readdirSync(join(root, directory), { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !isTestFile(path) && !onTestFakes.has(path)) yield path;
  }
}

test('no code outside the tests reaches the IAM evaluator or a test file', async () => {
  const entryPoints = sourceDirectories.flatMap((directory) => [...sources(directory)]);
  assert.ok(entryPoints.includes('provision/up.ts') && entryPoints.includes('lambda-image/handler.ts'));
  const result = await build({
    absWorkingDir: root,
    entryPoints,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    write: false,
    outdir: 'out',
    metafile: true,
    logLevel: 'silent',
  });
  const reached: string[] = [];
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    if (isTestFile(relative(root, join(root, file)))) reached.push(`${file} (a test file)`);
    for (const imported of input.imports) {
      if (imported.path.startsWith('@cloud-copilot/')) reached.push(`${file} imports ${imported.path}`);
    }
  }
  assert.deepEqual(reached, []);
});
