import {
  CreateDBInstanceCommand,
  CreateDBParameterGroupCommand,
  CreateDBSubnetGroupCommand,
  type DBInstance,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DBParameterGroupAlreadyExistsFault,
  DBParameterGroupNotFoundFault,
  DBSubnetGroupAlreadyExistsFault,
  DBSubnetGroupNotFoundFault,
  DeleteDBInstanceCommand,
  DeleteDBParameterGroupCommand,
  DeleteDBSubnetGroupCommand,
  DescribeDBInstancesCommand,
  DescribeDBParameterGroupsCommand,
  DescribeDBParametersCommand,
  DescribeDBSubnetGroupsCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  ModifyDBSubnetGroupCommand,
  waitUntilDBInstanceAvailable,
  waitUntilDBInstanceDeleted,
} from '@aws-sdk/client-rds';
import { stepError, UsageError } from '../../lib/errors.ts';
import { withProgress } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  isPlan,
  pending,
  record,
} from '../../lib/reconcile.ts';
import { toTagList } from '../tags.ts';

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
export type DatabaseWaits = typeof databaseWaits;

export interface DatabaseInputs {
  subnetIds: readonly string[];
  securityGroupId: string;
}

export interface DatabaseOutputs {
  host: string;
  port: number;
  name: string;
  // the RDS-managed master user secret: only the migration function reads it
  secretArn: string;
  // DbiResourceId, the instance's part of the rds-db:connect resource
  // (arn:aws:rds-db:region:account:dbuser:DbiResourceId/user: RDS User Guide,
  // "Creating and using an IAM policy for IAM database access")
  resourceId: string;
}

export interface DatabaseOptions {
  waits?: Partial<DatabaseWaits>;
}

export interface DesiredInstance {
  id: string;
  instanceClass: string;
  allocatedStorageGb: number;
  backupRetentionDays: number;
  deletionProtection: boolean;
  parameterGroup: string;
  securityGroupIds: string[];
  publiclyAccessible: false;
  // the functions sign in with IAM authentication tokens, never a password
  iamDatabaseAuthentication: true;
}

export interface ActualInstance {
  id: string;
  status: string;
  instanceClass: string;
  allocatedStorageGb: number;
  backupRetentionDays: number;
  deletionProtection: boolean;
  parameterGroup: string | undefined;
  securityGroupIds: string[];
  publiclyAccessible: boolean;
  iamDatabaseAuthentication: boolean;
  storageEncrypted: boolean;
  host: string | undefined;
  port: number | undefined;
  secretArn: string | undefined;
  resourceId: string | undefined;
}

export function desiredInstance(ctx: Ctx, inputs: DatabaseInputs): DesiredInstance {
  const p = ctx.config.provision;
  return {
    id: ctx.names.db,
    instanceClass: p.dbInstanceClass,
    allocatedStorageGb: p.dbAllocatedStorageGb,
    backupRetentionDays: p.dbBackupRetentionDays,
    deletionProtection: p.dbDeletionProtection,
    parameterGroup: ctx.names.dbParameterGroup,
    securityGroupIds: [inputs.securityGroupId],
    publiclyAccessible: false,
    iamDatabaseAuthentication: true,
  };
}

