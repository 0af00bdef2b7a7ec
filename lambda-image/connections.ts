import { readFileSync } from 'node:fs';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Signer } from '@aws-sdk/rds-signer';
import { Redis, type RedisOptions } from 'ioredis';
import pg from 'pg';
import type { AwsConfig, DatabaseSettings, RedisSettings, RuntimeConfig } from '../lib/config.ts';
import { describeError } from '../lib/errors.ts';

// The function's two connections, built once per cold start. Locally they come
// from REDIS_URL / DATABASE_URL. Deployed, Redis signs in with the token of a
// Secrets Manager secret, read at cold start and read again when the service
// rejects it (the secret was rotated since); PostgreSQL with an IAM
// authentication token made for each new connection (the counting and flush
// functions) or with the RDS master secret (the migration, the ops commands).

export interface Connections {
  redis: Redis;
  pool: pg.Pool;
  close(): Promise<void>;
}

interface ConnectionDeps {
  // needed only when a secret ARN is configured
  secrets?: SecretsManagerClient | undefined;
  // region and credentials an IAM authentication token is signed with; the
  // region is required with DB_IAM_USER (lib/config.ts checks it), the
  // credentials default to the SDK's provider chain (the function's role)
  aws?: Pick<AwsConfig, 'region' | 'credentials'> | undefined;
  // errors that surface outside any call (idle connection lost, refresh failed)
  onError?: ((what: string, error: unknown) => void) | undefined;
}

// Redis fails fast instead of hanging the invocation: a command on a lost
// connection errors at once (no offline queue once connected), a command
// waiting for the first connection gives up after one reconnect attempt, and a
// black-holed socket (security group, failover) times out.
const redisTimeouts = {
  connectTimeout: 3_000,
  commandTimeout: 5_000,
  maxRetriesPerRequest: 1,
  maxReconnectDelayMs: 2_000,
} as const;

// PostgreSQL: a pool per execution environment holds one or two connections;
// a Lambda instance handles one invocation at a time.
const databaseTimeouts = {
  connectionTimeoutMillis: 5_000,
  idleTimeoutMillis: 60_000,
  statementTimeoutMs: 30_000,
} as const;

class SecretValue<T> {
  private current: Promise<T> | undefined;
  private refreshing: Promise<T> | undefined;

  constructor(
    private readonly client: SecretsManagerClient,
    readonly arn: string,
    private readonly parse: (secretString: string, arn: string) => T,
  ) {}

  get(): Promise<T> {
    this.current ??= this.read();
    return this.current;
  }

  // Concurrent callers that all saw the rejection share one read.
  refresh(): Promise<T> {
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = undefined;
    });
    this.current = this.refreshing;
    return this.refreshing;
  }

  private async read(): Promise<T> {
    let secretString: string | undefined;
    try {
      const reply = await this.client.send(new GetSecretValueCommand({ SecretId: this.arn }));
      secretString = reply.SecretString;
    } catch (error) {
      this.current = undefined;
      throw new Error(
        `cannot read secret ${this.arn}: ${describeError(error)} (check secretsmanager:GetSecretValue on the function's role and the VPC endpoint)`,
        { cause: error },
      );
    }
    if (secretString === undefined) {
      this.current = undefined;
      throw new Error(`secret ${this.arn} has no SecretString (store it as text, not binary)`);
    }
    return this.parse(secretString, this.arn);
  }
}

interface DatabaseCredentials {
  username: string;
  password: string;
}

// RDS-managed master user secrets are JSON {"username": ..., "password": ...}.
export function parseDatabaseSecret(secretString: string, arn: string): DatabaseCredentials {
  let value: unknown;
  try {
    value = JSON.parse(secretString);
  } catch {
    throw new Error(`secret ${arn} is not JSON; expected {"username": "...", "password": "..."}`);
  }
  const { username, password } = (value ?? {}) as Record<string, unknown>;
  if (typeof username !== 'string' || typeof password !== 'string') {
    throw new Error(`secret ${arn} lacks string "username" and "password" fields`);
  }
  return { username, password };
}

interface RedisCredentials {
  username?: string | undefined;
  password: string;
}

