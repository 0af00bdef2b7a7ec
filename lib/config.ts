// The only module that reads process.env. Every entry point calls one of the
// load functions once, at its edge; everything else receives plain objects.
// Each load function collects every problem before it throws, so a user fixes
// them all in one pass.

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

// Services whose endpoint can be overridden, keyed by the SDK's service id as it
// appears in AWS_ENDPOINT_URL_<SERVICE> (AWS shared config "services" section).
export const Service = {
  s3: 'S3',
  sns: 'SNS',
  sqs: 'SQS',
  sts: 'STS',
  ec2: 'EC2',
  iam: 'IAM',
  ecr: 'ECR',
  lambda: 'LAMBDA',
  elasticache: 'ELASTICACHE',
  rds: 'RDS',
  secretsManager: 'SECRETS_MANAGER',
  scheduler: 'SCHEDULER',
  logs: 'CLOUDWATCH_LOGS',
  cloudwatch: 'CLOUDWATCH',
  tagging: 'RESOURCE_GROUPS_TAGGING_API',
} as const;
export type ServiceName = keyof typeof Service;

export interface AwsConfig {
  region: string | undefined;
  // undefined: the SDK's own endpoint resolution (real AWS)
  endpoints: Partial<Record<ServiceName, string>>;
  // emulators serve buckets by path (http://host/bucket/key), not by virtual host
  s3ForcePathStyle: boolean;
  // Set only by local/stack.ts (the local emulator's fixed dummy keys: it
  // accepts any) and by tests (moto's IAM users and assumed roles). Never read
  // from the environment: real credentials always come from the SDK's default
  // provider chain.
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

export interface StackConfig {
  app: string;
  stage: string;
}

export const Architecture = { arm64: 'arm64', x86_64: 'x86_64' } as const;
export type Architecture = (typeof Architecture)[keyof typeof Architecture];

export interface FunctionSettings {
  timeoutSeconds: number;
  memoryMb: number;
  architecture: Architecture;
  batchSize: number;
  batchingWindowSeconds: number;
  maxConcurrency: number;
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
  queueRetentionSeconds: number;
  dlqRetentionSeconds: number;
  logRetentionDays: number;
}

export interface BufferSettings {
  // Redis key prefix shared by the dedupe marks, the stream and the flush lock
  keyPrefix: string;
  // how long a seen-event mark lives: longer than any redelivery (SQS keeps a message ≤ 14 days)
  dedupeTtlSeconds: number;
  flushMaxEntries: number;
  // the flush lock's lease: renewed while a flush runs, so a flusher that dies
  // holds the others back for this long at most
  flushLockMs: number;
  claimIdleMs: number;
  // how long a flush waits, once it holds the lock, for records being appended
  // at that moment to join its commit: fewer, larger transactions under load
  flushGatherMs: number;
}

export interface RedisSettings {
  url?: string | undefined;
  host?: string | undefined;
  port: number;
  tls: boolean;
  authSecretArn?: string | undefined;
}

export interface DatabaseSettings {
  url?: string | undefined;
  host?: string | undefined;
  port: number;
  name: string;
  // deployed, one of: the RDS master secret (the migration function, the ops
  // commands), or a user that signs in with an IAM authentication token (the
  // counting and flush functions)
  secretArn?: string | undefined;
  iamUser?: string | undefined;
  caFile?: string | undefined;
  schema: string;
  poolMax: number;
}

export interface RuntimeConfig {
  aws: AwsConfig;
  stack: StackConfig;
  buffer: BufferSettings;
  redis: RedisSettings;
  database: DatabaseSettings;
}

export interface ProvisionSettings {
  cacheNodeType: string;
  cacheEngine: 'valkey' | 'redis';
  dbInstanceClass: string;
  dbAllocatedStorageGb: number;
  dbBackupRetentionDays: number;
  dbDeletionProtection: boolean;
  ecrKeepImages: number;
  alertEmail?: string | undefined;
  vpcCidr: string;
  // PERMISSIONS_BOUNDARY: the managed policy every role up.ts creates carries,
  // by name or ARN; undefined: <APP>-boundary in the caller's account
  permissionsBoundary?: string | undefined;
  // GITHUB_REPOSITORY (owner/name): up.ts provisions the role generate.yml
  // assumes, trusting that repository's main branch; GitHub Actions sets it in
  // every workflow run
  githubRepository?: string | undefined;
}

export interface DeployConfig {
  aws: AwsConfig;
  stack: StackConfig;
  fn: FunctionSettings;
  provision: ProvisionSettings;
}

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number, why = ''): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(
        `${name}=${value} must be a whole number from ${min} to ${max}${why ? ` (${why})` : ''}`,
      );
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(value)) return true;
    if (['0', 'false', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name}=${value} must be true or false`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problems.push(`${name}=${value} must be one of ${allowed.join(', ')}`);
    return fallback;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name} must use ${protocols.join(' or ')} (got ${parsed.protocol})`);
      }
    } catch {
      this.problems.push(`${name} is not a URL (e.g. ${protocols[0]}//127.0.0.1)`);
    }
    return value;
  }

  check(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

// Lowercase, digits and hyphens: every AWS name derived from it (S3 bucket,
// RDS identifier, ElastiCache id) accepts that alphabet, and the stage must fit
// within the 63-character S3 bucket limit beside the account id and region.
const namePattern = /^[a-z][a-z0-9-]*[a-z0-9]$/;

function readStack(r: Reader): StackConfig {
  const app = r.string('APP', 'ada-linecount');
  const stage = r.string('STAGE', 'dev');
  if (!namePattern.test(app) || app.length > 20) {
    r.problems.push(`APP=${app} must be 2-20 lowercase letters, digits or hyphens, starting with a letter`);
  }
  if (!namePattern.test(stage) || stage.length > 10) {
    r.problems.push(
      `STAGE=${stage} must be 2-10 lowercase letters, digits or hyphens, starting with a letter`,
    );
  }
  return { app, stage };
}

function readAws(r: Reader): AwsConfig {
  const region = r.raw('AWS_REGION') ?? r.raw('AWS_DEFAULT_REGION');
  const shared = r.url('AWS_ENDPOINT_URL', ['http:', 'https:']);
  const endpoints: Partial<Record<ServiceName, string>> = {};
  for (const [name, id] of Object.entries(Service) as [ServiceName, string][]) {
    const endpoint = r.url(`AWS_ENDPOINT_URL_${id}`, ['http:', 'https:']) ?? shared;
    if (endpoint !== undefined) endpoints[name] = endpoint;
  }
  const s3ForcePathStyle = r.bool('AWS_S3_FORCE_PATH_STYLE', endpoints.s3 !== undefined);
  return { region, endpoints, s3ForcePathStyle };
}

// Every command that calls AWS needs a region; say so before the first call
// instead of letting the SDK fail with "Region is missing" mid-run.
function requireRegion(r: Reader, aws: AwsConfig): void {
  if (aws.region === undefined) {
    r.problems.push(
      'AWS_REGION is not set (e.g. export AWS_REGION=us-east-1, or set region in ~/.aws/config)',
    );
  }
}

export function loadAwsConfig(env: Env = process.env): AwsConfig {
  const r = new Reader(env);
  const aws = readAws(r);
  requireRegion(r, aws);
  r.check();
  return aws;
}

export function loadStackConfig(env: Env = process.env): StackConfig {
  const r = new Reader(env);
  const stack = readStack(r);
  r.check();
  return stack;
}

// CloudWatch Logs accepts only these retention values (PutRetentionPolicy)
const logRetentionChoices = ['1', '3', '5', '7', '14', '30', '60', '90', '180', '365'] as const;

function readFunction(r: Reader): FunctionSettings {
  const timeoutSeconds = r.int('FUNCTION_TIMEOUT_SECONDS', 60, 3, 900);
  const batchingWindowSeconds = r.int('BATCHING_WINDOW_SECONDS', 5, 0, 300);
  // AWS: a queue's visibility timeout must be at least 6 × the function timeout
  // plus the batching window, or messages reappear while still being processed.
  const minimumVisibility = 6 * timeoutSeconds + batchingWindowSeconds;
  const visibilityTimeoutSeconds = r.int('QUEUE_VISIBILITY_TIMEOUT_SECONDS', minimumVisibility, 0, 43_200);
  if (visibilityTimeoutSeconds < minimumVisibility) {
    r.problems.push(
      `QUEUE_VISIBILITY_TIMEOUT_SECONDS=${visibilityTimeoutSeconds} must be at least 6 × FUNCTION_TIMEOUT_SECONDS + BATCHING_WINDOW_SECONDS = ${minimumVisibility}`,
    );
  }
  const batchSize = r.int('BATCH_SIZE', 10, 1, 10_000);
  // "When you set BatchSize to a value greater than 10, you must set
  // MaximumBatchingWindowInSeconds to at least 1" (CreateEventSourceMapping API
  // reference, MaximumBatchingWindowInSeconds): Lambda refuses the mapping.
  if (batchSize > 10 && batchingWindowSeconds < 1) {
    r.problems.push(
      `BATCH_SIZE=${batchSize} needs BATCHING_WINDOW_SECONDS of at least 1 (Lambda takes more than 10 messages per batch only with a batching window): set BATCHING_WINDOW_SECONDS=1 or more, or BATCH_SIZE=10 or less`,
    );
  }
  // A message is acknowledged only once its record is committed, so while
  // PostgreSQL is down every receive of it fails; the queue moves it to the
  // DLQ on the receive after the maxReceiveCount-th. Failed messages come back
  // after the visibility timeout, so the maxReceiveCount-th receive comes
  // (maxReceiveCount - 1) × visibility after the first: an outage shorter than
  // that dead-letters nothing (the defaults: 4 × 365 s, over 24 minutes). With
  // DB_OUTAGE_TOLERANCE_SECONDS set, settings that give less are refused.
  const maxReceiveCount = r.int(
    'MAX_RECEIVE_COUNT',
    5,
    5,
    1_000,
    'AWS recommends at least 5 so throttles do not dead-letter',
  );
  const tolerance =
    r.raw('DB_OUTAGE_TOLERANCE_SECONDS') === undefined
      ? undefined
      : r.int('DB_OUTAGE_TOLERANCE_SECONDS', 0, 0, 1_209_600);
  const ridesOut = outageToleranceSeconds({ maxReceiveCount, visibilityTimeoutSeconds });
  if (tolerance !== undefined && ridesOut < tolerance) {
    r.problems.push(
      `DB_OUTAGE_TOLERANCE_SECONDS=${tolerance} needs (MAX_RECEIVE_COUNT - 1) × QUEUE_VISIBILITY_TIMEOUT_SECONDS ≥ ${tolerance}, but ${maxReceiveCount - 1} × ${visibilityTimeoutSeconds} = ${ridesOut}: raise either one`,
    );
  }
  const queueRetentionSeconds = r.int('QUEUE_RETENTION_SECONDS', 4 * 86_400, 60, 1_209_600);
  const dlqRetentionSeconds = r.int('DLQ_RETENTION_SECONDS', 1_209_600, 60, 1_209_600);
  // A message moved to the DLQ keeps its original enqueue time, so the DLQ
  // must keep messages longer than the source queue or they expire on arrival.
  if (dlqRetentionSeconds <= queueRetentionSeconds) {
    r.problems.push(
      `DLQ_RETENTION_SECONDS=${dlqRetentionSeconds} must be longer than QUEUE_RETENTION_SECONDS=${queueRetentionSeconds}`,
    );
  }
  return {
    timeoutSeconds,
    memoryMb: r.int('FUNCTION_MEMORY_MB', 512, 128, 10_240),
    architecture: r.oneOf(
      'FUNCTION_ARCHITECTURE',
      [Architecture.arm64, Architecture.x86_64],
      Architecture.arm64,
    ),
    batchSize,
    batchingWindowSeconds,
    maxConcurrency: r.int('MAX_CONCURRENCY', 5, 2, 1_000, 'the event source mapping minimum is 2'),
    maxReceiveCount,
    visibilityTimeoutSeconds,
    queueRetentionSeconds,
    dlqRetentionSeconds,
    logRetentionDays: Number(r.oneOf('LOG_RETENTION_DAYS', logRetentionChoices, '30')),
  };
}

// The longest PostgreSQL outage that dead-letters no message (see readFunction).
export function outageToleranceSeconds(
  fn: Pick<FunctionSettings, 'maxReceiveCount' | 'visibilityTimeoutSeconds'>,
): number {
  return (fn.maxReceiveCount - 1) * fn.visibilityTimeoutSeconds;
}

// The function's settings alone (batch size, concurrency, ...): for tools
// such as the benchmarks that model the event source without deploying.
export function loadFunctionSettings(env: Env = process.env): FunctionSettings {
  const r = new Reader(env);
  const fn = readFunction(r);
  r.check();
  return fn;
}

export function loadDeployConfig(env: Env = process.env): DeployConfig {
  const r = new Reader(env);
  const aws = readAws(r);
  requireRegion(r, aws);
  const stack = readStack(r);
  const fn = readFunction(r);
  const alertEmail = r.raw('ALERT_EMAIL');
  if (alertEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alertEmail)) {
    r.problems.push(`ALERT_EMAIL=${alertEmail} is not an e-mail address`);
  }
  const provision: ProvisionSettings = {
    cacheNodeType: r.string('CACHE_NODE_TYPE', 'cache.t4g.micro'),
    cacheEngine: r.oneOf('CACHE_ENGINE', ['valkey', 'redis'] as const, 'valkey'),
    dbInstanceClass: r.string('DB_INSTANCE_CLASS', 'db.t4g.micro'),
    dbAllocatedStorageGb: r.int('DB_ALLOCATED_STORAGE_GB', 20, 20, 65_536),
    dbBackupRetentionDays: r.int('DB_BACKUP_RETENTION_DAYS', 7, 1, 35, 'backups stay on'),
    dbDeletionProtection: r.bool('DB_DELETION_PROTECTION', false),
    ecrKeepImages: r.int('ECR_KEEP_IMAGES', 10, 1, 1_000),
    alertEmail,
    vpcCidr: r.string('VPC_CIDR', '10.42.0.0/16'),
  };
  if (!/^\d+\.\d+\.0\.0\/16$/.test(provision.vpcCidr)) {
    r.problems.push(`VPC_CIDR=${provision.vpcCidr} must be a /16 such as 10.42.0.0/16`);
  }
  readAccess(r, provision);
  r.check();
  return { aws, stack, fn, provision };
}

