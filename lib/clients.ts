import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { S3Client } from '@aws-sdk/client-s3';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import type { AwsConfig, ServiceName } from './config.ts';

// The one place AWS clients are built. Credentials always come from the SDK's
// default provider chain (env, SSO, profile, container, instance role), so no
// secret passes through this project's configuration; the one exception is the
// local emulator's dummy keys (AwsConfig.credentials).
function options(aws: AwsConfig, service: ServiceName) {
  const endpoint = aws.endpoints[service];
  return {
    ...(aws.region === undefined ? {} : { region: aws.region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(aws.credentials === undefined ? {} : { credentials: aws.credentials }),
    // adaptive retry backs off on throttling across the client's calls
    retryMode: 'adaptive',
    maxAttempts: 6,
  };
}

// The function's two clients, also exported alone: a bundle that imports only
// these leaves the other SDK clients out (~1 MB, parsed at every cold start).
export function createS3Client(aws: AwsConfig): S3Client {
  return new S3Client({ ...options(aws, 's3'), forcePathStyle: aws.s3ForcePathStyle });
}

export function createSecretsManagerClient(aws: AwsConfig): SecretsManagerClient {
  return new SecretsManagerClient(options(aws, 'secretsManager'));
}

const factories = {
  s3: createS3Client,
  sns: (aws: AwsConfig) => new SNSClient(options(aws, 'sns')),
  sqs: (aws: AwsConfig) => new SQSClient(options(aws, 'sqs')),
  sts: (aws: AwsConfig) => new STSClient(options(aws, 'sts')),
  ec2: (aws: AwsConfig) => new EC2Client(options(aws, 'ec2')),
  iam: (aws: AwsConfig) => new IAMClient(options(aws, 'iam')),
  ecr: (aws: AwsConfig) => new ECRClient(options(aws, 'ecr')),
  lambda: (aws: AwsConfig) => new LambdaClient(options(aws, 'lambda')),
  elasticache: (aws: AwsConfig) => new ElastiCacheClient(options(aws, 'elasticache')),
  rds: (aws: AwsConfig) => new RDSClient(options(aws, 'rds')),
  secretsManager: createSecretsManagerClient,
  scheduler: (aws: AwsConfig) => new SchedulerClient(options(aws, 'scheduler')),
  logs: (aws: AwsConfig) => new CloudWatchLogsClient(options(aws, 'logs')),
  cloudwatch: (aws: AwsConfig) => new CloudWatchClient(options(aws, 'cloudwatch')),
  // teardown lists whatever still carries the stack's tags
  tagging: (aws: AwsConfig) => new ResourceGroupsTaggingAPIClient(options(aws, 'tagging')),
} as const;

export type Clients = { [K in keyof typeof factories]: ReturnType<(typeof factories)[K]> };

export function createClient<K extends keyof Clients>(aws: AwsConfig, service: K): Clients[K] {
  return factories[service](aws) as Clients[K];
}

// Clients are created lazily, on first use, so a command that only talks to
// S3 does not build fourteen clients.
export function createClients(aws: AwsConfig): Clients {
  const cache = new Map<keyof Clients, Clients[keyof Clients]>();
  return new Proxy({} as Clients, {
    get(_target, property) {
      const service = property as keyof Clients;
      if (!(service in factories)) return undefined;
      let client = cache.get(service);
      if (client === undefined) {
        client = createClient(aws, service);
        cache.set(service, client);
      }
      return client;
    },
  });
}

export function destroyClients(clients: Partial<Clients>): void {
  for (const service of Object.keys(factories) as (keyof Clients)[]) {
    clients[service]?.destroy();
  }
}
