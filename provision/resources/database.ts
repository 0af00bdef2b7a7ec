import {
  CreateDBInstanceCommand,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  waitUntilDBInstanceAvailable,
  waitUntilDBInstanceDeleted,
} from '@aws-sdk/client-rds';
import { UsageError } from '../../lib/errors.ts';
import { type Ctx, diffFields, type FieldChange, orAbsent, pending, step } from '../../lib/reconcile.ts';
import { toTagList } from '../tags.ts';
import { dbParameterGroups } from './parameter-group.ts';
import {
  deleteStore,
  type Endpoint,
  ensureStore,
  type Store,
  type StoreInputs,
  type StoreOptions,
  type StoreState,
} from './store-calls.ts';
import { dbSubnetGroups } from './subnet-group.ts';

// The RDS PostgreSQL instance: the system of record. ensureDatabase also
// keeps what it needs: its subnet group and its parameter group.

// PostgreSQL 17 on RDS; the parameter group family must match the major
// version (DescribeDBEngineVersions: 17.x → postgres17). Only the major
// version is pinned: RDS picks the default minor and AutoMinorVersionUpgrade
// keeps it patched.
export const dbEngine = { engine: 'postgres', majorVersion: '17', family: 'postgres17', port: 5432 } as const;

// Every connection must use TLS (RDS for PostgreSQL, "Requiring SSL"); the
// parameter is dynamic, so it applies without a reboot.
export const dbParameters = { 'rds.force_ssl': '1' } as const;

export const databaseWaits = {
  // creating an instance takes ~5-15 min, a class change ~10 min, deletion with a snapshot longer
  maxWaitSeconds: 3600,
  minDelaySeconds: 30,
  maxDelaySeconds: 60,
  progressEveryMs: 15_000,
};

export interface DatabaseOutputs extends Endpoint {
  name: string;
  // the RDS-managed master user secret: only the migration function reads it
  secretArn: string;
  // DbiResourceId, the instance's part of the rds-db:connect resource
  // (arn:aws:rds-db:region:account:dbuser:DbiResourceId/user: RDS User Guide,
  // "Creating and using an IAM policy for IAM database access")
  resourceId: string;
}

export type DatabaseOptions = StoreOptions;

export type DesiredInstance = ReturnType<typeof desiredInstance>;

export interface ActualInstance extends StoreState {
  instanceClass: string;
  allocatedStorageGb: number;
  backupRetentionDays: number;
  deletionProtection: boolean;
  publiclyAccessible: boolean;
  iamDatabaseAuthentication: boolean;
  storageEncrypted: boolean;
  // known once available, like the host and the port
  secretArn?: string | undefined;
  resourceId?: string | undefined;
}

export function desiredInstance(ctx: Ctx, inputs: StoreInputs) {
  const p = ctx.config.provision;
  return {
    name: ctx.names.db,
    instanceClass: p.dbInstanceClass,
    allocatedStorageGb: p.dbAllocatedStorageGb,
    backupRetentionDays: p.dbBackupRetentionDays,
    deletionProtection: p.dbDeletionProtection,
    parameterGroup: ctx.names.dbParameterGroup,
    securityGroupIds: [inputs.securityGroupId],
    publiclyAccessible: false as const,
    // the functions sign in with IAM authentication tokens, never a password
    iamDatabaseAuthentication: true as const,
  };
}

