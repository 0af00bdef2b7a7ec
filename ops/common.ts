import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { createPool, createRedis } from '../lambda-image/connections.ts';
import { confirm } from '../lib/cli.ts';
import { createClient } from '../lib/clients.ts';
import {
  type AwsConfig,
  type DatabaseSettings,
  type OpsConfig,
  type RedisSettings,
  Service,
  type ServiceName,
} from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { outputsPath, readOutputs, type StackOutputs } from '../lib/outputs.ts';
import { checkPostgresPool, maskUrl } from '../lib/reach.ts';

// What the ops commands share: where the stack, the database and the cache
// are, and where output is written. Exit codes and how a failure becomes a
// message: lib/cli.ts, as for every command.

export interface Io {
  // the working directory that holds .ada/outputs.<stage>.json
  root?: string | undefined;
  out(text: string): void;
  err(text: string): void;
  // asks a yes/no question; absent when nobody can answer (no terminal)
  confirm?: ((question: string) => Promise<boolean>) | undefined;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  // asked on stderr: stdout may carry --json
  confirm: process.stdin.isTTY ? (question) => confirm(question, process.stderr) : undefined,
};

// The stack the command works on: the stage's outputs file, and the AWS
// settings that reach it. Outputs that name an endpoint describe the local
// emulated stack (local/stack.ts): every client goes there, with the
// emulator's dummy keys, and what the emulator lacks (CloudWatch,
// StartMessageMoveTask) is skipped or done another way.
export interface StackTarget {
  outputs: StackOutputs;
  local: boolean;
  aws: AwsConfig;
}

export async function resolveStack(config: OpsConfig, root?: string): Promise<StackTarget> {
  const stage = config.stack.stage;
  const outputs = await readOutputs(stage, root);
  if (outputs === undefined) {
    throw new UsageError(
      `no stack outputs for stage ${stage}: ${outputsPath(stage, root)} does not exist ` +
        '(run provision/up.ts, or npm run demo -- --keep for the local stack; STAGE selects the stage)',
    );
  }
  if (outputs.endpoint === undefined) {
    return { outputs, local: false, aws: { ...config.aws, region: config.aws.region ?? outputs.region } };
  }
  // loaded only for the local stack: it brings the emulator's package with it
  const { emulatorCredentials } = await import('../local/emulator.ts');
  const endpoints: Partial<Record<ServiceName, string>> = {};
  for (const name of Object.keys(Service) as ServiceName[]) endpoints[name] = outputs.endpoint;
  return {
    outputs,
    local: true,
    aws: { region: outputs.region, endpoints, s3ForcePathStyle: true, credentials: emulatorCredentials },
  };
}

// The cache named by the environment (REDIS_URL, or REDIS_HOST with
// REDIS_AUTH_SECRET_ARN), else by the stage's outputs; undefined when neither
// names one (the local stack's Redis is known only to whoever started it).
export function resolveRedis(config: OpsConfig, outputs?: StackOutputs): RedisSettings | undefined {
  const given = config.redis;
  if (given.url !== undefined || given.host !== undefined) return given;
  if (outputs?.cacheEndpoint === undefined) return undefined;
  const [host, port] = outputs.cacheEndpoint.split(':');
  return {
    ...given,
    host,
    port: port === undefined ? given.port : Number(port),
    authSecretArn: outputs.cacheAuthSecretArn,
  };
}

export interface Cache {
  redis: Redis;
  close(): void;
}

export async function openRedis(config: OpsConfig, settings: RedisSettings): Promise<Cache> {
  const secrets =
    settings.url === undefined && settings.authSecretArn !== undefined
      ? createClient(config.aws, 'secretsManager')
      : undefined;
  try {
    const redis = await createRedis(settings, { secrets });
    return {
      redis,
      close() {
        redis.disconnect();
        secrets?.destroy();
      },
    };
  } catch (error) {
    secrets?.destroy();
    throw error;
  }
}

// The database named by the environment (DATABASE_URL, or DB_HOST with
// DB_SECRET_ARN), else by the stage's outputs file that provision/up.ts wrote.
async function resolveDatabase(config: OpsConfig, root?: string): Promise<DatabaseSettings> {
  const given = config.database;
  if (given.url !== undefined || (given.host !== undefined && given.secretArn !== undefined)) return given;
  const outputs = await readOutputs(config.stack.stage, root);
  if (outputs?.dbEndpoint !== undefined && outputs.dbSecretArn !== undefined) {
    const [host, port] = outputs.dbEndpoint.split(':');
    return {
      ...given,
      host,
      port: port === undefined ? given.port : Number(port),
      secretArn: outputs.dbSecretArn,
    };
  }
  throw new UsageError(
    `no database to read: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test), or DB_HOST with DB_SECRET_ARN, ` +
      `or run provision/up.ts for stage ${config.stack.stage} so that ${outputsPath(config.stack.stage, root)} names it ` +
      '(the database is in a private VPC: reach it through a tunnel or from inside the VPC)',
  );
}

export interface Database {
  pool: pg.Pool;
  schema: string;
  close(): Promise<void>;
}

// Where the database settings came from, for the message when it cannot be reached.
function describeDatabase(config: OpsConfig, settings: DatabaseSettings) {
  if (settings.url !== undefined) return { where: maskUrl(settings.url), source: 'DATABASE_URL' };
  const where = `${settings.host}:${settings.port}/${settings.name}`;
  return {
    where,
    source: config.database.host !== undefined ? 'DB_HOST' : `the stage ${config.stack.stage} outputs`,
  };
}

// Opens the pool and makes one round trip, so a wrong or unreachable database
// is named at once instead of surfacing as a bare ECONNREFUSED from the first query.
export async function openDatabase(config: OpsConfig, root?: string): Promise<Database> {
  const settings = await resolveDatabase(config, root);
  // the secrets client stays open with the pool: a rotated password is re-read through it
  const secrets = settings.secretArn === undefined ? undefined : createClient(config.aws, 'secretsManager');
  try {
    const pool = await createPool(settings, { secrets });
    try {
      await checkPostgresPool(pool, {
        ...describeDatabase(config, settings),
        hint:
          'start it or fix the address; in AWS the database is in a private VPC, so reach it through a tunnel ' +
          '(SSM port forwarding) or from inside the VPC',
      });
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return {
      pool,
      schema: settings.schema,
      async close() {
        await pool.end();
        secrets?.destroy();
      },
    };
  } catch (error) {
    secrets?.destroy();
    throw error;
  }
}

const QueueAttribute = {
  visible: 'ApproximateNumberOfMessages',
  inFlight: 'ApproximateNumberOfMessagesNotVisible',
  delayed: 'ApproximateNumberOfMessagesDelayed',
} as const;

// A queue's approximate depth, from one GetQueueAttributes call.
export async function readQueueDepth(sqs: SQSClient, queueUrl: string) {
  const reply = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: Object.values(QueueAttribute) }),
  );
  const value = (name: (typeof QueueAttribute)[keyof typeof QueueAttribute]) =>
    Number(reply.Attributes?.[name] ?? 0);
  return {
    visible: value(QueueAttribute.visible),
    inFlight: value(QueueAttribute.inFlight),
    delayed: value(QueueAttribute.delayed),
  };
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