// IAM names: letters, digits and +=,.@_- (IAM User Guide, "IAM object quotas"),
// a managed policy's path between slashes; GitHub owners and repositories:
// letters, digits, hyphens, and also dots and underscores in a repository name.
const policyName = /^[\w+=,.@-]{1,128}$/;
const policyArn = /^arn:aws[\w-]*:iam::\d{12}:policy\/([\w+=,.@-]+\/)*[\w+=,.@-]{1,128}$/;
const githubRepository = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;

function readAccess(r: Reader, provision: ProvisionSettings): void {
  const boundary = r.raw('PERMISSIONS_BOUNDARY');
  if (boundary !== undefined && !policyName.test(boundary) && !policyArn.test(boundary)) {
    r.problems.push(
      `PERMISSIONS_BOUNDARY=${boundary} must be a managed policy's name (e.g. ada-linecount-boundary) or ARN (arn:aws:iam::123456789012:policy/ada-linecount-boundary)`,
    );
  }
  provision.permissionsBoundary = boundary;
  const repository = r.raw('GITHUB_REPOSITORY');
  if (repository !== undefined && !githubRepository.test(repository)) {
    r.problems.push(
      `GITHUB_REPOSITORY=${repository} must be owner/name, e.g. ada-contabilidade/ada-linecount`,
    );
  }
  provision.githubRepository = repository;
}

