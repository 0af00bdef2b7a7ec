import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../lib/errors.ts';
import { Action } from '../../lib/reconcile.ts';
import { callLog, callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { installRdsFake } from '../../test/fakes/rds.ts';
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
import {
  type ActualInstance,
  deleteDatabase,
  desiredInstance,
  ensureDatabase,
  finalSnapshotId,
  instanceDrift,
} from './database.ts';

const inputs = { subnetIds: ['subnet-a', 'subnet-b'], securityGroupId: 'sg-db' };

describe('database drift functions', () => {
  const desired = desiredInstance(storeContext(), inputs);
  const actual: ActualInstance = {
    status: 'available',
    instanceClass: 'db.t4g.micro',
    allocatedStorageGb: 20,
    backupRetentionDays: 7,
    deletionProtection: false,
    parameterGroup: 'ada-linecount-test-db-force-ssl',
    securityGroupIds: ['sg-db'],
    publiclyAccessible: false,
    iamDatabaseAuthentication: true,
    storageEncrypted: true,
    host: 'h',
    port: 5432,
    secretArn: 'arn',
    resourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  };
  testDrift('instanceDrift', instanceDrift, desired, actual, [
    { name: 'in sync', change: {}, fields: [] },
    { name: 'instance class', change: { instanceClass: 'db.t4g.small' }, fields: ['DBInstanceClass'] },
    { name: 'deletion protection', change: { deletionProtection: true }, fields: ['DeletionProtection'] },
    { name: 'backup retention', change: { backupRetentionDays: 1 }, fields: ['BackupRetentionPeriod'] },
    {
      name: 'parameter group',
      change: { parameterGroup: 'default.postgres17' },
      fields: ['DBParameterGroupName'],
    },
    { name: 'security groups', change: { securityGroupIds: ['sg-other'] }, fields: ['VpcSecurityGroupIds'] },
    { name: 'made public', change: { publiclyAccessible: true }, fields: ['PubliclyAccessible'] },
    {
      name: 'IAM database authentication turned off',
      change: { iamDatabaseAuthentication: false },
      fields: ['EnableIAMDatabaseAuthentication'],
    },
    { name: 'smaller storage', change: { allocatedStorageGb: 10 }, fields: ['AllocatedStorage'] },
    { name: 'larger storage than asked (cannot shrink)', change: { allocatedStorageGb: 100 }, fields: [] },
  ]);

  test('final snapshot ids are valid RDS identifiers with a timestamp', () => {
    const id = finalSnapshotId('ada-linecount-dev-db', new Date('2026-03-04T05:06:07.890Z'));
    assert.equal(id, 'ada-linecount-dev-db-final-20260304050607');
    assert.match(id, /^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$/);
  });
});

describe('ensureDatabase and deleteDatabase against the RDS fake', () => {
  const secrets = installSecretsManagerFake();
  const rds = installRdsFake({ transitionAfter: 2, secrets: secrets.state.secrets });
  useFakes(rds, secrets);

  test('plan mode makes no mutating call; the real run then creates what the plan listed', async () => {
    const { planned, apply, out } = await planThenCreate((ctx) => ensureDatabase(ctx, inputs, { waits }));
    assert.match(planned.secretArn, /known after apply/);
    assert.match(planned.resourceId, /known after apply/);
    assert.deepEqual(
      { ...out, host: out.host.split('.')[0] },
      {
        host: 'ada-linecount-test-db',
        port: 5432,
        name: 'linecount',
        secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-ada-linecount-test-db-abcdef',
        resourceId: rds.state.instances.get('ada-linecount-test-db')?.resourceId,
      },
    );
    assert.match(out.resourceId, /^db-[A-Z2-7]{26}$/);
    assert.ok(apply.log.lines.some((l) => /waiting for RDS instance ada-linecount-test-db/.test(l)));
  });

  test('the instance is private, encrypted, TLS-only, with an RDS-managed password and IAM database authentication', () => {
    const instance = rds.state.instances.get('ada-linecount-test-db');
    assert.ok(instance);
    const i = instance.input;
    assert.equal(i.PubliclyAccessible, false);
    assert.equal(i.StorageEncrypted, true);
    assert.equal(i.StorageType, 'gp3');
    assert.equal(i.ManageMasterUserPassword, true);
    assert.equal(i.MasterUserPassword, undefined);
    assert.equal(i.EnableIAMDatabaseAuthentication, true);
    assert.equal(i.DBInstanceClass, 'db.t4g.micro');
    assert.equal(i.CopyTagsToSnapshot, true);
    assert.equal(i.BackupRetentionPeriod, 7);
    assert.deepEqual(i.VpcSecurityGroupIds, ['sg-db']);
    assert.equal(rds.state.parameterGroups.get(instance.parameterGroup)?.family, 'postgres17');
    assert.deepEqual(rds.state.parameterGroups.get(instance.parameterGroup)?.parameters, {
      'rds.force_ssl': '1',
    });
    assert.ok(secrets.state.secrets.has(instance.secretArn ?? ''));
  });

  test('a second run makes zero mutating calls and reports everything unchanged', async () => {
    await rerun(Action.unchanged, (ctx) => ensureDatabase(ctx, inputs, { waits }));
  });

  test('a read RDS refuses stops the run with the step and the permission to check', async () => {
    const reads = [
      [
        'rds:DescribeDBSubnetGroups',
        /^cannot read DB subnet group ada-linecount-test-db: AccessDenied: .*\(check rds:DescribeDBSubnetGroups permission\)$/,
      ],
      [
        'rds:DescribeDBParameters',
        /^cannot read DB parameter group ada-linecount-test-db-force-ssl: AccessDenied: .*\(check rds:DescribeDBParameterGroups and rds:DescribeDBParameters permissions\)$/,
      ],
      [
        'rds:DescribeDBInstances',
        /^cannot read RDS instance ada-linecount-test-db: AccessDenied: .*\(check rds:DescribeDBInstances permission\)$/,
      ],
    ] as const;
    for (const [action, message] of reads) {
      await rejectsWithout(action, () => ensureDatabase(storeContext(), inputs, { waits }), message);
    }
  });

  test('a parameter group of another family is refused with what to do, in plan mode too, before any change', async () => {
    const group = rds.state.parameterGroups.get('ada-linecount-test-db-force-ssl');
    assert.ok(group);
    group.family = 'postgres16';
    try {
      for (const mode of ['plan', 'apply'] as const) {
        await assert.rejects(ensureDatabase(storeContext({}, mode), inputs, { waits }), (error: Error) => {
          assert.ok(error instanceof UsageError);
          assert.equal(
            error.message,
            'DB parameter group ada-linecount-test-db-force-ssl has family postgres16, this version needs postgres17: tear the database down first (teardown/down.ts)',
          );
          return true;
        });
      }
      assert.deepEqual(mutatingCalls(), []);
    } finally {
      group.family = 'postgres17';
    }
  });

  test('an instance deployed before IAM database authentication gets it turned on, and nothing else changes', async () => {
    const instance = rds.state.instances.get('ada-linecount-test-db');
    assert.ok(instance);
    instance.iamDatabaseAuthentication = false;
    const ctx = storeContext();
    await ensureDatabase(ctx, inputs, { waits });
    assert.deepEqual(callNames(mutatingCalls()), ['rds:ModifyDBInstance']);
    assert.deepEqual(mutatingCalls()[0]?.input, {
      DBInstanceIdentifier: 'ada-linecount-test-db',
      ApplyImmediately: true,
      EnableIAMDatabaseAuthentication: true,
    });
    assert.equal(instance.iamDatabaseAuthentication, true);
    resetCalls();
    await ensureDatabase(storeContext(), inputs, { waits });
    assert.deepEqual(mutatingCalls(), []);
  });

  test('a new instance class changes exactly that, with ApplyImmediately; plan reports the same change', async () => {
    await planThenUpdate(
      (ctx) => ensureDatabase(ctx, inputs, { waits }),
      { DB_INSTANCE_CLASS: 'db.t4g.small' },
      {
        change: {
          kind: 'db-instance',
          name: 'ada-linecount-test-db',
          action: Action.update,
          fields: [{ field: 'DBInstanceClass', from: 'db.t4g.micro', to: 'db.t4g.small' }],
        },
        call: 'rds:ModifyDBInstance',
        input: {
          DBInstanceIdentifier: 'ada-linecount-test-db',
          ApplyImmediately: true,
          DBInstanceClass: 'db.t4g.small',
        },
      },
    );
    assert.equal(rds.state.instances.get('ada-linecount-test-db')?.status, 'available');
  });

  test('delete refuses while deletion protection is on, unless forced', async () => {
    const env = { DB_INSTANCE_CLASS: 'db.t4g.small', DB_DELETION_PROTECTION: 'true' };
    await ensureDatabase(storeContext(env), inputs, { waits });
    assert.equal(rds.state.instances.get('ada-linecount-test-db')?.deletionProtection, true);
    resetCalls();
    await assert.rejects(
      deleteDatabase(storeContext(env), { force: false, finalSnapshot: false, waits }),
      UsageError,
    );
    assert.deepEqual(mutatingCalls(), []);
    assert.ok(rds.state.instances.has('ada-linecount-test-db'));
  });

  test('a forced delete turns protection off, takes the final snapshot, removes everything; a second delete is a no-op', async () => {
    const ctx = storeContext();
    await deleteDatabase(ctx, { force: true, finalSnapshot: true, waits });
    assert.deepEqual(callNames(mutatingCalls()), [
      'rds:ModifyDBInstance',
      'rds:DeleteDBInstance',
      'rds:DeleteDBParameterGroup',
      'rds:DeleteDBSubnetGroup',
    ]);
    assert.deepEqual(mutatingCalls()[0]?.input, {
      DBInstanceIdentifier: 'ada-linecount-test-db',
      DeletionProtection: false,
      ApplyImmediately: true,
    });
    const [snapshot] = [...rds.state.snapshots.keys()];
    assert.match(snapshot ?? '', /^ada-linecount-test-db-final-\d{14}$/);
    assert.equal(rds.state.instances.size, 0);
    assert.equal(rds.state.parameterGroups.size, 0);
    assert.equal(rds.state.subnetGroups.size, 0);
    assert.equal(secrets.state.secrets.size, 0, 'RDS deletes the secret it manages');
    assert.ok(
      callLog.filter((c) => c.command === 'DescribeDBInstances').length >= 3,
      'the deleted waiter polled',
    );

    await rerun(Action.absent, (ctx) => deleteDatabase(ctx, { force: false, finalSnapshot: true, waits }));
  });
});
