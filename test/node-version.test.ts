import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { nodeTarget, projectRoot } from '../lambda-image/bundle.ts';

// Node.js 24 is the project's one version: the function's runtime (nodejs24.x),
// the version CI and .ci/run test on, and the one a developer installs.
// .nvmrc names it; everything else that names a Node.js major must agree.

const read = (path: string) => readFile(join(projectRoot, path), 'utf8');

async function projectMajor(): Promise<string> {
  const version = (await read('.nvmrc')).trim();
  const [, major] = /^(\d+)\.\d+\.\d+$/.exec(version) ?? [];
  assert.ok(
    major,
    `.nvmrc holds one exact version (x.y.z), not ${JSON.stringify(version)}: .ci/run fetches it`,
  );
  return major;
}

test('package.json, @types/node and the bundle target name the .nvmrc major', async () => {
  const major = await projectMajor();
  const pkg = JSON.parse(await read('package.json')) as {
    engines: { node: string };
    devDependencies: Record<string, string>;
  };
  assert.equal(pkg.engines.node, `>=${major}`);
  assert.match(pkg.devDependencies['@types/node'] ?? '', new RegExp(`^\\^${major}\\.`));
  assert.equal(nodeTarget, `node${major}`);
});

test('the Dockerfile bundles on the .nvmrc major', async () => {
  const major = await projectMajor();
  const images = [...(await read('Dockerfile')).matchAll(/^FROM\s+(?:--\S+\s+)*(\S+)/gm)].map((m) => m[1]);
  const node = images.filter((image) => /\/node(js)?:/.test(image ?? ''));
  assert.ok(node.length >= 2, `a Node.js bundle stage and a Lambda Node.js base: ${images.join(', ')}`);
  for (const image of node) assert.match(image ?? '', new RegExp(`/node(js)?:${major}(\\D|$)`), image);
});

test('every workflow sets up Node.js from .nvmrc', async () => {
  const dir = join(projectRoot, '.github', 'workflows');
  for (const name of await readdir(dir)) {
    const text = await readFile(join(dir, name), 'utf8');
    const setups = text.split('uses: actions/setup-node@').slice(1);
    for (const setup of setups) {
      const step = setup.split(/\n\s*- /)[0] ?? '';
      assert.match(step, /node-version-file: \.nvmrc/, `${name}: setup-node reads .nvmrc`);
      assert.doesNotMatch(step, /node-version:/, `${name}: no second version beside .nvmrc`);
    }
  }
});

test('Dependabot keeps npm packages, actions and the Dockerfile’s base images current', async () => {
  const text = await read('.github/dependabot.yml');
  for (const ecosystem of ['npm', 'github-actions', 'docker']) {
    assert.match(text, new RegExp(`- package-ecosystem: ${ecosystem}\\n\\s+directory: /\\n`), ecosystem);
  }
});