function readRedis(r: Reader): RedisSettings {
  return {
    url: r.url('REDIS_URL', ['redis:', 'rediss:']),
    host: r.raw('REDIS_HOST'),
    port: r.int('REDIS_PORT', 6379, 1, 65_535),
    tls: r.bool('REDIS_TLS', true),
    authSecretArn: r.raw('REDIS_AUTH_SECRET_ARN'),
  };
}

function readDatabase(r: Reader): DatabaseSettings {
  const database: DatabaseSettings = {
    url: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    host: r.raw('DB_HOST'),
    port: r.int('DB_PORT', 5432, 1, 65_535),
    name: r.string('DB_NAME', 'linecount'),
    secretArn: r.raw('DB_SECRET_ARN'),
    iamUser: r.raw('DB_IAM_USER'),
    caFile: r.raw('DB_CA_FILE'),
    schema: r.string('DB_SCHEMA', 'public'),
    poolMax: r.int('DB_POOL_MAX', 2, 1, 100),
  };
  if (!sqlIdentifier.test(database.schema)) {
    r.problems.push(`DB_SCHEMA=${database.schema} must be a lowercase SQL identifier`);
  }
  if (database.iamUser !== undefined && !sqlIdentifier.test(database.iamUser)) {
    r.problems.push(`DB_IAM_USER=${database.iamUser} must be a lowercase SQL identifier`);
  }
  return database;
}

