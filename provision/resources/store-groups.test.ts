import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Action } from '../../lib/reconcile.ts';
import { callNames, mutatingCalls, observeCalls, resetCalls } from '../../test/fakes/calls.ts';
import { installElastiCacheFake } from '../../test/fakes/elasticache.ts';
import { installRdsFake } from '../../test/fakes/rds.ts';
import { rejectsWithout, rerun, storeContext, useFakes } from '../../test/support/stores.ts';
import {
  cacheParameterGroups,
  dbParameterGroups,
  type ParameterGroupSpec,
  parameterDrift,
} from './parameter-group.ts';
import { cacheSubnetGroups, dbSubnetGroups, subnetGroupDrift } from './subnet-group.ts';

test('subnet group drift ignores order and reports a changed set', () => {
  assert.deepEqual(subnetGroupDrift(['a', 'b'], ['b', 'a']), []);
  assert.deepEqual(subnetGroupDrift(['a', 'b'], ['a']), [
    { field: 'SubnetIds', from: ['a'], to: ['a', 'b'] },
  ]);
});

test('parameter drift reports a parameter that is unset or different, and ignores others', () => {
  const want = { 'maxmemory-policy': 'noeviction' };
  assert.deepEqual(parameterDrift(want, { 'maxmemory-policy': 'noeviction', timeout: '5' }), []);
  assert.deepEqual(parameterDrift(want, {}), [
    { field: 'maxmemory-policy', from: undefined, to: 'noeviction' },
  ]);
  assert.deepEqual(parameterDrift({ 'rds.force_ssl': '1' }, { 'rds.force_ssl': '0' }), [
    { field: 'rds.force_ssl', from: '0', to: '1' },
  ]);
});

// The same behaviour from one implementation, over each service's fake.
const services = [
  {
    service: 'elasticache',
    prefix: 'Cache',
    install: () => installElastiCacheFake(),
    subnets: cacheSubnetGroups,
    parameters: cacheParameterGroups,
    family: 'valkey8',
    parameter: ['maxmemory-policy', 'noeviction'],
  },
  {
    service: 'rds',
    prefix: 'DB',
    install: () => installRdsFake(),
    subnets: dbSubnetGroups,
    parameters: dbParameterGroups,
    family: 'postgres17',
    parameter: ['rds.force_ssl', '1'],
  },
] as const;

