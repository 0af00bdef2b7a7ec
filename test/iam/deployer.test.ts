import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertNoFindings, deniedRequests, describeDenial, isAllowed } from '../support/iam/evaluate.ts';
import { boundaryDocument, deployer, operator, stackScope } from '../support/iam/principals.ts';
import { registrySkipReason } from '../support/registry.ts';
import { type DeployRecording, deployScope, recordDeployment } from './scenarios/deploy.ts';

// The deploy, ops and teardown workflows (scenarios/deploy.ts): every request
// of up, --plan and down must be allowed by docs/deployer-policy.json, every
// request of the ops commands by docs/operator-policy.json, and what AWS then
// does with the roles up.ts created must be allowed by those roles as up.ts
// wrote them, within the permissions boundary they carry.

const stage = `dep${process.pid % 1000}`;
const stack = stackScope(deployScope, stage);

describe('the deployer', { skip: registrySkipReason() }, () => {
  let recording: DeployRecording;

  before(async () => {
    recording = await recordDeployment(stage);
  });

  test('every call of up, the ops commands and down maps to IAM', () => {
    assertNoFindings(recording.unmapped, 'calls that do not map to IAM');
    assert.ok(recording.caller.length > 0);
    assert.ok(recording.operator.length > 0);
  });

  test('docs/deployer-policy.json allows every request of up, --plan and down', async () => {
    const denied = await deniedRequests(deployer(stack), recording.caller);
    assertNoFindings(denied.map(describeDenial), 'requests the deployer policy denies');
  });

  test('docs/operator-policy.json allows every request of the ops commands', async () => {
    const denied = await deniedRequests(operator(stack), recording.operator);
    assertNoFindings(denied.map(describeDenial), 'requests the operator policy denies');
  });

  test('up and down read no secret value but the cache token, which up needs to build the cache again', async () => {
    const reads = recording.caller
      .filter((r) => r.authorization.action === 'secretsmanager:GetSecretValue')
      .map((r) => r.authorization.resource);
    assert.ok(reads.length > 0);
    for (const resource of reads)
      assert.match(resource, new RegExp(`:secret:ada-linecount-${stage}/cache-auth-`));
    const operatorReads = recording.operator
      .filter((r) => r.authorization.action === 'secretsmanager:GetSecretValue')
      .map((r) => r.authorization.resource.replace(/.*:secret:/, '').replace(/-[^-]+$/, ''));
    assert.deepEqual([...new Set(operatorReads)].sort(), [
      `ada-linecount-${stage}/cache-auth`,
      `rds!db-ada-linecount-${stage}-db`,
    ]);
  });

  test('every role up.ts creates carries the permissions boundary, and AWS’s use of them is allowed', async () => {
    // the Lambda service attaching and logging the function, the mapping polling the queue, the schedule invoking
    const boundary = boundaryDocument(stack);
    assert.deepEqual(
      [...recording.roles.values()].map((r) => r.name).sort(),
      [`function`, `generator`, `migrate`, `scheduler`].map(
        (n) => `the role ada-linecount-${stage}-${n} (as up.ts wrote it)`,
      ),
    );
    for (const role of recording.roles.values()) assert.deepEqual(role.boundary, boundary, role.name);
    for (const arn of recording.byRole.keys())
      assert.ok(recording.roles.has(arn), `${arn} was created by up`);
    for (const [arn, requests] of recording.byRole) {
      const role = recording.roles.get(arn);
      assert.ok(role);
      const denied = await deniedRequests(role, requests);
      assertNoFindings(denied.map(describeDenial), `requests ${role.name} denies`);
    }
  });

  test('the deployer may map the queue only to the stack’s functions, and pass each role only to its service', async () => {
    const principal = deployer(stack);
    const { region, accountId } = deployScope;
    const functionArn = (name: string) => `arn:aws:lambda:${region}:${accountId}:function:${name}`;
    const mapping = (name: string) =>
      isAllowed(principal, 'lambda:CreateEventSourceMapping', '*', {
        'lambda:FunctionArn': functionArn(name),
      });
    assert.equal(await mapping(`ada-linecount-${stage}-count`), true);
    assert.equal(await mapping('payroll'), false);
    assert.equal(await mapping('ada-linecount-prod-count'), false);
    const role = (name: string) => `arn:aws:iam::${accountId}:role/ada-linecount-${stage}-${name}`;
    const pass = (name: string, service: string) =>
      isAllowed(principal, 'iam:PassRole', role(name), { 'iam:PassedToService': service });
    assert.equal(await pass('function', 'lambda.amazonaws.com'), true);
    assert.equal(await pass('migrate', 'lambda.amazonaws.com'), true);
    assert.equal(await pass('scheduler', 'scheduler.amazonaws.com'), true);
    assert.equal(await pass('function', 'ec2.amazonaws.com'), false);
    assert.equal(await pass('migrate', 'scheduler.amazonaws.com'), false);
    assert.equal(await pass('function', 'scheduler.amazonaws.com'), false);
    assert.equal(await pass('scheduler', 'lambda.amazonaws.com'), false);
    assert.equal(await pass('generator', 'lambda.amazonaws.com'), false);
  });

  test('the deployer may invoke the stack’s migration function, and no other function', async () => {
    const principal = deployer(stack);
    const { region, accountId } = deployScope;
    const invoke = (name: string) =>
      isAllowed(principal, 'lambda:InvokeFunction', `arn:aws:lambda:${region}:${accountId}:function:${name}`);
    assert.equal(await invoke(`ada-linecount-${stage}-migrate`), true);
    assert.equal(await invoke(`ada-linecount-${stage}-count`), false);
    assert.equal(await invoke(`ada-linecount-${stage}-flush`), false);
    assert.equal(await invoke('ada-linecount-prod-migrate'), false);
    assert.equal(await invoke('payroll-migrate'), false);
  });
});