// Field names are ModifyDBInstance's, so the drift is the request. IAM
// database authentication is read as IAMDatabaseAuthenticationEnabled
// (DescribeDBInstances) and set as EnableIAMDatabaseAuthentication, applied
// at once like the rest; PostgreSQL needs TLS for it, which rds.force_ssl
// already requires (RDS User Guide, "Enabling and disabling IAM database
// authentication").
export function instanceDrift(desired: DesiredInstance, actual: ActualInstance): FieldChange[] {
  const changes = diffFields(
    {
      DBInstanceClass: desired.instanceClass,
      DeletionProtection: desired.deletionProtection,
      BackupRetentionPeriod: desired.backupRetentionDays,
      DBParameterGroupName: desired.parameterGroup,
      VpcSecurityGroupIds: [...desired.securityGroupIds].sort(),
      PubliclyAccessible: desired.publiclyAccessible,
      EnableIAMDatabaseAuthentication: desired.iamDatabaseAuthentication,
    },
    {
      DBInstanceClass: actual.instanceClass,
      DeletionProtection: actual.deletionProtection,
      BackupRetentionPeriod: actual.backupRetentionDays,
      DBParameterGroupName: actual.parameterGroup,
      VpcSecurityGroupIds: [...actual.securityGroupIds].sort(),
      PubliclyAccessible: actual.publiclyAccessible,
      EnableIAMDatabaseAuthentication: actual.iamDatabaseAuthentication,
    },
  );
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

export function dbSubnetGroupDrift(desired: readonly string[], actual: readonly string[]): FieldChange[] {
  return diffFields({ SubnetIds: [...desired].sort() }, { SubnetIds: [...actual].sort() });
}

export function dbParameterDrift(
  desired: Record<string, string>,
  actual: Record<string, string | undefined>,
): FieldChange[] {
  return diffFields(desired, actual);
}

// RDS snapshot ids: letters, digits and single hyphens, starting with a letter
export function finalSnapshotId(dbId: string, at: Date): string {
  return `${dbId}-final-${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}`;
}

// ---- subnet group ----

export async function findDbSubnetGroup(ctx: Ctx): Promise<{ subnetIds: string[] } | undefined> {
  try {
    const { DBSubnetGroups = [] } = await ctx.clients.rds.send(
      new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: ctx.names.dbSubnetGroup }),
    );
    const group = DBSubnetGroups[0];
    return group && { subnetIds: (group.Subnets ?? []).map((s) => s.SubnetIdentifier ?? '') };
  } catch (error) {
    if (error instanceof DBSubnetGroupNotFoundFault) return undefined;
    throw error;
  }
}

async function ensureDbSubnetGroup(ctx: Ctx, subnetIds: readonly string[]): Promise<void> {
  const kind = 'db-subnet-group';
  const name = ctx.names.dbSubnetGroup;
  const actual = await findDbSubnetGroup(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.create });
    if (isPlan(ctx)) return;
    try {
      await ctx.clients.rds.send(
        new CreateDBSubnetGroupCommand({
          DBSubnetGroupName: name,
          DBSubnetGroupDescription: `${ctx.names.base} private subnets`,
          SubnetIds: [...subnetIds],
          Tags: toTagList(ctx.names.tags),
        }),
      );
    } catch (error) {
      // a concurrent run created it
      if (error instanceof DBSubnetGroupAlreadyExistsFault) return;
      throw stepError(`create DB subnet group ${name}`, error, 'check rds:CreateDBSubnetGroup permission');
    }
    return;
  }
  const drift = dbSubnetGroupDrift(subnetIds, actual.subnetIds);
  record(ctx, { kind, name, action: drift.length ? Action.update : Action.unchanged, fields: drift });
  if (isPlan(ctx) || drift.length === 0) return;
  await ctx.clients.rds
    .send(new ModifyDBSubnetGroupCommand({ DBSubnetGroupName: name, SubnetIds: [...subnetIds] }))
    .catch((error: unknown) => {
      throw stepError(`update DB subnet group ${name}`, error);
    });
}

// ---- parameter group ----

export async function findDbParameterGroup(
  ctx: Ctx,
): Promise<{ family: string; parameters: Record<string, string | undefined> } | undefined> {
  const name = ctx.names.dbParameterGroup;
  try {
    const { DBParameterGroups = [] } = await ctx.clients.rds.send(
      new DescribeDBParameterGroupsCommand({ DBParameterGroupName: name }),
    );
    const group = DBParameterGroups[0];
    if (group === undefined) return undefined;
    const parameters: Record<string, string | undefined> = {};
    let Marker: string | undefined;
    do {
      // Source=user: only what was set on this group, not the family's defaults
      const page = await ctx.clients.rds.send(
        new DescribeDBParametersCommand({ DBParameterGroupName: name, Source: 'user', Marker }),
      );
      for (const p of page.Parameters ?? [])
        if (p.ParameterName) parameters[p.ParameterName] = p.ParameterValue;
      Marker = page.Marker;
    } while (Marker);
    return { family: group.DBParameterGroupFamily ?? '', parameters };
  } catch (error) {
    if (error instanceof DBParameterGroupNotFoundFault) return undefined;
    throw error;
  }
}