// Field names are ModifyDBInstance's, so the drift is the request. IAM
// database authentication is read as IAMDatabaseAuthenticationEnabled
// (DescribeDBInstances) and set as EnableIAMDatabaseAuthentication, applied
// at once like the rest; PostgreSQL needs TLS for it, which rds.force_ssl
// already requires (RDS User Guide, "Enabling and disabling IAM database
// authentication").
export function instanceDrift(desired: DesiredInstance, actual: ActualInstance): FieldChange[] {
  const modifiable = (i: DesiredInstance | ActualInstance) => ({
    DBInstanceClass: i.instanceClass,
    DeletionProtection: i.deletionProtection,
    BackupRetentionPeriod: i.backupRetentionDays,
    DBParameterGroupName: i.parameterGroup,
    VpcSecurityGroupIds: [...i.securityGroupIds].sort(),
    PubliclyAccessible: i.publiclyAccessible,
    EnableIAMDatabaseAuthentication: i.iamDatabaseAuthentication,
  });
  const changes = diffFields(modifiable(desired), modifiable(actual));
  // storage can only grow (ModifyDBInstance AllocatedStorage); a smaller setting is left alone
  if (desired.allocatedStorageGb > actual.allocatedStorageGb) {
    changes.push({
      field: 'AllocatedStorage',
      from: actual.allocatedStorageGb,
      to: desired.allocatedStorageGb,
    });
  }
  return changes;
}

