import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { ElastiCacheClient } from '@aws-sdk/client-elasticache';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { S3Client } from '@aws-sdk/client-s3';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import { type AwsConfig, Service, type ServiceName } from './config.ts';
import { EndpointUnreachableError } from './errors.ts';

// The one place AWS clients are built. Credentials always come from the SDK's
// default provider chain (env, SSO, profile, container, instance role), so no
// secret passes through this project's configuration; the one exception is the
// local emulator's dummy keys (AwsConfig.credentials).

// A TCP connection to a reachable endpoint takes well under a second, even
// across continents; without a limit the SDK waits on the operating system's
// (two minutes and more) for an endpoint that drops packets.
const connectionTimeoutMs = 3_000;

function options(aws: AwsConfig, service: ServiceName) {
  const endpoint = aws.endpoints[service];
  return {
    ...(aws.region === undefined ? {} : { region: aws.region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(aws.credentials === undefined ? {} : { credentials: aws.credentials }),
    // adaptive retry backs off on throttling across the client's calls
    retryMode: 'adaptive',
    maxAttempts: 6,
    requestHandler: { connectionTimeout: connectionTimeoutMs },
  };
}

// STS answers up's and down's first call (GetCallerIdentity). An STS that
// cannot be reached means nothing else can be either, so that call gives up
// within ~3 s instead of retrying six times: the user learns within 5 s that
// the endpoint, not the credentials, is the problem.
const stsFailFast = { maxAttempts: 2, requestHandler: { connectionTimeout: 1_500 } };

// Connection failures: refused, unresolvable name, no route, or (TimeoutError)
// no connection or answer in time; the request never got an answer.
const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function isUnreachable(error: unknown): boolean {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  return name === 'TimeoutError' || (typeof code === 'string' && unreachableCodes.has(code));
}

interface RequestLocation {
  protocol?: string;
  hostname?: string;
  port?: number;
}

function hintFor(aws: AwsConfig, service: ServiceName): string {
  if (aws.endpoints[service] !== undefined) {
    return (
      `is anything serving there? The endpoint comes from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_${Service[service]}), ` +
      'or for the ops commands from the local stack outputs (.ada/outputs.<stage>.json): start it with npm run demo -- --keep, or fix or unset the variable'
    );
  }
  return `check the network (no internet, a proxy or firewall) and that AWS_REGION=${aws.region ?? '(unset)'} is right`;
}

// Adds to every client: a request that could not reach its endpoint fails with
// an EndpointUnreachableError naming that endpoint. It runs in the build step,
// outside the retry loop (finalizeRequest), so it sees the last attempt's error
// after the SDK's own retries.
function nameUnreachableEndpoints<T extends { middlewareStack: { add: (...args: never[]) => unknown } }>(
  client: T,
  aws: AwsConfig,
  service: ServiceName,
): T {
  type Handler = (args: { request?: unknown }) => Promise<unknown>;
  const middleware =
    (next: Handler, context: { clientName?: string; commandName?: string }) =>
    async (args: { request?: unknown }) => {
      try {
        return await next(args);
      } catch (error) {
        if (!isUnreachable(error)) throw error;
        const request = (args.request ?? {}) as RequestLocation;
        const endpoint = `${request.protocol ?? 'https:'}//${request.hostname ?? '?'}${request.port === undefined ? '' : `:${request.port}`}`;
        const call = `${(context.clientName ?? service).replace(/Client$/, '')} ${(context.commandName ?? '').replace(/Command$/, '')}`;
        const detail = error instanceof Error ? error.message : String(error);
        throw new EndpointUnreachableError(
          `no answer from ${endpoint} for ${call.trim()} (${detail})`,
          endpoint,
          hintFor(aws, service),
          { cause: error },
        );
      }
    };
  (client.middlewareStack.add as (m: unknown, o: unknown) => void)(middleware, {
    step: 'build',
    name: 'nameUnreachableEndpoint',
  });
  return client;
}

// The function's two clients, also exported alone: a bundle that imports only
// these leaves the other SDK clients out (~1 MB, parsed at every cold start).
export function createS3Client(aws: AwsConfig): S3Client {
  return nameUnreachableEndpoints(
    new S3Client({ ...options(aws, 's3'), forcePathStyle: aws.s3ForcePathStyle }),
    aws,
    's3',
  );
}

export function createSecretsManagerClient(aws: AwsConfig): SecretsManagerClient {
  return nameUnreachableEndpoints(
    new SecretsManagerClient(options(aws, 'secretsManager')),
    aws,
    'secretsManager',
  );
}

// The control-plane clients (EC2, IAM, RDS, ...) serve up, down and some ops
// commands; importing all ten costs ~0.7 s (EC2's alone ~0.4 s) at the start
// of every command, the demo and the generator included. So each package is
// loaded on first use, synchronously: require() of its ES module build (the
// file import.meta.resolve names) is the same module instance an `import` of
// the package gets, so its exception classes stay the ones provision/ checks
// errors against with instanceof. S3, SNS, SQS, STS and Secrets Manager are
// light and imported above.
const requireModule = createRequire(import.meta.url);
function loadPackage<T>(name: string): T {
  return requireModule(fileURLToPath(import.meta.resolve(name))) as T;
}

type Constructs<T> = new (config: ReturnType<typeof options>) => T;
function createLazyClient<T extends { middlewareStack: { add: (...args: never[]) => unknown } }>(
  aws: AwsConfig,
  service: ServiceName,
  packageName: string,
  className: string,
): T {
  const Client = loadPackage<Record<string, Constructs<T>>>(packageName)[className] as Constructs<T>;
  return nameUnreachableEndpoints(new Client(options(aws, service)), aws, service);
}

// Plain functions, so a bundle that uses only createS3Client drops the table.
const factories = {
  s3: createS3Client,
  sns: (aws: AwsConfig) => nameUnreachableEndpoints(new SNSClient(options(aws, 'sns')), aws, 'sns'),
  sqs: (aws: AwsConfig) => nameUnreachableEndpoints(new SQSClient(options(aws, 'sqs')), aws, 'sqs'),
  sts: (aws: AwsConfig) =>
    nameUnreachableEndpoints(new STSClient({ ...options(aws, 'sts'), ...stsFailFast }), aws, 'sts'),
  ec2: (aws: AwsConfig) => createLazyClient<EC2Client>(aws, 'ec2', '@aws-sdk/client-ec2', 'EC2Client'),
  iam: (aws: AwsConfig) => createLazyClient<IAMClient>(aws, 'iam', '@aws-sdk/client-iam', 'IAMClient'),
  ecr: (aws: AwsConfig) => createLazyClient<ECRClient>(aws, 'ecr', '@aws-sdk/client-ecr', 'ECRClient'),
  lambda: (aws: AwsConfig) =>
    createLazyClient<LambdaClient>(aws, 'lambda', '@aws-sdk/client-lambda', 'LambdaClient'),
  elasticache: (aws: AwsConfig) =>
    createLazyClient<ElastiCacheClient>(
      aws,
      'elasticache',
      '@aws-sdk/client-elasticache',
      'ElastiCacheClient',
    ),
  rds: (aws: AwsConfig) => createLazyClient<RDSClient>(aws, 'rds', '@aws-sdk/client-rds', 'RDSClient'),
  secretsManager: createSecretsManagerClient,
  scheduler: (aws: AwsConfig) =>
    createLazyClient<SchedulerClient>(aws, 'scheduler', '@aws-sdk/client-scheduler', 'SchedulerClient'),
  logs: (aws: AwsConfig) =>
    createLazyClient<CloudWatchLogsClient>(
      aws,
      'logs',
      '@aws-sdk/client-cloudwatch-logs',
      'CloudWatchLogsClient',
    ),
  cloudwatch: (aws: AwsConfig) =>
    createLazyClient<CloudWatchClient>(aws, 'cloudwatch', '@aws-sdk/client-cloudwatch', 'CloudWatchClient'),
  // teardown lists whatever still carries the stack's tags
  tagging: (aws: AwsConfig) =>
    createLazyClient<ResourceGroupsTaggingAPIClient>(
      aws,
      'tagging',
      '@aws-sdk/client-resource-groups-tagging-api',
      'ResourceGroupsTaggingAPIClient',
    ),
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
