import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fillPlaceholders, PolicyFile, readPolicyFile } from './policy-files.ts';

const values = {
  partition: 'aws-cn',
  region: 'cn-north-1',
  accountId: '123456789012',
  app: 'payroll',
  stage: 'prod',
};

test('every placeholder is filled, the partition included; DEPLOYER only when known', () => {
  assert.equal(
    fillPlaceholders(
      'arn:aws:sqs:REGION:ACCOUNT:APP-STAGE-* arn:aws:iam::ACCOUNT:DEPLOYER APPLICATION',
      values,
    ),
    'arn:aws-cn:sqs:cn-north-1:123456789012:payroll-prod-* arn:aws-cn:iam::123456789012:DEPLOYER APPLICATION',
  );
  assert.equal(fillPlaceholders('DEPLOYER', { ...values, deployer: 'role/deploy' }), 'role/deploy');
});

test('each policy file parses with every placeholder filled', () => {
  for (const file of Object.values(PolicyFile)) {
    const text = JSON.stringify(readPolicyFile(file, { ...values, deployer: 'role/deploy' }));
    assert.doesNotMatch(text, /\b(REGION|ACCOUNT|APP|STAGE|DEPLOYER)\b/, file);
    assert.doesNotMatch(text, /arn:aws:/, file);
  }
});

test('the files are found from any working directory, as `npx tsx provision/up.ts` run elsewhere finds them', () => {
  const module = fileURLToPath(new URL('./policy-files.ts', import.meta.url));
  const script = `const { readPolicyFile } = await import(${JSON.stringify(module)}); console.log(readPolicyFile('docs/deployer-policy.json', ${JSON.stringify(values)}).Statement.length);`;
  // the loader by its path: from another directory, `--import tsx` would not resolve
  const tsx = import.meta.resolve('tsx');
  const result = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
    cwd: tmpdir(),
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  assert.ok(Number(result.stdout.trim()) > 10, result.stdout);
});