// Lowercase, so the name is the same quoted or not, and at most 63 bytes
// (PostgreSQL's NAMEDATALEN - 1; a longer identifier is truncated).
const sqlIdentifier = /^[a-z_][a-z0-9_]{0,62}$/;

function readBuffer(r: Reader, stack: StackConfig): BufferSettings {
  return {
    keyPrefix: r.string('REDIS_KEY_PREFIX', `${stack.app}:${stack.stage}:`),
    dedupeTtlSeconds: r.int('DEDUPE_TTL_SECONDS', 15 * 86_400, 60, 365 * 86_400),
    flushMaxEntries: r.int('FLUSH_MAX_ENTRIES', 5_000, 1, 100_000),
    flushLockMs: r.int('FLUSH_LOCK_MS', 1_500, 300, 60_000),
    claimIdleMs: r.int('FLUSH_CLAIM_IDLE_MS', 60_000, 1_000, 3_600_000),
    flushGatherMs: r.int('FLUSH_GATHER_MS', 2, 0, 1_000),
  };
}

function readRuntime(r: Reader): RuntimeConfig {
  const aws = readAws(r);
  const stack = readStack(r);
  return { aws, stack, buffer: readBuffer(r, stack), redis: readRedis(r), database: readDatabase(r) };
}

export function loadRuntimeConfig(env: Env = process.env): RuntimeConfig {
  const r = new Reader(env);
  const config = readRuntime(r);
  const { redis, database } = config;
  if (redis.url === undefined && redis.host === undefined) {
    r.problems.push(
      'set REDIS_URL (e.g. redis://127.0.0.1:6379) or REDIS_HOST with REDIS_AUTH_SECRET_ARN (as the deployed function does)',
    );
  }
  if (
    database.url === undefined &&
    (database.host === undefined || (database.secretArn === undefined && database.iamUser === undefined))
  ) {
    r.problems.push(
      'set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test), or DB_HOST with DB_IAM_USER (as the deployed function does) or with DB_SECRET_ARN',
    );
  }
  checkDatabaseSignIn(r, config.aws, database);
  r.check();
  return config;
}

