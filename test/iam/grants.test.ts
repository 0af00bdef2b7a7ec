import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { desiredGeneratorRole, roleArn } from '../../provision/resources/role.ts';
import {
  assertNoFindings,
  boundaryGrantUses,
  describeGrant,
  type GrantUse,
  grantUses,
  type Principal,
  type Request,
} from '../support/iam/evaluate.ts';
import { boundaryDocument, deployer, generator, operator, stackScope } from '../support/iam/principals.ts';
import { createMigrationTarget, type TestMigrationTarget } from '../support/migration.ts';
import { registrySkipReason } from '../support/registry.ts';
import { deployScope, githubRepository, recordDeployment } from './scenarios/deploy.ts';
import { recordFunctionCalls } from './scenarios/function.ts';
import { recordGeneratorCalls } from './scenarios/generator.ts';
import { recordMigrationCalls } from './scenarios/migration.ts';

// The other direction: every grant of each policy must be needed by a
// recorded request. All scenarios run here, on one stage, so that one policy's
// requests come together wherever they were made (the function role serves the
// function's own calls and what Lambda does with it, the migration role the
// migration's). A grant is one action of a statement on one of its resources;
// for each, the policy is decided again without it, and some request must then
// be denied. A grant no request needs is a least-privilege finding. The
// permissions boundary is held to the same rule over the requests of every
// role that carries it.

const scope = deployScope;
const stage = `grt${process.pid % 1000}`;
const stack = stackScope(scope, stage);
const config = loadDeployConfig({ AWS_REGION: scope.region, STAGE: stage });
const names = stackNames(config.stack, scope);

interface Policy {
  principal: Principal;
  requests: Request[];
}

describe('the grants of every policy', { skip: registrySkipReason() }, () => {
  const policies: Policy[] = [];
  const uses = new Map<Principal, GrantUse[]>();
  let boundaryUses: GrantUse[] = [];
  let generatorRole: Principal | undefined;
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

    policies.push({ principal: deployer(stack), requests: deployment.caller });
    policies.push({ principal: operator(stack), requests: deployment.operator });
    policies.push({ principal: generator(stack), requests: generated.requests });
    const functionRole = deployment.roles.get(roleArn({ identity: scope }, names.role));
    const migrationRole = deployment.roles.get(roleArn({ identity: scope }, names.migrateRole));
    const schedulerRole = deployment.roles.get(roleArn({ identity: scope }, names.schedulerRole));
    generatorRole = deployment.roles.get(roleArn({ identity: scope }, names.generatorRole));
    assert.ok(functionRole && migrationRole && schedulerRole && generatorRole, 'up created the four roles');
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
    // every role that carries the boundary, with what it requests
    boundaryUses = await boundaryGrantUses(
      'boundary-policy',
      boundaryDocument(stack),
      policies.filter((p) => p.principal.boundary !== undefined),
    );
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

  test('every grant of the permissions boundary is needed by a role that carries it', () => {
    assert.ok(boundaryUses.length > 0);
    const unneeded = boundaryUses
      .filter((use) => use.needs === undefined)
      .map((use) => `${describeGrant(use.grant)} — no role's recorded request fails without it`);
    assertNoFindings(unneeded, 'boundary grants no role needs');
  });

  test('the generator role up.ts creates is docs/generator-policy.json, the policy generate.yml’s role is decided by', () => {
    assert.ok(generatorRole);
    const desired = desiredGeneratorRole(
      { identity: scope, names, config },
      { providerArn: 'unused', repository: githubRepository },
    );
    assert.deepEqual(
      generatorRole.policies.map((p) => p.document),
      [desired.policy],
    );
    assert.deepEqual(
      generator(stack).policies.map((p) => p.document),
      [desired.policy],
    );
  });
});