// An ElastiCache AUTH token: the secret is the token itself, or JSON holding it
// (as authToken, token or password, with an optional RBAC username).
export function parseRedisSecret(secretString: string, arn: string): RedisCredentials {
  const text = secretString.trim();
  if (!text.startsWith('{')) return { password: text };
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(
      `secret ${arn} starts with "{" but is not JSON; store the token itself or {"authToken": "..."}`,
    );
  }
  const password = value.authToken ?? value.token ?? value.password;
  if (typeof password !== 'string' || password === '') {
    throw new Error(`secret ${arn} is JSON without an "authToken", "token" or "password" string`);
  }
  return typeof value.username === 'string' ? { username: value.username, password } : { password };
}

// ElastiCache answers WRONGPASS for a bad token and NOAUTH when a connection
// that needs one has none (Redis AUTH reference).
function isRedisAuthError(error: unknown): boolean {
  return error instanceof Error && /^(WRONGPASS|NOAUTH)\b/.test(error.message);
}

// 28P01 invalid_password (PostgreSQL Appendix A, class 28).
function isDatabaseAuthError(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === '28P01';
}

function requireSecrets(deps: ConnectionDeps, what: string): SecretsManagerClient {
  if (deps.secrets === undefined) {
    throw new Error(`${what} is configured by secret ARN but no Secrets Manager client was given`);
  }
  return deps.secrets;
}

function redisOptions(settings: RedisSettings): RedisOptions {
  return {
    // The demo's in-process RESP emulation speaks RESP2 and has no CLIENT SETINFO;
    // RESP2 replies have the same shapes for every command the buffer uses.
    protocol: 2,
    disableClientInfo: true,
    connectTimeout: redisTimeouts.connectTimeout,
    commandTimeout: redisTimeouts.commandTimeout,
    maxRetriesPerRequest: redisTimeouts.maxRetriesPerRequest,
    retryStrategy: (times) => Math.min(times * 200, redisTimeouts.maxReconnectDelayMs),
    ...(settings.url === undefined
      ? {
          host: settings.host,
          port: settings.port,
          // ElastiCache in-transit encryption presents an Amazon-issued certificate for the endpoint's name
          ...(settings.tls ? { tls: { servername: settings.host } } : {}),
        }
      : {}),
  };
}

export async function createRedis(settings: RedisSettings, deps: ConnectionDeps = {}): Promise<Redis> {
  const options = redisOptions(settings);
  let secret: SecretValue<RedisCredentials> | undefined;
  if (settings.url === undefined && settings.authSecretArn !== undefined) {
    secret = new SecretValue(requireSecrets(deps, 'Redis'), settings.authSecretArn, parseRedisSecret);
    const credentials = await secret.get();
    options.password = credentials.password;
    if (credentials.username !== undefined) options.username = credentials.username;
  }
  // Re-read the token once per failure streak: a rotated token is picked up on
  // the next reconnect, a wrong one is not fetched in a loop.
  let refreshedSinceReady = false;
  const refreshCredentials = () => {
    if (secret === undefined || refreshedSinceReady) return;
    refreshedSinceReady = true;
    secret.refresh().then(
      (credentials) => {
        redis.options.password = credentials.password;
        if (credentials.username !== undefined) redis.options.username = credentials.username;
      },
      (error: unknown) => deps.onError?.('re-reading the Redis auth token', error),
    );
  };
  options.reconnectOnError = (error) => {
    if (!isRedisAuthError(error)) return false;
    refreshCredentials();
    return true;
  };
  const redis = settings.url === undefined ? new Redis(options) : new Redis(settings.url, options);
  redis.on('ready', () => {
    refreshedSinceReady = false;
    // Queue commands only until the first connection; after that a lost
    // connection fails each command at once so SQS can retry the message.
    redis.options.enableOfflineQueue = false;
  });
  redis.on('error', (error: unknown) => {
    if (isRedisAuthError(error)) refreshCredentials();
    deps.onError?.('Redis connection', error);
  });
  return redis;
}

function databaseConfig(settings: DatabaseSettings, credentials?: DatabaseCredentials): pg.PoolConfig {
  const common: pg.PoolConfig = {
    max: settings.poolMax,
    connectionTimeoutMillis: databaseTimeouts.connectionTimeoutMillis,
    idleTimeoutMillis: databaseTimeouts.idleTimeoutMillis,
    statement_timeout: databaseTimeouts.statementTimeoutMs,
    keepAlive: true,
    application_name: 'ada-linecount',
  };
  if (settings.url !== undefined) return { ...common, connectionString: settings.url };
  return {
    ...common,
    host: settings.host,
    port: settings.port,
    database: settings.name,
    user: credentials?.username,
    // RDS presents a certificate from the region's RDS CA; verify it, with
    // the bundle shipped in the image when DB_CA_FILE names it.
    ssl: {
      rejectUnauthorized: true,
      ...(settings.caFile === undefined ? {} : { ca: readFileSync(settings.caFile, 'utf8') }),
    },
  };
}