for (const s of services) {
  describe(`${s.service} subnet and parameter groups`, () => {
    const fake = s.install();
    useFakes(fake);
    const subnetGroup = `ada-linecount-test-${s.service}`;
    const parameterGroup = `ada-linecount-test-${s.service}-params`;
    const [parameterName, parameterValue] = s.parameter;
    const spec: ParameterGroupSpec = {
      name: parameterGroup,
      family: s.family,
      description: 'test',
      parameters: { [parameterName]: parameterValue },
      tags: { 'managed-by': 'ada-linecount' },
      familyReason: `this needs ${s.family}`,
      remedy: 'tear it down first',
    };

    test('a subnet group is created once; a changed subnet set is its only update', async () => {
      const first = storeContext();
      await s.subnets.ensure(first, subnetGroup, ['subnet-a', 'subnet-b']);
      assert.deepEqual(callNames(mutatingCalls()), [`${s.service}:Create${s.prefix}SubnetGroup`]);
      assert.deepEqual(fake.state.subnetGroups.get(subnetGroup)?.subnetIds, ['subnet-a', 'subnet-b']);

      resetCalls();
      await s.subnets.ensure(storeContext(), subnetGroup, ['subnet-b', 'subnet-a']);
      assert.deepEqual(mutatingCalls(), []);

      const plan = storeContext({}, 'plan');
      await s.subnets.ensure(plan, subnetGroup, ['subnet-a', 'subnet-c']);
      assert.deepEqual(mutatingCalls(), []);
      const apply = storeContext();
      await s.subnets.ensure(apply, subnetGroup, ['subnet-a', 'subnet-c']);
      assert.deepEqual(apply.changes, plan.changes);
      assert.equal(apply.changes[0]?.action, Action.update);
      assert.deepEqual(callNames(mutatingCalls()), [`${s.service}:Modify${s.prefix}SubnetGroup`]);
      assert.deepEqual(fake.state.subnetGroups.get(subnetGroup)?.subnetIds, ['subnet-a', 'subnet-c']);
    });

    test('a parameter group is created with its parameters; one changed out of band is set back', async () => {
      await s.parameters.ensure(storeContext(), spec);
      assert.deepEqual(callNames(mutatingCalls()), [
        `${s.service}:Create${s.prefix}ParameterGroup`,
        `${s.service}:Modify${s.prefix}ParameterGroup`,
      ]);
      const group = fake.state.parameterGroups.get(parameterGroup);
      assert.deepEqual(group, {
        family: s.family,
        parameters: spec.parameters,
        tags: [{ Key: 'managed-by', Value: 'ada-linecount' }],
      });

      resetCalls();
      await s.parameters.ensure(storeContext(), spec);
      assert.deepEqual(mutatingCalls(), []);

      if (group) group.parameters[parameterName] = 'changed';
      const ctx = storeContext();
      await s.parameters.ensure(ctx, spec);
      assert.deepEqual(ctx.changes[0]?.fields, [
        { field: parameterName, from: 'changed', to: parameterValue },
      ]);
      assert.deepEqual(callNames(mutatingCalls()), [`${s.service}:Modify${s.prefix}ParameterGroup`]);
      assert.equal(group?.parameters[parameterName], parameterValue);
    });

    test('a group of another family is a usage error that names the group, the families and the remedy', async () => {
      await assert.rejects(
        s.parameters.ensure(storeContext({}, 'plan'), { ...spec, family: 'other9' }),
        new RegExp(
          `^UsageError: .* ${parameterGroup} has family ${s.family}, this needs ${s.family}: tear it down first$`,
        ),
      );
    });

    test('a group another run created meanwhile is found and converged', async () => {
      await s.subnets.delete(storeContext(), subnetGroup);
      // the other run's group appears between our read and our create
      const stop = observeCalls({
        called(call) {
          if (call.command === `Create${s.prefix}SubnetGroup`) {
            fake.state.subnetGroups.set(subnetGroup, { subnetIds: ['subnet-x', 'subnet-y'], tags: [] });
          }
        },
      });
      resetCalls();
      const ctx = storeContext();
      try {
        await s.subnets.ensure(ctx, subnetGroup, ['subnet-a', 'subnet-b']);
      } finally {
        stop();
      }
      assert.deepEqual(callNames(mutatingCalls()), [
        `${s.service}:Create${s.prefix}SubnetGroup`,
        `${s.service}:Modify${s.prefix}SubnetGroup`,
      ]);
      assert.deepEqual(fake.state.subnetGroups.get(subnetGroup)?.subnetIds, ['subnet-a', 'subnet-b']);
      assert.equal(ctx.changes.length, 1);
      assert.equal(ctx.changes[0]?.action, Action.create);
    });

    test('a refused create or delete says what failed and the permission to check', async () => {
      await s.subnets.delete(storeContext(), subnetGroup);
      const create = `${s.service}:Create${s.prefix}SubnetGroup`;
      await rejectsWithout(
        create,
        () => s.subnets.ensure(storeContext(), subnetGroup, ['subnet-a', 'subnet-b']),
        new RegExp(
          `^cannot create ${s.subnets.kind} ${subnetGroup}: AccessDenied: .*\\(check ${create} permission\\)$`,
        ),
      );
      const remove = `${s.service}:Delete${s.prefix}ParameterGroup`;
      await rejectsWithout(
        remove,
        () => s.parameters.delete(storeContext(), parameterGroup),
        new RegExp(
          `^cannot delete ${s.parameters.kind} ${parameterGroup}: AccessDenied: .*\\(check ${remove} permission\\)$`,
        ),
      );
    });

    test('delete removes both groups; a second delete is a no-op', async () => {
      await s.subnets.ensure(storeContext(), subnetGroup, ['subnet-a', 'subnet-b']);
      const ctx = storeContext();
      await s.parameters.delete(ctx, parameterGroup);
      await s.subnets.delete(ctx, subnetGroup);
      assert.equal(fake.state.parameterGroups.size, 0);
      assert.equal(fake.state.subnetGroups.size, 0);
      assert.ok(ctx.changes.every((c) => c.action === Action.delete));

      await rerun(Action.absent, async (again) => {
        await s.parameters.delete(again, parameterGroup);
        await s.subnets.delete(again, subnetGroup);
      });
    });
  });
}