async function ensureDbParameterGroup(ctx: Ctx): Promise<void> {
  const kind = 'db-parameter-group';
  const name = ctx.names.dbParameterGroup;
  const actual = await findDbParameterGroup(ctx);
  if (actual !== undefined && actual.family !== dbEngine.family) {
    throw new UsageError(
      `DB parameter group ${name} has family ${actual.family}, this version needs ${dbEngine.family}: tear the database down first (teardown/down.ts)`,
    );
  }
  const drift = dbParameterDrift(dbParameters, actual?.parameters ?? {});
  record(ctx, {
    kind,
    name,
    action: actual === undefined ? Action.create : drift.length ? Action.update : Action.unchanged,
    ...(actual === undefined ? {} : { fields: drift }),
  });
  if (isPlan(ctx)) return;
  if (actual === undefined) {
    try {
      await ctx.clients.rds.send(
        new CreateDBParameterGroupCommand({
          DBParameterGroupName: name,
          DBParameterGroupFamily: dbEngine.family,
          Description: `${ctx.names.base}: TLS required`,
          Tags: toTagList(ctx.names.tags),
        }),
      );
    } catch (error) {
      if (!(error instanceof DBParameterGroupAlreadyExistsFault)) {
        throw stepError(
          `create DB parameter group ${name}`,
          error,
          'check rds:CreateDBParameterGroup permission',
        );
      }
    }
  }
  if (actual === undefined || drift.length) {
    await ctx.clients.rds
      .send(
        new ModifyDBParameterGroupCommand({
          DBParameterGroupName: name,
          Parameters: Object.entries(dbParameters).map(([ParameterName, ParameterValue]) => ({
            ParameterName,
            ParameterValue,
            ApplyMethod: 'immediate',
          })),
        }),
      )
      .catch((error: unknown) => {
        throw stepError(`set parameters on DB parameter group ${name}`, error);
      });
  }
}

// ---- instance ----

function toActual(instance: DBInstance): ActualInstance {
  return {
    id: instance.DBInstanceIdentifier ?? '',
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

export async function findDbInstance(ctx: Ctx): Promise<ActualInstance | undefined> {
  try {
    const { DBInstances = [] } = await ctx.clients.rds.send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: ctx.names.db }),
    );
    return DBInstances[0] && toActual(DBInstances[0]);
  } catch (error) {
    if (error instanceof DBInstanceNotFoundFault) return undefined;
    throw error;
  }
}

function waiterOptions(ctx: Ctx, waits: DatabaseWaits) {
  return {
    client: ctx.clients.rds,
    maxWaitTime: waits.maxWaitSeconds,
    minDelay: waits.minDelaySeconds,
    maxDelay: waits.maxDelaySeconds,
  };
}

async function waitForInstance(ctx: Ctx, waits: DatabaseWaits): Promise<ActualInstance> {
  const what = `RDS instance ${ctx.names.db}`;
  await withProgress(
    what,
    ctx.log.progress,
    waitUntilDBInstanceAvailable(waiterOptions(ctx, waits), { DBInstanceIdentifier: ctx.names.db }),
    waits.progressEveryMs,
  ).catch((error: unknown) => {
    throw stepError(`wait for ${what} to become available`, error, 'see its events in the RDS console');
  });
  const ready = await findDbInstance(ctx);
  if (ready === undefined) throw stepError(`find ${what}`, new Error('it disappeared while being waited on'));
  return ready;
}

function outputs(ctx: Ctx, actual: ActualInstance): DatabaseOutputs {
  return {
    host: actual.host ?? pending('database endpoint'),
    port: actual.port ?? dbEngine.port,
    name: ctx.names.dbName,
    secretArn: actual.secretArn ?? pending('database secret ARN'),
    resourceId: actual.resourceId ?? pending('database resource id'),
  };
}

export async function ensureDatabase(
  ctx: Ctx,
  inputs: DatabaseInputs,
  options: DatabaseOptions = {},
): Promise<DatabaseOutputs> {
  const waits = { ...databaseWaits, ...options.waits };
  await ensureDbSubnetGroup(ctx, inputs.subnetIds);
  await ensureDbParameterGroup(ctx);

  const kind = 'db-instance';
  const desired = desiredInstance(ctx, inputs);
  let actual = await findDbInstance(ctx);
  if (actual === undefined) {
    record(ctx, { kind, name: desired.id, action: Action.create });
    if (isPlan(ctx)) {
      return {
        host: pending('database endpoint'),
        port: dbEngine.port,
        name: ctx.names.dbName,
        secretArn: pending('database secret ARN'),
        resourceId: pending('database resource id'),
      };
    }
    try {
      await ctx.clients.rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: desired.id,
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
    } catch (error) {
      if (!(error instanceof DBInstanceAlreadyExistsFault)) {
        throw stepError(
          `create RDS instance ${desired.id}`,
          error,
          'check rds:CreateDBInstance permission and that the instance class exists in this region',
        );
      }
    }
    actual = await waitForInstance(ctx, waits);
    return outputs(ctx, actual);
  }

  if (actual.status === 'deleting') {
    throw new UsageError(
      `RDS instance ${desired.id} is being deleted; run up again once teardown has finished`,
    );
  }
  if (!actual.storageEncrypted) {
    ctx.log.warn(`RDS instance ${desired.id} has unencrypted storage; this cannot be changed in place`);
  }
  const drift = instanceDrift(desired, actual);
  record(ctx, {
    kind,
    name: desired.id,
    action: drift.length ? Action.update : Action.unchanged,
    fields: drift,
  });
  if (isPlan(ctx)) return outputs(ctx, actual);
  if (actual.status !== 'available') actual = await waitForInstance(ctx, waits);
  if (drift.length) {
    const change = Object.fromEntries(drift.map((f) => [f.field, f.to]));
    await ctx.clients.rds
      .send(
        new ModifyDBInstanceCommand({ DBInstanceIdentifier: desired.id, ApplyImmediately: true, ...change }),
      )
      .catch((error: unknown) => {
        throw stepError(`update RDS instance ${desired.id} (${Object.keys(change).join(', ')})`, error);
      });
    actual = await waitForInstance(ctx, waits);
  }
  return outputs(ctx, actual);
}