type ConnectCallback = (
  err: Error | undefined,
  client: pg.PoolClient | undefined,
  done: (release?: unknown) => void,
) => void;

// A pool that answers an authentication failure (28P01: the password was
// rotated) by re-reading the secret and connecting once more. pool.query goes
// through connect(), so both paths are covered.
class RotatingPool extends pg.Pool {
  constructor(
    config: pg.PoolConfig,
    private readonly onAuthFailure: () => Promise<unknown>,
  ) {
    super(config);
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    const attempt = () => super.connect();
    const connecting = attempt().catch(async (error: unknown) => {
      if (!isDatabaseAuthError(error)) throw error;
      await this.onAuthFailure();
      return attempt();
    });
    if (callback === undefined) return connecting;
    connecting.then(
      (client) => callback(undefined, client, (release) => client.release(release as Error | undefined)),
      (error: Error) => callback(error, undefined, () => undefined),
    );
    return undefined;
  }
}

// RDS IAM database authentication: the password is a token, a SigV4-presigned
// rds-db:connect request for this host, port and user, valid for 15 minutes
// and checked only when a connection signs in; an open connection outlives it
// (RDS User Guide, "IAM database authentication"). pg asks for the password on
// every new connection, so each gets a fresh token, made locally (no call to
// AWS: the function needs no endpoint for it). RDS throttles sign-ins above
// 200 new IAM connections a second; a pool of DB_POOL_MAX connections per
// execution environment, kept for a minute when idle, stays far below.
// IAM sign-in requires TLS, which databaseConfig always asks for.
function iamAuthPassword(
  settings: DatabaseSettings,
  iamUser: string,
  deps: ConnectionDeps,
): () => Promise<string> {
  const region = deps.aws?.region;
  if (region === undefined || settings.host === undefined) {
    throw new Error(
      `DB_IAM_USER=${iamUser} needs DB_HOST and AWS_REGION: the token is signed for the database's host and region`,
    );
  }
  const signer = new Signer({
    hostname: settings.host,
    port: settings.port,
    username: iamUser,
    region,
    ...(deps.aws?.credentials === undefined ? {} : { credentials: deps.aws.credentials }),
  });
  return async () => {
    try {
      return await signer.getAuthToken();
    } catch (error) {
      throw new Error(
        `cannot make an IAM authentication token for ${iamUser}@${settings.host}: ${describeError(error)} (the function's role provides the credentials)`,
        { cause: error },
      );
    }
  };
}

export async function createPool(settings: DatabaseSettings, deps: ConnectionDeps = {}): Promise<pg.Pool> {
  let pool: pg.Pool;
  if (settings.url === undefined && settings.iamUser !== undefined) {
    pool = new pg.Pool({
      ...databaseConfig(settings),
      user: settings.iamUser,
      password: iamAuthPassword(settings, settings.iamUser, deps),
    });
  } else if (settings.url === undefined && settings.secretArn !== undefined) {
    const secret = new SecretValue(
      requireSecrets(deps, 'PostgreSQL'),
      settings.secretArn,
      parseDatabaseSecret,
    );
    const credentials = await secret.get();
    pool = new RotatingPool(
      // pg asks for the password on every new connection, so a refreshed secret is used at once
      { ...databaseConfig(settings, credentials), password: async () => (await secret.get()).password },
      () => secret.refresh(),
    );
  } else {
    pool = new pg.Pool(databaseConfig(settings));
  }
  // An idle client that loses its connection emits on the pool; without a
  // listener that would crash the process (pg-pool README, "error" event).
  pool.on('error', (error) => deps.onError?.('idle PostgreSQL connection', error));
  return pool;
}

export async function createConnections(
  config: Pick<RuntimeConfig, 'redis' | 'database'> & { aws?: RuntimeConfig['aws'] },
  deps: ConnectionDeps = {},
): Promise<Connections> {
  const [redis, pool] = await Promise.all([
    createRedis(config.redis, deps),
    createPool(config.database, { aws: config.aws, ...deps }),
  ]);
  return {
    redis,
    pool,
    async close() {
      redis.disconnect();
      await pool.end();
    },
  };
}