// One way to sign in: a token is signed for a region, and a user named twice
// would leave it unclear which one connects.
function checkDatabaseSignIn(r: Reader, aws: AwsConfig, database: DatabaseSettings): void {
  if (database.url !== undefined) return;
  if (database.iamUser !== undefined && database.secretArn !== undefined) {
    r.problems.push('DB_IAM_USER and DB_SECRET_ARN are both set: keep the one this program signs in with');
  }
  if (database.iamUser !== undefined && aws.region === undefined) {
    r.problems.push(
      'DB_IAM_USER needs AWS_REGION: an IAM authentication token is signed for the region of the database',
    );
  }
}

// The migration function (lambda-image/migrate.ts): it connects as the master
// user, creates the tables, and creates the application role and its grants.
export interface MigrationConfig {
  aws: AwsConfig;
  stack: StackConfig;
  database: DatabaseSettings;
  // the role the counting and flush functions sign in as
  applicationUser: string;
}

export function loadMigrationConfig(env: Env = process.env): MigrationConfig {
  const r = new Reader(env);
  const aws = readAws(r);
  const stack = readStack(r);
  const database = readDatabase(r);
  const applicationUser = r.raw('DB_APP_USER');
  if (applicationUser === undefined) {
    r.problems.push('set DB_APP_USER: the PostgreSQL role the counting and flush functions connect as');
  } else if (!sqlIdentifier.test(applicationUser)) {
    r.problems.push(`DB_APP_USER=${applicationUser} must be a lowercase SQL identifier`);
  }
  if (database.url === undefined && (database.host === undefined || database.secretArn === undefined)) {
    r.problems.push(
      'set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) or DB_HOST with DB_SECRET_ARN, the master user secret (as the deployed migration does)',
    );
  }
  if (database.url === undefined && database.iamUser !== undefined) {
    r.problems.push('DB_IAM_USER is not for the migration: it connects as the master user (DB_SECRET_ARN)');
  }
  r.check();
  return { aws, stack, database, applicationUser: applicationUser ?? '' };
}

