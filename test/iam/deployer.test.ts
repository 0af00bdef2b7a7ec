import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertNoFindings, deniedRequests, describeDenial, isAllowed } from '../support/iam/evaluate.ts';
import { deployer } from '../support/iam/principals.ts';
import { registrySkipReason } from '../support/registry.ts';
import { type DeployRecording, deployScope, recordDeployment } from './scenarios/deploy.ts';

// The deploy, ops and teardown workflows as the deployer (scenarios/deploy.ts):
// every request each call is authorized as must be allowed by
// docs/deployer-policy.json, and what AWS then does with the roles up.ts
// created must be allowed by those roles as up.ts wrote them.

describe('the deployer', { skip: registrySkipReason() }, () => {
  let recording: DeployRecording;

  before(async () => {
    recording = await recordDeployment(`dep${process.pid % 1000}`);
  });

  test('every call of up, the ops commands and down maps to IAM', () => {
    assertNoFindings(recording.unmapped, 'calls that do not map to IAM');
    assert.ok(recording.caller.length > 0);
  });

  test('docs/deployer-policy.json allows every request of up, the ops commands and down', async () => {
    const denied = await deniedRequests(deployer(deployScope), recording.caller);
    assertNoFindings(denied.map(describeDenial), 'requests the deployer policy denies');
  });

  test('what AWS does with the roles up.ts creates is allowed by the roles as written', async () => {
    // the Lambda service attaching and logging the function, the mapping polling the queue, the schedule invoking
    assert.deepEqual([...recording.byRole.keys()].sort(), [...recording.roles.keys()].sort());
    for (const [arn, requests] of recording.byRole) {
      const role = recording.roles.get(arn);
      assert.ok(role, `${arn} was created by up`);
      const denied = await deniedRequests(role, requests);
      assertNoFindings(denied.map(describeDenial), `requests ${role.name} denies`);
    }
  });

  test('the deployer may map the queue only to the stack’s functions, and pass its roles only to Lambda and Scheduler', async () => {
    const principal = deployer(deployScope);
    const { region, accountId } = deployScope;
    const functionArn = (name: string) => `arn:aws:lambda:${region}:${accountId}:function:${name}`;
    const mapping = (name: string) =>
      isAllowed(principal, 'lambda:CreateEventSourceMapping', '*', {
        'lambda:FunctionArn': functionArn(name),
      });
    assert.equal(await mapping('ada-linecount-dev-count'), true);
    assert.equal(await mapping('payroll'), false);
    const role = `arn:aws:iam::${accountId}:role/ada-linecount-dev-function`;
    const pass = (service: string) =>
      isAllowed(principal, 'iam:PassRole', role, { 'iam:PassedToService': service });
    assert.equal(await pass('lambda.amazonaws.com'), true);
    assert.equal(await pass('ec2.amazonaws.com'), false);
  });

  test('the deployer may invoke the stack’s migration function, and no other function', async () => {
    const principal = deployer(deployScope);
    const { region, accountId } = deployScope;
    const invoke = (name: string) =>
      isAllowed(principal, 'lambda:InvokeFunction', `arn:aws:lambda:${region}:${accountId}:function:${name}`);
    assert.equal(await invoke('ada-linecount-dev-migrate'), true);
    assert.equal(await invoke('ada-linecount-dev-count'), false);
    assert.equal(await invoke('ada-linecount-dev-flush'), false);
    assert.equal(await invoke('payroll-migrate'), false);
  });
});
