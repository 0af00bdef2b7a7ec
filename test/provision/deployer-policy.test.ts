import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { deployerPolicy } from '../support/moto.ts';

// The documented deployer policy, evaluated by an IAM policy evaluator
// (@cloud-copilot/iam-simulate with the Service Authorization Reference data)
// for calls moto cannot judge: moto authorizes every Lambda request against
// "*", whatever ARN the request names.

const account = '123456789012';
const region = 'us-east-1';

async function decision(action: string, resource: string): Promise<string> {
  const policy = await deployerPolicy(region, account);
  const response = await runSimulation(
    {
      identityPolicies: [{ name: 'deployer', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action,
        principal: `arn:aws:iam::${account}:user/deployer`,
        resource: { accountId: account, resource },
        contextVariables: {},
      },
    },
    {},
  );
  if (response.resultType === 'error') assert.fail(JSON.stringify(response.errors));
  return response.overallResult;
}

// Lambda authorizes ListTags and TagResource on the ARN they name, and an event
// source mapping's ARN is arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID
// (Service Authorization Reference, AWS Lambda: resource type eventSourceMapping;
// Lambda developer guide, "Using tags on event source mappings"). up reads the
// mapping's tags on every run after the first, and adds any that are missing.
test('the deployer may read and add the tags of the event source mapping, by its own ARN', async () => {
  const mapping = `arn:aws:lambda:${region}:${account}:event-source-mapping:0f2d5c3e-5b8a-4a43-9d54-5b6cf1f7f0aa`;
  assert.equal(await decision('lambda:ListTags', mapping), 'Allowed');
  assert.equal(await decision('lambda:TagResource', mapping), 'Allowed');
  // and still no other function's
  assert.notEqual(
    await decision('lambda:ListTags', `arn:aws:lambda:${region}:${account}:function:someone-else`),
    'Allowed',
  );
});