// The ops commands (ops/*.ts). Each needs a different part of the stack, and
// each fills what the environment leaves out from the stage's outputs file
// (.ada/outputs.<stage>.json), so nothing is required here.
export type OpsConfig = RuntimeConfig;

export function loadOpsConfig(env: Env = process.env): OpsConfig {
  const r = new Reader(env);
  const config = readRuntime(r);
  r.check();
  return config;
}

// Local tools (the demo, tests, ops commands pointed at the emulator) only need
// the optional service URLs; they choose embedded defaults when these are absent.
interface LocalConfig {
  redisUrl?: string | undefined;
  databaseUrl?: string | undefined;
  emulatorPort: number;
}

export function loadLocalConfig(env: Env = process.env): LocalConfig {
  const r = new Reader(env);
  const config: LocalConfig = {
    redisUrl: r.url('REDIS_URL', ['redis:', 'rediss:']),
    databaseUrl: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    emulatorPort: r.int('LOCAL_AWS_PORT', 4566, 0, 65_535),
  };
  r.check();
  return config;
}

// The test suite's services: the machine's PostgreSQL and Redis unless these
// point elsewhere; under CI every test must run (none may skip for a missing tool).
interface TestConfig {
  databaseUrl: string;
  redisUrl: string;
  // moto servers for test/moto (.ci/run starts both): a plain one, and one
  // started with IAM enforcement (MOTO_AUTH). Unset, those tests skip.
  motoUrl?: string | undefined;
  motoIamUrl?: string | undefined;
  ci: boolean;
}

export function loadTestConfig(env: Env = process.env): TestConfig {
  const r = new Reader(env);
  const config: TestConfig = {
    databaseUrl:
      r.url('TEST_DATABASE_URL', ['postgres:', 'postgresql:']) ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: r.url('TEST_REDIS_URL', ['redis:', 'rediss:']) ?? 'redis://127.0.0.1:6379',
    motoUrl: r.url('MOTO_URL', ['http:', 'https:']),
    motoIamUrl: r.url('MOTO_IAM_URL', ['http:', 'https:']),
    ci: r.raw('CI') !== undefined && r.raw('CI') !== 'false',
  };
  // IAM enforcement is a setting of the whole moto process: on the plain
  // server it would deny every other test's calls
  if (config.motoIamUrl !== undefined && config.motoIamUrl === config.motoUrl) {
    r.problems.push(
      'MOTO_IAM_URL must name a second moto server, started with MOTO_AUTH, not the one at MOTO_URL',
    );
  }
  r.check();
  return config;
}
