import { randomInt } from 'node:crypto';
import {
  type CreateDBInstanceMessage,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DBParameterGroupAlreadyExistsFault,
  DBParameterGroupNotFoundFault,
  DBSnapshotAlreadyExistsFault,
  DBSubnetGroupAlreadyExistsFault,
  DBSubnetGroupNotFoundFault,
  type DeleteDBInstanceMessage,
  InvalidDBInstanceStateFault,
  InvalidDBParameterGroupStateFault,
  InvalidDBSubnetGroupStateFault,
  type ModifyDBInstanceMessage,
  RDSClient,
  RDSServiceException,
  type Tag,
} from '@aws-sdk/client-rds';
import { type InstalledFake, installHandlers } from './calls.ts';
import type { FakeSecret } from './secrets-manager.ts';
import { type StoreGroups, storeGroupHandlers } from './store-groups.ts';

// A stateful RDS control plane for one PostgreSQL instance with its subnet and
// parameter groups. An instance goes creating → available, modifying →
// available and deleting → gone after `transitionAfter` describes, so the SDK
// waiters poll it as they poll the real service. With ManageMasterUserPassword
// RDS creates the master secret (put into the Secrets Manager fake's state when
// one is given) and deletes it with the instance. Each instance gets its own
// DbiResourceId, never reused (an instance created again gets a new one), the
// resource of rds-db:connect; IAM database authentication is off unless asked.

export interface FakeDbInstance {
  input: CreateDBInstanceMessage;
  status: string;
  pendingDescribes: number;
  instanceClass: string;
  deletionProtection: boolean;
  backupRetention: number;
  parameterGroup: string;
  securityGroupIds: string[];
  allocatedStorage: number;
  publiclyAccessible: boolean;
  iamDatabaseAuthentication: boolean;
  secretArn: string | undefined;
  resourceId: string;
}

export interface RdsState extends StoreGroups {
  instances: Map<string, FakeDbInstance>;
  snapshots: Map<string, { instanceId: string; tags: Tag[] }>;
}

export interface RdsFake extends InstalledFake {
  state: RdsState;
}

const metadata = { $metadata: {} };

// "db-" and 26 upper-case letters and digits, as RDS spells a DbiResourceId
function newResourceId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return `db-${Array.from({ length: 26 }, () => alphabet[randomInt(alphabet.length)]).join('')}`;
}

// InvalidParameterCombination is one of the common errors RDS documents but
// does not model as a class: it arrives as the service exception with that name
class InvalidParameterCombinationException extends RDSServiceException {
  constructor(options: { message: string }) {
    super({
      name: 'InvalidParameterCombination',
      $fault: 'client',
      ...options,
      $metadata: { httpStatusCode: 400 },
    });
  }
}

