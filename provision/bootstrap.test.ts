import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

// The account's first step, as an administrator runs it: flags are checked
// before any AWS call.
function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'provision/bootstrap.ts', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_REGION: 'us-east-1', ...env },
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('bootstrap explains itself, and refuses to change IAM off a terminal without --yes', () => {
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /permissions boundary/);
  assert.match(help.stdout, /--print-policy NAME/);
  const unattended = run([]);
  assert.equal(unattended.status, 2);
  assert.match(unattended.stderr, /pass --yes, or --plan/);
});

test('bootstrap names the policies it can print, and a bad configuration exits 2', () => {
  const unknown = run(['--print-policy', 'admin']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--print-policy admin: give one of deployer, operator, boundary, generator/);
  const bad = run(['--plan'], { PERMISSIONS_BOUNDARY: 'not a policy!' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /PERMISSIONS_BOUNDARY=not a policy! must be a managed policy's name/);
});
