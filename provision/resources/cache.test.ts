import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../lib/errors.ts';
import { Action } from '../../lib/reconcile.ts';
import { callLog, callNames, mutatingCalls } from '../../test/fakes/calls.ts';
import { installElastiCacheFake } from '../../test/fakes/elasticache.ts';
import { installSecretsManagerFake } from '../../test/fakes/secrets-manager.ts';
import {
  planThenCreate,
  planThenUpdate,
  rejectsWithout,
  rerun,
  storeContext,
  testDrift,
  useFakes,
  fastWaits as waits,
} from '../../test/support/stores.ts';
import { deleteCache, desiredReplicationGroup, ensureCache, replicationGroupDrift } from './cache.ts';
import { authTokenLength, generateAuthToken } from './cache-secret.ts';

const inputs = { subnetIds: ['subnet-a', 'subnet-b'], securityGroupId: 'sg-cache' };

describe('cache drift functions and the AUTH token', () => {
  const desired = desiredReplicationGroup(storeContext(), inputs, { arn: 'arn' });
  const actual = {
    status: 'available',
    nodeType: 'cache.t4g.micro',
    parameterGroup: desired.parameterGroup,
    securityGroupIds: ['sg-cache'],
    host: 'h',
    port: 6379,
    atRestEncryption: true,
    transitEncryption: true,
    authTokenEnabled: true,
  };
  testDrift('replicationGroupDrift', replicationGroupDrift, desired, actual, [
    { name: 'in sync', change: {}, fields: [] },
    { name: 'node type', change: { nodeType: 'cache.t4g.small' }, fields: ['CacheNodeType'] },
    {
      name: 'parameter group',
      change: { parameterGroup: 'default.valkey8' },
      fields: ['CacheParameterGroupName'],
    },
    {
      name: 'security groups',
      change: { securityGroupIds: ['sg-cache', 'sg-other'] },
      fields: ['SecurityGroupIds'],
    },
  ]);

  test('AUTH tokens are long, use only allowed characters, and differ every time', () => {
    const tokens = new Set(Array.from({ length: 50 }, () => generateAuthToken()));
    assert.equal(tokens.size, 50);
    for (const token of tokens) assert.match(token, new RegExp(`^[A-Za-z0-9]{${authTokenLength}}$`));
    assert.ok(authTokenLength >= 32);
  });
});