// ---- delete ----

export interface DeleteDatabaseOptions extends DatabaseOptions {
  // turn deletion protection off first instead of refusing
  force: boolean;
  // keep a final snapshot (`<db>-final-<timestamp>`); it outlives the stack and costs storage
  finalSnapshot: boolean;
}

export async function deleteDatabase(ctx: Ctx, options: DeleteDatabaseOptions): Promise<void> {
  const waits = { ...databaseWaits, ...options.waits };
  const rds = ctx.clients.rds;
  const instance = await findDbInstance(ctx);
  if (instance?.deletionProtection && !options.force) {
    throw new UsageError(
      `RDS instance ${ctx.names.db} has deletion protection on; run teardown with --force to turn it off and delete it`,
    );
  }
  record(ctx, { kind: 'db-instance', name: ctx.names.db, action: instance ? Action.delete : Action.absent });
  if (instance !== undefined && !isPlan(ctx)) {
    if (instance.status !== 'deleting') {
      // an instance that is creating or modifying refuses deletion (InvalidDBInstanceState)
      if (instance.status !== 'available') await waitForInstance(ctx, waits);
      if (instance.deletionProtection) {
        await rds
          .send(
            new ModifyDBInstanceCommand({
              DBInstanceIdentifier: ctx.names.db,
              DeletionProtection: false,
              ApplyImmediately: true,
            }),
          )
          .catch((error: unknown) => {
            throw stepError(`turn off deletion protection on ${ctx.names.db}`, error);
          });
      }
      try {
        await rds.send(
          new DeleteDBInstanceCommand(
            options.finalSnapshot
              ? {
                  DBInstanceIdentifier: ctx.names.db,
                  FinalDBSnapshotIdentifier: finalSnapshotId(ctx.names.db, new Date()),
                }
              : { DBInstanceIdentifier: ctx.names.db, SkipFinalSnapshot: true },
          ),
        );
      } catch (error) {
        if (!(error instanceof DBInstanceNotFoundFault)) {
          throw stepError(`delete RDS instance ${ctx.names.db}`, error);
        }
      }
    }
    await withProgress(
      `RDS instance ${ctx.names.db} to be deleted`,
      ctx.log.progress,
      waitUntilDBInstanceDeleted(waiterOptions(ctx, waits), { DBInstanceIdentifier: ctx.names.db }),
      waits.progressEveryMs,
    );
  }

  await deleteFound(ctx, {
    kind: 'db-parameter-group',
    name: ctx.names.dbParameterGroup,
    found: (await findDbParameterGroup(ctx)) !== undefined,
    remove: () =>
      rds.send(new DeleteDBParameterGroupCommand({ DBParameterGroupName: ctx.names.dbParameterGroup })),
    isNotFound: (error) => error instanceof DBParameterGroupNotFoundFault,
    what: 'DB parameter group',
  });
  await deleteFound(ctx, {
    kind: 'db-subnet-group',
    name: ctx.names.dbSubnetGroup,
    found: (await findDbSubnetGroup(ctx)) !== undefined,
    remove: () => rds.send(new DeleteDBSubnetGroupCommand({ DBSubnetGroupName: ctx.names.dbSubnetGroup })),
    isNotFound: (error) => error instanceof DBSubnetGroupNotFoundFault,
    what: 'DB subnet group',
  });
}
