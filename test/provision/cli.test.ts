import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { freePort } from '../../lib/net.ts';
import { Action } from '../../lib/reconcile.ts';
import { estimateIdleCost, pricesAsOf } from '../../provision/cost.ts';
import { planDocument, renderChanges, renderCost } from '../../provision/plan.ts';

// The scripts as a user runs them: flags and configuration are checked before
// any AWS call, and bad input exits 2 with a message that says what to do.
function run(script: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const region = { AWS_REGION: 'us-east-1' };

test('both scripts explain themselves with --help', () => {
  const up = run('provision/up.ts', ['--help']);
  assert.equal(up.status, 0);
  assert.match(up.stdout, /--plan, --dry-run/);
  assert.match(up.stdout, /--image-uri URI/);
  const down = run('teardown/down.ts', ['--help']);
  assert.equal(down.status, 0);
  assert.match(down.stdout, /--skip-final-snapshot/);
});

test('an unknown flag or a malformed image reference exits 2 before any AWS call', () => {
  const unknown = run('provision/up.ts', ['--plna'], region);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /Unknown option '--plna'.*see --help/);
  const image = run('provision/up.ts', ['--plan', '--image-uri', 'not an image'], region);
  assert.equal(image.status, 2);
  assert.match(image.stderr, /--image-uri not an image is not an image reference/);
  const snapshots = run('teardown/down.ts', ['--final-snapshot', '--skip-final-snapshot', '--yes'], region);
  assert.equal(snapshots.status, 2);
  assert.match(snapshots.stderr, /contradict/);
});

test('every configuration problem is printed at once and exits 2', () => {
  const result = run('provision/up.ts', ['--plan'], { STAGE: 'Bad!', FUNCTION_MEMORY_MB: '1' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /AWS_REGION is not set/);
  assert.match(result.stderr, /STAGE=Bad!/);
  assert.match(result.stderr, /FUNCTION_MEMORY_MB=1/);
});

test('without a terminal, up and down refuse to act unless --yes is given', () => {
  const up = run('provision/up.ts', [], region);
  assert.equal(up.status, 2);
  assert.match(up.stderr, /pass --yes, or --plan/);
  const down = run('teardown/down.ts', [], region);
  assert.equal(down.status, 2);
  assert.match(down.stderr, /pass --yes/);
});

test('an AWS endpoint that does not answer is named within seconds, and credentials are not blamed', async () => {
  const closed = await freePort();
  const credentials = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'example' };
  for (const [script, args] of [
    ['provision/up.ts', ['--plan']],
    ['teardown/down.ts', ['--yes']],
  ] as const) {
    // what starting the script costs on this machine now (tsx, the SDK's
    // modules), so the bound below is on the give-up alone, whatever the load
    const startupStarted = Date.now();
    assert.equal(run(script, ['--help'], region).status, 0);
    const startup = Date.now() - startupStarted;
    for (const [endpoint, cause] of [
      [`http://127.0.0.1:${closed}`, /ECONNREFUSED/],
      // .invalid never resolves (RFC 2606)
      ['http://aws-endpoint.invalid:4566', /ENOTFOUND|EAI_AGAIN/],
    ] as const) {
      const started = Date.now();
      const result = run(script, [...args], { ...region, ...credentials, AWS_ENDPOINT_URL: endpoint });
      const elapsed = Date.now() - started;
      assert.equal(result.status, 1, `${script} ${endpoint}: ${result.stderr}`);
      const escaped = endpoint.replace(/[.:/]/g, '\\$&');
      assert.match(
        result.stderr,
        new RegExp(
          `^error: cannot identify the AWS caller \\(sts:GetCallerIdentity\\): no answer from ${escaped} for STS GetCallerIdentity`,
        ),
      );
      assert.match(result.stderr, cause);
      assert.match(result.stderr, /credentials and permissions were not checked/);
      assert.match(result.stderr, /AWS_ENDPOINT_URL/);
      assert.doesNotMatch(result.stderr, /check that credentials are configured/);
      // STS gives up after two quick attempts (lib/clients.ts): measured ~2 s
      // with startup, where the SDK's default retries take more than 30 s
      assert.ok(
        elapsed - startup < 10_000,
        `${script}: ${elapsed} ms, of which starting the script ${startup} ms`,
      );
    }
  }
});

test('the plan lists each field old → new and counts the actions', () => {
  const text = renderChanges([
    {
      kind: 'lambda function',
      name: 'f',
      action: Action.update,
      fields: [{ field: 'memorySize', from: 512, to: 1024 }],
    },
    { kind: 'queue', name: 'q', action: Action.unchanged },
    { kind: 'schedule', name: 's', action: Action.create },
  ]);
  assert.match(text, /~ update +lambda function f\n +memorySize: 512 → 1024/);
  assert.match(text, /\+ create +schedule s/);
  assert.match(text, /1 to create, 1 to update, 1 unchanged$/);
  const json = planDocument('plan', [{ kind: 'queue', name: 'q', action: Action.unchanged }]);
  assert.deepEqual(json.summary, { create: 0, update: 0, unchanged: 1, delete: 0, absent: 0 });
});

test('the idle cost estimate is the sum of its lines and says it is an estimate', () => {
  const cost = estimateIdleCost(loadDeployConfig(region));
  const sum = cost.lines.reduce((total, line) => total + (line.monthlyUsd ?? 0), 0);
  assert.equal(cost.totalUsd, Math.round(sum * 100) / 100);
  // two cache.t4g.micro valkey nodes, one db.t4g.micro, 20 GB, the endpoint in two zones
  assert.ok(cost.totalUsd > 50 && cost.totalUsd < 80, String(cost.totalUsd));
  assert.match(renderCost(cost), new RegExp(`estimate, us-east-1 on-demand prices as of ${pricesAsOf}`));
  const unknown = estimateIdleCost(loadDeployConfig({ ...region, DB_INSTANCE_CLASS: 'db.r7g.large' }));
  assert.equal(unknown.lines.find((l) => l.item.includes('db.r7g.large'))?.monthlyUsd, undefined);
});