export function installRdsFake(
  options: {
    transitionAfter?: number;
    region?: string;
    accountId?: string;
    secrets?: Map<string, FakeSecret>;
  } = {},
): RdsFake {
  const transitionAfter = options.transitionAfter ?? 0;
  const region = options.region ?? 'us-east-1';
  // the account of the ARNs it hands out (the managed master secret's)
  const accountId = options.accountId ?? '123456789012';
  const state: RdsState = {
    subnetGroups: new Map(),
    parameterGroups: new Map(),
    instances: new Map(),
    snapshots: new Map(),
  };
  const notFound = (id: string | undefined) =>
    new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, ...metadata });
  const requireInstance = (id: string | undefined) => {
    const instance = state.instances.get(id ?? '');
    if (instance === undefined) throw notFound(id);
    return instance;
  };
  const advance = (id: string, instance: FakeDbInstance): string => {
    const seen = instance.status;
    if (seen === 'available') return seen;
    if (instance.pendingDescribes > 0) {
      instance.pendingDescribes -= 1;
      return seen;
    }
    if (seen === 'deleting') {
      state.instances.delete(id);
      if (instance.secretArn) options.secrets?.delete(instance.secretArn);
      throw notFound(id);
    }
    instance.status = 'available';
    return instance.status;
  };
  const describe = (id: string, instance: FakeDbInstance, status: string) => ({
    DBInstanceIdentifier: id,
    DBInstanceStatus: status,
    DBInstanceClass: instance.instanceClass,
    Engine: instance.input.Engine,
    EngineVersion: `${instance.input.EngineVersion}.4`,
    AllocatedStorage: instance.allocatedStorage,
    StorageType: instance.input.StorageType,
    StorageEncrypted: instance.input.StorageEncrypted ?? false,
    PubliclyAccessible: instance.publiclyAccessible,
    IAMDatabaseAuthenticationEnabled: instance.iamDatabaseAuthentication,
    DbiResourceId: instance.resourceId,
    BackupRetentionPeriod: instance.backupRetention,
    DeletionProtection: instance.deletionProtection,
    DBName: instance.input.DBName,
    MasterUsername: instance.input.MasterUsername,
    DBParameterGroups: [{ DBParameterGroupName: instance.parameterGroup, ParameterApplyStatus: 'in-sync' }],
    VpcSecurityGroups: instance.securityGroupIds.map((VpcSecurityGroupId) => ({
      VpcSecurityGroupId,
      Status: 'active',
    })),
    DBSubnetGroup: { DBSubnetGroupName: instance.input.DBSubnetGroupName },
    ...(status === 'creating'
      ? {}
      : {
          Endpoint: {
            Address: `${id}.abcdefghijkl.${region}.rds.amazonaws.com`,
            Port: instance.input.Port ?? 5432,
          },
        }),
    ...(instance.secretArn
      ? { MasterUserSecret: { SecretArn: instance.secretArn, SecretStatus: 'active' } }
      : {}),
    TagList: instance.input.Tags,
  });

  const installed = installHandlers(RDSClient, 'rds', {
    ...storeGroupHandlers(state, {
      prefix: 'DB',
      parametersField: 'Parameters',
      minSubnets: 2,
      faults: {
        subnetGroupNotFound: DBSubnetGroupNotFoundFault,
        subnetGroupExists: DBSubnetGroupAlreadyExistsFault,
        subnetGroupInUse: InvalidDBSubnetGroupStateFault,
        parameterGroupNotFound: DBParameterGroupNotFoundFault,
        parameterGroupExists: DBParameterGroupAlreadyExistsFault,
        parameterGroupInUse: InvalidDBParameterGroupStateFault,
        invalidParameter: InvalidParameterCombinationException,
      },
      inUse: {
        subnetGroup: (name) => [...state.instances.values()].some((i) => i.input.DBSubnetGroupName === name),
        parameterGroup: (name) => [...state.instances.values()].some((i) => i.parameterGroup === name),
      },
    }),

    CreateDBInstance(input: CreateDBInstanceMessage) {
      const id = input.DBInstanceIdentifier ?? '';
      if (state.instances.has(id))
        throw new DBInstanceAlreadyExistsFault({ message: `DB instance ${id} already exists`, ...metadata });
      if (!state.subnetGroups.has(input.DBSubnetGroupName ?? '')) {
        throw new DBSubnetGroupNotFoundFault({
          message: `DBSubnetGroup ${input.DBSubnetGroupName} not found.`,
          ...metadata,
        });
      }
      if (!state.parameterGroups.has(input.DBParameterGroupName ?? '')) {
        throw new DBParameterGroupNotFoundFault({
          message: `DBParameterGroup ${input.DBParameterGroupName} not found.`,
          ...metadata,
        });
      }
      if (input.ManageMasterUserPassword && input.MasterUserPassword !== undefined) {
        throw new InvalidParameterCombinationException({
          message: 'MasterUserPassword cannot be used with ManageMasterUserPassword',
          ...metadata,
        });
      }
      let secretArn: string | undefined;
      if (input.ManageMasterUserPassword) {
        secretArn = `arn:aws:secretsmanager:${region}:${accountId}:secret:rds!db-${id}-abcdef`;
        options.secrets?.set(secretArn, {
          ARN: secretArn,
          Name: `rds!db-${id}`,
          SecretString: JSON.stringify({ username: input.MasterUsername, password: 'generated-by-rds' }),
          // RDS tags the secrets it owns with the instance they belong to (AWS
          // Managed Policy Reference, AmazonRDSServiceRolePolicy: TagResource
          // with aws:rds:primaryDBInstanceArn)
          Tags: [
            { Key: 'aws:rds:primaryDBInstanceArn', Value: `arn:aws:rds:${region}:${accountId}:db:${id}` },
          ],
        });
      }
      const instance: FakeDbInstance = {
        input,
        status: 'creating',
        pendingDescribes: transitionAfter,
        instanceClass: input.DBInstanceClass ?? '',
        deletionProtection: input.DeletionProtection ?? false,
        backupRetention: input.BackupRetentionPeriod ?? 1,
        parameterGroup: input.DBParameterGroupName ?? '',
        securityGroupIds: input.VpcSecurityGroupIds ?? [],
        allocatedStorage: input.AllocatedStorage ?? 20,
        publiclyAccessible: input.PubliclyAccessible ?? false,
        iamDatabaseAuthentication: input.EnableIAMDatabaseAuthentication ?? false,
        secretArn,
        resourceId: newResourceId(),
      };
      state.instances.set(id, instance);
      return { DBInstance: describe(id, instance, instance.status), ...metadata };
    },
    DescribeDBInstances(input: { DBInstanceIdentifier?: string }) {
      const id = input.DBInstanceIdentifier ?? '';
      const instance = requireInstance(id);
      return { DBInstances: [describe(id, instance, advance(id, instance))], ...metadata };
    },
    ModifyDBInstance(input: ModifyDBInstanceMessage) {
      const id = input.DBInstanceIdentifier ?? '';
      const instance = requireInstance(id);
      if (instance.status !== 'available') {
        throw new InvalidDBInstanceStateFault({
          message: `Database instance is in ${instance.status} state.`,
          ...metadata,
        });
      }
      if (input.DBInstanceClass) instance.instanceClass = input.DBInstanceClass;
      if (input.DeletionProtection !== undefined) instance.deletionProtection = input.DeletionProtection;
      if (input.BackupRetentionPeriod !== undefined) instance.backupRetention = input.BackupRetentionPeriod;
      if (input.DBParameterGroupName) instance.parameterGroup = input.DBParameterGroupName;
      if (input.VpcSecurityGroupIds) instance.securityGroupIds = input.VpcSecurityGroupIds;
      if (input.AllocatedStorage) instance.allocatedStorage = input.AllocatedStorage;
      if (input.PubliclyAccessible !== undefined) instance.publiclyAccessible = input.PubliclyAccessible;
      if (input.EnableIAMDatabaseAuthentication !== undefined) {
        instance.iamDatabaseAuthentication = input.EnableIAMDatabaseAuthentication;
      }
      // a class or storage change puts the instance into `modifying`; flags apply at once
      if (input.DBInstanceClass || input.AllocatedStorage) {
        instance.status = 'modifying';
        instance.pendingDescribes = transitionAfter;
      }
      return { DBInstance: describe(id, instance, instance.status), ...metadata };
    },
    DeleteDBInstance(input: DeleteDBInstanceMessage) {
      const id = input.DBInstanceIdentifier ?? '';
      const instance = requireInstance(id);
      if (instance.deletionProtection) {
        throw new InvalidParameterCombinationException({
          message: 'Cannot delete protected DB Instance, please disable deletion protection and try again.',
          ...metadata,
        });
      }
      if (instance.status !== 'available') {
        throw new InvalidDBInstanceStateFault({
          message: `Instance ${id} is in ${instance.status} state.`,
          ...metadata,
        });
      }
      if (!input.SkipFinalSnapshot) {
        const snapshot = input.FinalDBSnapshotIdentifier;
        if (!snapshot) {
          throw new InvalidParameterCombinationException({
            message: 'FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.',
            ...metadata,
          });
        }
        if (state.snapshots.has(snapshot))
          throw new DBSnapshotAlreadyExistsFault({ message: `${snapshot} exists`, ...metadata });
        state.snapshots.set(snapshot, {
          instanceId: id,
          tags: instance.input.CopyTagsToSnapshot ? (instance.input.Tags ?? []) : [],
        });
      }
      instance.status = 'deleting';
      instance.pendingDescribes = transitionAfter;
      return { DBInstance: describe(id, instance, instance.status), ...metadata };
    },
  });
  return { state, restore: installed.restore };
}
