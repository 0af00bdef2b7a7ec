import type { MigrationTarget } from '../support/migration.ts';
import { type CloudWatchFake, installCloudWatchFake } from './cloudwatch.ts';
import { type Ec2Fake, installEc2Fake } from './ec2.ts';
import { type EcrFake, installEcrFake } from './ecr.ts';
import { type ElastiCacheFake, installElastiCacheFake } from './elasticache.ts';
import { type IamFake, installIamFake } from './iam.ts';
import { installLambdaFake, type LambdaFake } from './lambda.ts';
import { installLogsFake, type LogsFake } from './logs.ts';
import { installRdsFake, type RdsFake } from './rds.ts';
import { installTaggingFake, type TaggedSource, type TaggingFake } from './resource-groups-tagging.ts';
import { installSchedulerFake, type SchedulerFake } from './scheduler.ts';
import { installSecretsManagerFake, type SecretsManagerFake } from './secrets-manager.ts';
import { installStsFake, type StsFake } from './sts.ts';

// Every control-plane fake at once, wired to each other the way the services
// are: Lambda and Scheduler accept only roles IAM has, Lambda only images
// whose repository ECR has, RDS puts its managed master secret into Secrets
// Manager, and the tagging API answers from all of their state. S3, SNS and
// SQS are not faked: tests run them on the local emulator (local/emulator.ts).
// The migration function, invoked by up, runs the real migration on the
// test PostgreSQL given as `database`.

// The clients up and down send their requests through (ctx.clients), for
// tests and the bench that watch or interrupt every request of a run.
export const stackServices = [
  'ec2',
  's3',
  'sns',
  'sqs',
  'elasticache',
  'rds',
  'secretsManager',
  'ecr',
  'logs',
  'iam',
  'lambda',
  'scheduler',
  'cloudwatch',
] as const;

export interface FakeAwsOptions {
  accountId?: string;
  region?: string;
  // describes a new cache/database/VPC resource stays pending (0: ready at once)
  transitionAfter?: number;
  // the first N CreateFunction calls answer "cannot be assumed" (IAM propagation)
  roleNotReadyTimes?: number;
  // where the migration function's invocations run the migration
  database?: MigrationTarget;
}

export interface FakeAws {
  sts: StsFake;
  ec2: Ec2Fake;
  iam: IamFake;
  ecr: EcrFake;
  lambda: LambdaFake;
  logs: LogsFake;
  scheduler: SchedulerFake;
  cloudwatch: CloudWatchFake;
  elasticache: ElastiCacheFake;
  rds: RdsFake;
  secretsManager: SecretsManagerFake;
  tagging: TaggingFake;
  restore(): void;
}

type TagList = readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined;
const tagMap = (tags: TagList) => Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