describe('ensureCache and deleteCache against the ElastiCache and Secrets Manager fakes', () => {
  const elasticache = installElastiCacheFake({ transitionAfter: 2 });
  const secrets = installSecretsManagerFake();
  useFakes(elasticache, secrets);

  test('plan mode makes no mutating call; the real run then creates what the plan listed', async () => {
    const { planned, apply, out } = await planThenCreate((ctx) => ensureCache(ctx, inputs, { waits }));
    assert.match(planned.host, /known after apply/);
    assert.match(out.host, /^master\.ada-linecount-test-cache\./);
    assert.equal(out.port, 6379);
    assert.match(out.authSecretArn, /^arn:aws:secretsmanager:.*:secret:ada-linecount-test\/cache-auth-/);
    assert.ok(
      apply.log.lines.some((l) =>
        /waiting for ElastiCache replication group ada-linecount-test-cache/.test(l),
      ),
    );
  });

  test('the replication group is encrypted, Multi-AZ, noeviction, and its token is the secret value, never logged', () => {
    const group = elasticache.state.replicationGroups.get('ada-linecount-test-cache');
    assert.ok(group);
    assert.equal(group.input.Engine, 'valkey');
    assert.equal(group.input.CacheNodeType, 'cache.t4g.micro');
    assert.equal(group.input.NumCacheClusters, 2);
    assert.equal(group.input.MultiAZEnabled, true);
    assert.equal(group.input.AutomaticFailoverEnabled, true);
    assert.equal(group.input.AtRestEncryptionEnabled, true);
    assert.equal(group.input.TransitEncryptionEnabled, true);
    assert.deepEqual(group.securityGroupIds, ['sg-cache']);
    assert.deepEqual(elasticache.state.parameterGroups.get(group.parameterGroup)?.parameters, {
      'maxmemory-policy': 'noeviction',
    });
    assert.equal(elasticache.state.parameterGroups.get(group.parameterGroup)?.family, 'valkey8');
    const [secret] = [...secrets.state.secrets.values()];
    assert.equal(group.authToken, secret?.SecretString);
    assert.deepEqual(
      secret?.Tags.find((t) => t.Key === 'managed-by'),
      { Key: 'managed-by', Value: 'ada-linecount' },
    );
  });

  test('a second run makes zero mutating calls, reuses the secret, and reports everything unchanged', async () => {
    const before = [...secrets.state.secrets.values()][0]?.SecretString;
    await rerun(Action.unchanged, (ctx) => ensureCache(ctx, inputs, { waits }));
    assert.equal([...secrets.state.secrets.values()][0]?.SecretString, before);
  });

  test('a new node type is applied with ModifyReplicationGroup only; plan reports the same change', async () => {
    await planThenUpdate(
      (ctx) => ensureCache(ctx, inputs, { waits }),
      { CACHE_NODE_TYPE: 'cache.t4g.small' },
      {
        change: {
          kind: 'cache-replication-group',
          name: 'ada-linecount-test-cache',
          action: Action.update,
          fields: [{ field: 'CacheNodeType', from: 'cache.t4g.micro', to: 'cache.t4g.small' }],
        },
        call: 'elasticache:ModifyReplicationGroup',
        input: {
          ReplicationGroupId: 'ada-linecount-test-cache',
          ApplyImmediately: true,
          CacheNodeType: 'cache.t4g.small',
        },
      },
    );
    assert.equal(elasticache.state.replicationGroups.get('ada-linecount-test-cache')?.status, 'available');
  });

  test('an eviction policy changed out of band is set back to noeviction', async () => {
    const group = elasticache.state.parameterGroups.get('ada-linecount-test-cache-noeviction');
    if (group) group.parameters['maxmemory-policy'] = 'allkeys-lru';
    await ensureCache(storeContext({ CACHE_NODE_TYPE: 'cache.t4g.small' }), inputs, { waits });
    assert.deepEqual(callNames(mutatingCalls()), ['elasticache:ModifyCacheParameterGroup']);
    assert.equal(group?.parameters['maxmemory-policy'], 'noeviction');
  });

  test('a read ElastiCache refuses stops the run with the step and the permission to check', async () => {
    const reads = [
      [
        'elasticache:DescribeCacheSubnetGroups',
        /cannot read cache subnet group ada-linecount-test-cache: AccessDenied: .*\(check elasticache:DescribeCacheSubnetGroups permission\)$/,
      ],
      [
        'elasticache:DescribeCacheParameters',
        /cannot read cache parameter group ada-linecount-test-cache-noeviction: AccessDenied: .*\(check elasticache:DescribeCacheParameterGroups and elasticache:DescribeCacheParameters permissions\)$/,
      ],
      [
        'elasticache:DescribeReplicationGroups',
        /cannot read replication group ada-linecount-test-cache: AccessDenied: .*\(check elasticache:DescribeReplicationGroups permission\)$/,
      ],
      [
        'elasticache:DescribeCacheClusters',
        /cannot read cache cluster ada-linecount-test-cache-001 of replication group ada-linecount-test-cache: AccessDenied: .*\(check elasticache:DescribeCacheClusters permission\)$/,
      ],
      [
        'secretsmanager:DescribeSecret',
        /cannot read secret ada-linecount-test\/cache-auth: AccessDeniedException: .*\(check secretsmanager:DescribeSecret permission\)$/,
      ],
    ] as const;
    for (const [action, message] of reads) {
      await rejectsWithout(
        action,
        () => ensureCache(storeContext({ CACHE_NODE_TYPE: 'cache.t4g.small' }), inputs, { waits }),
        message,
      );
    }
  });

  test('CACHE_ENGINE=redis over the valkey8 parameter group is refused with what to do, in plan mode too', async () => {
    for (const mode of ['plan', 'apply'] as const) {
      const ctx = storeContext({ CACHE_ENGINE: 'redis', CACHE_NODE_TYPE: 'cache.t4g.small' }, mode);
      await assert.rejects(ensureCache(ctx, inputs, { waits }), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.equal(
          error.message,
          'cache parameter group ada-linecount-test-cache-noeviction has family valkey8, CACHE_ENGINE=redis needs redis7: set CACHE_ENGINE back, or tear the cache down first (teardown/down.ts)',
        );
        return true;
      });
    }
    assert.deepEqual(mutatingCalls(), []);
  });

  test('a secret lost while the group exists is created again and its new token set on the group', async () => {
    secrets.state.secrets.clear();
    const ctx = storeContext({ CACHE_NODE_TYPE: 'cache.t4g.small' });
    await ensureCache(ctx, inputs, { waits });
    assert.deepEqual(callNames(mutatingCalls()), [
      'secretsmanager:CreateSecret',
      'elasticache:ModifyReplicationGroup',
    ]);
    assert.deepEqual(
      ctx.changes.filter((c) => c.action !== Action.unchanged),
      [
        { kind: 'secret', name: 'ada-linecount-test/cache-auth', action: Action.create },
        {
          kind: 'cache-replication-group',
          name: 'ada-linecount-test-cache',
          action: Action.update,
          fields: [{ field: 'AuthToken', from: '(lost)', to: '(new, in the secret)' }],
        },
      ],
    );
    const [secret] = [...secrets.state.secrets.values()];
    assert.equal(
      elasticache.state.replicationGroups.get('ada-linecount-test-cache')?.authToken,
      secret?.SecretString,
    );
    assert.equal(
      (mutatingCalls()[1]?.input as { AuthTokenUpdateStrategy?: string }).AuthTokenUpdateStrategy,
      'SET',
    );
    assert.ok(
      ctx.log.lines.every((line) => !line.includes(secret?.SecretString ?? '')),
      'the token is never logged',
    );
  });

  test('delete removes the group, both groups and schedules the secret; a second delete is a no-op', async () => {
    const ctx = storeContext();
    await deleteCache(ctx, { waits });
    assert.equal(elasticache.state.replicationGroups.size, 0);
    assert.equal(elasticache.state.parameterGroups.size, 0);
    assert.equal(elasticache.state.subnetGroups.size, 0);
    const [secret] = [...secrets.state.secrets.values()];
    assert.ok(secret?.DeletedDate, 'the secret waits out its recovery window');
    const deleteSecret = callLog.find((c) => c.command === 'DeleteSecret');
    assert.equal((deleteSecret?.input as { RecoveryWindowInDays?: number }).RecoveryWindowInDays, 7);

    await rerun(Action.absent, (ctx) => deleteCache(ctx, { waits }));
  });

  test('up after a teardown restores the scheduled secret and reuses its token', async () => {
    const token = [...secrets.state.secrets.values()][0]?.SecretString;
    const ctx = storeContext();
    await ensureCache(ctx, inputs, { waits });
    assert.equal(callNames(mutatingCalls())[0], 'secretsmanager:RestoreSecret');
    assert.equal(elasticache.state.replicationGroups.get('ada-linecount-test-cache')?.authToken, token);
    await deleteCache(storeContext(), { waits, force: true });
    assert.equal(secrets.state.secrets.size, 0);
  });
});
