import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { loadStackConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { roleArn } from '../../provision/resources/role.ts';
import {
  assertNoFindings,
  describeGrant,
  type GrantUse,
  grantUses,
  type Principal,
  type Request,
} from '../support/iam/evaluate.ts';
import { deployer, generator } from '../support/iam/principals.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import { registrySkipReason } from '../support/registry.ts';
import { deployScope, recordDeployment } from './scenarios/deploy.ts';
import { recordFunctionCalls } from './scenarios/function.ts';
import { recordGeneratorCalls } from './scenarios/generator.ts';
import { recordMigrationCalls } from './scenarios/migration.ts';

// The other direction: every action each policy grants must be needed by a
// recorded request. All scenarios run here, on one stage, so that one policy's
// requests come together wherever they were made (the function role serves the
// function's own calls and what Lambda does with it, the migration role the
// migration's; the deploy role serves up, down, the ops commands and the
// scheduled generator). For each grant the
// policy is decided again without it: some request must then be denied, and
// the test that decides that request fails naming the action. A grant no
// request needs is a least-privilege finding.

const scope = deployScope;
const stage = `grt${process.pid % 1000}`;
const names = stackNames(loadStackConfig({ STAGE: stage }), scope);

interface Policy {
  principal: Principal;
  requests: Request[];
}

describe('the grants of every policy', { skip: registrySkipReason() }, () => {
  const policies: Policy[] = [];
  const uses = new Map<Principal, GrantUse[]>();
  let database: TestMigrationTarget | undefined;

  after(async () => {
    await database?.drop();
  });

  before(async () => {
    const deployment = await recordDeployment(stage);
    const { cacheAuthSecretArn, dbSecretArn } = deployment.outputs;
    assert.ok(cacheAuthSecretArn && dbSecretArn, 'up wrote both secret ARNs to its outputs');
    assert.ok(deployment.dbResourceId, 'up created the database instance');
    database = await createMigrationTarget(`grt_${stage}`);
    const migration = await recordMigrationCalls({
      scope,
      stage,
      masterSecretArn: dbSecretArn,
      target: database,
    });
    const fn = await recordFunctionCalls({
      scope,
      stage,
      cacheSecretArn: cacheAuthSecretArn,
      database: { target: database, resourceId: deployment.dbResourceId },
    });
    const generated = await recordGeneratorCalls(scope, stage);
    assertNoFindings(
      [...deployment.unmapped, ...migration.unmapped, ...fn.unmapped, ...generated.unmapped],
      'calls that do not map to IAM',
    );

    const deploy = deployer(scope);
    const schedule = generator(scope);
    // the generator's role is the deploy role today: one policy, one set of requests
    if (isDeepStrictEqual(schedule.policies, deploy.policies)) {
      policies.push({ principal: deploy, requests: [...deployment.caller, ...generated.requests] });
    } else {
      policies.push({ principal: deploy, requests: deployment.caller });
      policies.push({ principal: schedule, requests: generated.requests });
    }
    const functionRole = deployment.roles.get(roleArn({ identity: scope }, names.role));
    const migrationRole = deployment.roles.get(roleArn({ identity: scope }, names.migrateRole));
    const schedulerRole = deployment.roles.get(roleArn({ identity: scope }, names.schedulerRole));
    assert.ok(functionRole && migrationRole && schedulerRole, 'up created the three roles');
    policies.push({
      principal: functionRole,
      requests: [...(deployment.byRole.get(functionRole.arn) ?? []), ...fn.requests],
    });
    policies.push({
      principal: migrationRole,
      requests: [...(deployment.byRole.get(migrationRole.arn) ?? []), ...migration.requests],
    });
    policies.push({ principal: schedulerRole, requests: deployment.byRole.get(schedulerRole.arn) ?? [] });
    for (const policy of policies)
      uses.set(policy.principal, await grantUses(policy.principal, policy.requests));
  });

  test('every principal made requests', () => {
    for (const policy of policies)
      assert.ok(policy.requests.length > 0, `${policy.principal.name} made none`);
  });

  test('every grant is needed: without it, a recorded request is denied', () => {
    const unneeded = [...uses].flatMap(([principal, list]) =>
      list
        .filter((use) => use.needs === undefined)
        .map(
          (use) => `${principal.name}: ${describeGrant(use.grant)} — no recorded request fails without it`,
        ),
    );
    assertNoFindings(unneeded, 'grants no recorded request needs (least-privilege findings)');
  });

  test('the deploy role’s upload grants are what the scheduled generator needs', () => {
    const deploy = [...uses].find(([principal]) => principal.name === deployer(scope).name)?.[1] ?? [];
    const upload = deploy.filter((use) => use.grant.statement === 'GenerateUploads');
    assert.deepEqual(
      upload.map((use) => [use.grant.action, use.needs?.call.split(':')[0]]),
      [
        ['s3:PutObject', 's3'],
        ['s3:AbortMultipartUpload', 's3'],
      ],
    );
  });
});