export function installFakeAws(options: FakeAwsOptions = {}): FakeAws {
  const accountId = options.accountId ?? '123456789012';
  const region = options.region ?? 'us-east-1';
  const transitionAfter = options.transitionAfter ?? 0;
  const sts = installStsFake({ accountId });
  const ec2 = installEc2Fake({ region, transitionAfter });
  const iam = installIamFake({ accountId });
  const ecr = installEcrFake({ accountId, region });
  const roleExists = (roleArn: string) => [...iam.roles.values()].some((role) => role.arn === roleArn);
  const repositoryOf = (imageUri: string) => imageUri.split('/').slice(1).join('/').split(/[@:]/)[0] ?? '';
  const lambda = installLambdaFake({
    accountId,
    region,
    roleExists,
    imageExists: (imageUri) => ecr.repositories.has(repositoryOf(imageUri)),
    ...(options.roleNotReadyTimes === undefined ? {} : { roleNotReadyTimes: options.roleNotReadyTimes }),
  });
  if (options.database !== undefined) lambda.useDatabase(options.database);
  const logs = installLogsFake({ accountId, region });
  const scheduler = installSchedulerFake({ accountId, region, roleExists });
  const cloudwatch = installCloudWatchFake({ accountId, region });
  const elasticache = installElastiCacheFake({ transitionAfter, region, accountId });
  const secretsManager = installSecretsManagerFake({ accountId, region });
  const rds = installRdsFake({ transitionAfter, region, accountId, secrets: secretsManager.state.secrets });

  const ec2Sources: TaggedSource = () => {
    const s = ec2.state;
    const arnOf = (type: string, id: string) => `arn:aws:ec2:${region}:${accountId}:${type}/${id}`;
    return [
      ...[...s.vpcs.values()].map((v) => ({ arn: arnOf('vpc', v.VpcId), tags: tagMap(v.Tags) })),
      ...[...s.subnets.values()].map((v) => ({ arn: arnOf('subnet', v.SubnetId), tags: tagMap(v.Tags) })),
      ...[...s.routeTables.values()].map((v) => ({
        arn: arnOf('route-table', v.RouteTableId),
        tags: tagMap(v.Tags),
      })),
      ...[...s.securityGroups.values()].map((v) => ({
        arn: arnOf('security-group', v.GroupId),
        tags: tagMap(v.Tags),
      })),
      ...[...s.endpoints.values()].map((v) => ({
        arn: arnOf('vpc-endpoint', v.VpcEndpointId),
        tags: tagMap(v.Tags),
      })),
    ];
  };
  const cacheSources: TaggedSource = () => {
    const s = elasticache.state;
    const arnOf = (type: string, id: string) => `arn:aws:elasticache:${region}:${accountId}:${type}:${id}`;
    return [
      ...[...s.subnetGroups].map(([name, g]) => ({ arn: arnOf('subnetgroup', name), tags: tagMap(g.tags) })),
      ...[...s.parameterGroups].map(([name, g]) => ({
        arn: arnOf('parametergroup', name),
        tags: tagMap(g.tags),
      })),
      ...[...s.replicationGroups.values()].map((g) => ({
        arn: arnOf('replicationgroup', g.id),
        tags: tagMap(g.input.Tags),
      })),
    ];
  };
  const rdsSources: TaggedSource = () => {
    const s = rds.state;
    const arnOf = (type: string, id: string) => `arn:aws:rds:${region}:${accountId}:${type}:${id}`;
    return [
      ...[...s.subnetGroups].map(([name, g]) => ({ arn: arnOf('subgrp', name), tags: tagMap(g.tags) })),
      ...[...s.parameterGroups].map(([name, g]) => ({ arn: arnOf('pg', name), tags: tagMap(g.tags) })),
      ...[...s.instances].map(([id, i]) => ({ arn: arnOf('db', id), tags: tagMap(i.input.Tags) })),
      ...[...s.snapshots].map(([id, snap]) => ({ arn: arnOf('snapshot', id), tags: tagMap(snap.tags) })),
    ];
  };
  // like the tagging API, secrets scheduled for deletion are still listed
  const secretSources: TaggedSource = () =>
    [...secretsManager.state.secrets.values()].map((secret) => ({
      arn: secret.ARN,
      tags: tagMap(secret.Tags),
    }));
  const alarmSources: TaggedSource = () =>
    [...cloudwatch.tags].map(([arn, tags]) => ({ arn, tags: Object.fromEntries(tags) }));

  const tagging = installTaggingFake([
    ec2Sources,
    iam.taggedResources,
    ecr.taggedResources,
    lambda.taggedResources,
    logs.taggedResources,
    cacheSources,
    rdsSources,
    secretSources,
    alarmSources,
  ]);

  const fakes = {
    sts,
    ec2,
    iam,
    ecr,
    lambda,
    logs,
    scheduler,
    cloudwatch,
    elasticache,
    rds,
    secretsManager,
    tagging,
  };
  return {
    ...fakes,
    restore: () => {
      for (const fake of Object.values(fakes)) fake.restore();
    },
  };
}