// RDS snapshot ids: letters, digits and single hyphens, starting with a letter
export function finalSnapshotId(dbId: string, at: Date): string {
  return `${dbId}-final-${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
}

async function findInstance(ctx: Ctx, name: string): Promise<ActualInstance | undefined> {
  const found = await step(`read RDS instance ${name}`, 'rds:DescribeDBInstances', () =>
    orAbsent(
      () => ctx.clients.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: name })),
      DBInstanceNotFoundFault,
    ),
  );
  const instance = found?.DBInstances?.[0];
  if (instance === undefined) return undefined;
  return {
    status: instance.DBInstanceStatus ?? 'available',
    instanceClass: instance.DBInstanceClass ?? '',
    allocatedStorageGb: instance.AllocatedStorage ?? 0,
    backupRetentionDays: instance.BackupRetentionPeriod ?? 0,
    deletionProtection: instance.DeletionProtection ?? false,
    parameterGroup: instance.DBParameterGroups?.[0]?.DBParameterGroupName,
    securityGroupIds: (instance.VpcSecurityGroups ?? []).map((g) => g.VpcSecurityGroupId ?? ''),
    publiclyAccessible: instance.PubliclyAccessible ?? false,
    iamDatabaseAuthentication: instance.IAMDatabaseAuthenticationEnabled ?? false,
    storageEncrypted: instance.StorageEncrypted ?? false,
    host: instance.Endpoint?.Address,
    port: instance.Endpoint?.Port,
    secretArn: instance.MasterUserSecret?.SecretArn,
    resourceId: instance.DbiResourceId,
  };
}

const instances: Store<DesiredInstance, ActualInstance, DatabaseOutputs> = {
  what: 'RDS instance',
  console: 'RDS',
  waitUntil: (ctx, until, timing, DBInstanceIdentifier) =>
    (until === 'available' ? waitUntilDBInstanceAvailable : waitUntilDBInstanceDeleted)(
      { client: ctx.clients.rds, ...timing },
      { DBInstanceIdentifier },
    ),
  find: findInstance,
  names: 'db',
  waits: databaseWaits,
  subnetGroups: dbSubnetGroups,
  parameterGroups: dbParameterGroups,
  parameterGroup: (ctx) => ({
    family: dbEngine.family,
    description: `${ctx.names.base}: TLS required`,
    parameters: dbParameters,
    familyReason: `this version needs ${dbEngine.family}`,
    remedy: 'tear the database down first (teardown/down.ts)',
  }),
  resource: (available) => ({
    kind: 'db-instance',
    permissions: {
      find: 'rds:DescribeDBInstances',
      create: 'rds:CreateDBInstance',
      update: 'rds:ModifyDBInstance',
      delete: 'rds:DeleteDBInstance and rds:ModifyDBInstance',
    },
    async find(ctx, name) {
      const instance = await findInstance(ctx, name);
      if (instance?.status === 'deleting') {
        throw new UsageError(
          `RDS instance ${name} is being deleted; run up again once teardown has finished`,
        );
      }
      if (instance !== undefined && !instance.storageEncrypted) {
        ctx.log.warn(`RDS instance ${name} has unencrypted storage; this cannot be changed in place`);
      }
      return instance;
    },
    drift: instanceDrift,
    async create(ctx, desired) {
      await ctx.clients.rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: desired.name,
          DBInstanceClass: desired.instanceClass,
          Engine: dbEngine.engine,
          EngineVersion: dbEngine.majorVersion,
          AllocatedStorage: desired.allocatedStorageGb,
          StorageType: 'gp3',
          StorageEncrypted: true,
          PubliclyAccessible: false,
          // RDS generates the master password and keeps it in Secrets Manager:
          // it never passes through this program (ManageMasterUserPassword)
          ManageMasterUserPassword: true,
          MasterUsername: ctx.names.dbUser,
          DBName: ctx.names.dbName,
          Port: dbEngine.port,
          DBSubnetGroupName: ctx.names.dbSubnetGroup,
          DBParameterGroupName: desired.parameterGroup,
          VpcSecurityGroupIds: desired.securityGroupIds,
          EnableIAMDatabaseAuthentication: desired.iamDatabaseAuthentication,
          BackupRetentionPeriod: desired.backupRetentionDays,
          DeletionProtection: desired.deletionProtection,
          CopyTagsToSnapshot: true,
          AutoMinorVersionUpgrade: true,
          // one instance: the database is the system of record but the flush
          // retries and S3 is the source of truth; Multi-AZ would double the cost
          MultiAZ: false,
          Tags: toTagList(ctx.names.tags),
        }),
      );
      // as asked for, until the waiter sees it available with its endpoint
      return { ...desired, status: 'creating', storageEncrypted: true };
    },
    alreadyExists: (error) => error instanceof DBInstanceAlreadyExistsFault,
    // applied on an available instance, and waited out
    async update(ctx, desired, actual, drift) {
      if (actual.status !== 'available') await available(ctx, desired.name);
      await ctx.clients.rds.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: desired.name,
          ApplyImmediately: true,
          ...Object.fromEntries(drift.map((f) => [f.field, f.to])),
        }),
      );
      await available(ctx, desired.name);
    },
    outputs: (ctx, _desired, actual) => ({
      host: actual?.host ?? pending('database endpoint'),
      port: actual?.port ?? dbEngine.port,
      name: ctx.names.dbName,
      secretArn: actual?.secretArn ?? pending('database secret ARN'),
      resourceId: actual?.resourceId ?? pending('database resource id'),
    }),
    isNotFound: (error) => error instanceof DBInstanceNotFoundFault,
  }),
};

export const ensureDatabase = (ctx: Ctx, inputs: StoreInputs, options: DatabaseOptions = {}) =>
  ensureStore(ctx, instances, inputs, options, desiredInstance(ctx, inputs));

export interface DeleteDatabaseOptions extends DatabaseOptions {
  // turn deletion protection off first instead of refusing
  force: boolean;
  // keep a final snapshot (`<db>-final-<timestamp>`); it outlives the stack and costs storage
  finalSnapshot: boolean;
}

export const deleteDatabase = (ctx: Ctx, options: DeleteDatabaseOptions) =>
  deleteStore(ctx, instances, options, {
    async find(ctx, name) {
      const found = await findInstance(ctx, name);
      if (found?.deletionProtection && !options.force) {
        throw new UsageError(
          `RDS instance ${name} has deletion protection on; run teardown with --force to turn it off and delete it`,
        );
      }
      return found;
    },
    async remove(ctx, name, actual) {
      if (actual.deletionProtection) {
        await ctx.clients.rds.send(
          new ModifyDBInstanceCommand({
            DBInstanceIdentifier: name,
            DeletionProtection: false,
            ApplyImmediately: true,
          }),
        );
      }
      await ctx.clients.rds.send(
        new DeleteDBInstanceCommand(
          options.finalSnapshot
            ? { DBInstanceIdentifier: name, FinalDBSnapshotIdentifier: finalSnapshotId(name, new Date()) }
            : { DBInstanceIdentifier: name, SkipFinalSnapshot: true },
        ),
      );
    },
  });
