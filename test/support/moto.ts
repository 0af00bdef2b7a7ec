import { DescribeVpcEndpointsCommand } from '@aws-sdk/client-ec2';
import { DescribeRepositoriesCommand, ListTagsForResourceCommand as ListEcrTags } from '@aws-sdk/client-ecr';
import {
  CacheParameterGroupNotFoundFault,
  DescribeCacheParameterGroupsCommand,
} from '@aws-sdk/client-elasticache';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  IAMServiceException,
  ListRolesCommand,
  ListRoleTagsCommand,
  ListUsersCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import { GetFunctionCommand, type InvocationRequest } from '@aws-sdk/client-lambda';
import {
  DescribeDBParameterGroupsCommand,
  DescribeDBSubnetGroupsCommand,
  ListTagsForResourceCommand as ListRdsTags,
} from '@aws-sdk/client-rds';
import {
  DeleteBucketPolicyCommand,
  GetBucketPolicyCommand,
  PutBucketPolicyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  MetadataBearer,
  MiddlewareStack,
} from '@smithy/types';
import { type Clients, createClients, destroyClients } from '../../lib/clients.ts';
import {
  type AwsConfig,
  type Env,
  loadAwsConfig,
  loadDeployConfig,
  loadTestConfig,
  Service,
  type ServiceName,
} from '../../lib/config.ts';
import { PolicyFile } from '../../lib/policy-files.ts';
import type { Ctx, Mode } from '../../lib/reconcile.ts';
import type { PolicyDocument, PolicyStatement } from '../../provision/policy.ts';
import { ensureBoundary } from '../../provision/resources/boundary.ts';
import { fromTagList } from '../../provision/tags.ts';
import { createContext, type ProvisionOptions } from '../../provision/up.ts';
import { findLeftovers, type TeardownOptions } from '../../teardown/down.ts';
import { isMutating, type RecordedCall } from '../fakes/calls.ts';
import { invocationAnswer, migrationRuntime } from '../fakes/lambda.ts';
import { collectingLog } from '../provision/context.ts';
import { policyFile } from './iam/principals.ts';
import type { MigrationTarget } from './migration.ts';

// moto (github.com/getmoto/moto) as a second, independent control plane for
// the tests under test/moto: the real provision/up.ts and teardown/down.ts run
// against it with real SDK clients (AWS_ENDPOINT_URL). Two servers:
//   MOTO_URL      plain moto, shared by every test file (each uses its own stages)
//   MOTO_IAM_URL  a moto started with IAM enforcement (MOTO_AUTH=N); one test file
//                 at a time owns it, because bootstrapIam resets it
// .ci/run starts both from ../shared/moto when nothing answers. Without them the
// tests skip with the reason; under CI they run and fail instead.
//
// moto differs from AWS in ways these helpers work around, each said where it is
// handled (the production code follows AWS):
//   - resources are ready at once, so the waits are shortened to the first poll;
//   - no registry API: up is given an image by digest (ProvisionOptions.imageUri),
//     since building one pushes blobs through ECR's registry API; moto's
//     CreateFunction does not check that the image exists, AWS's does;
//   - bucket policies are evaluated without their conditions, but for
//     StringEquals (liftBucketPolicy);
//   - its IAM enforcement checks resource ARNs only for S3 (policyAsMotoEvaluates);
//   - its trust-policy check does not accept an account root principal, so a
//     test role trusts a named user (assumeRoleWith);
//   - it cannot Invoke a container-image function (moto 5.2.3,
//     LambdaBackend.invoke: "Invoking a Function with PackageType=Image is not
//     yet supported"; it would start the image in Docker), so up's invocation of
//     the migration function is answered before it is sent, by running what that
//     function runs on a schema of the test PostgreSQL (runMigrationsLocally).

const testConfig = loadTestConfig();

export const motoRegion = 'us-east-1';
export const motoAccount = '123456789012';
// plain moto checks no signature: any keys do
export const anyCredentials = { accessKeyId: 'moto', secretAccessKey: 'moto' } as const;
// the unauthenticated requests that create the admin on the IAM-enforcing server:
// CreateUser, PutUserPolicy, CreateAccessKey (.ci/run starts it with MOTO_AUTH=3)
export const motoAuthBootstrapRequests = 3;

export type Credentials = NonNullable<AwsConfig['credentials']>;

export type MotoKind = 'plain' | 'iam';

const variable = { plain: 'MOTO_URL', iam: 'MOTO_IAM_URL' } as const;
const how = {
  plain: '../shared/moto/start.sh PORT',
  iam: 'MOTO_AUTH=3 ../shared/moto/start.sh PORT',
} as const;

export interface MotoTarget {
  url: string | undefined;
  // why it cannot be used; a reason to skip outside CI, a failure under CI
  problem: string | undefined;
  skip: string | false;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(new URL('/moto-api/', url), { signal: AbortSignal.timeout(3_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export async function findMoto(kind: MotoKind): Promise<MotoTarget> {
  const url = kind === 'plain' ? testConfig.motoUrl : testConfig.motoIamUrl;
  let problem: string | undefined;
  if (url === undefined) {
    problem = `${variable[kind]} is not set: start moto with ${how[kind]} and export ${variable[kind]}=http://127.0.0.1:PORT (.ci/run does both)`;
  } else if (!(await answers(url))) {
    problem = `nothing answers at ${variable[kind]}=${url}: start moto with ${how[kind]}, or unset it and run .ci/run`;
  }
  return { url, problem, skip: problem !== undefined && !testConfig.ci ? problem : false };
}

export function requireMoto(target: MotoTarget): string {
  if (target.problem !== undefined || target.url === undefined) throw new Error(target.problem);
  return target.url;
}

// up meets moto 5.2.3 gaps (ElastiCache parameter groups, ModifyReplicationGroup, ...)
// that moto_shims.py (../shared/moto, test/support/moto-server) fills; a moto without them fails deep inside up
// with a 500, so say which server to use instead.
export async function checkMotoGaps(url: string, credentials: Credentials = anyCredentials): Promise<void> {
  const clients = createClients(motoAws(url, credentials));
  try {
    await clients.elasticache.send(
      new DescribeCacheParameterGroupsCommand({ CacheParameterGroupName: 'moto-gap-probe' }),
    );
  } catch (error) {
    if (error instanceof CacheParameterGroupNotFoundFault) return;
    throw new Error(
      `moto at ${url} lacks ElastiCache parameter groups (${(error as Error).name}): start it with ../shared/moto/start.sh or test/support/moto-server/serve.py, whose moto_shims.py fills the moto 5.2.3 gaps that up.ts meets`,
      { cause: error },
    );
  } finally {
    destroyClients(clients);
  }
}

// The first step of setting up an account, as provision/bootstrap.ts takes it:
// an administrator creates the permissions boundary every role carries. moto
// keeps it as given; it checks a role's boundary ARN for its form only and
// never applies the boundary to what the role may do.
export async function createBoundary(
  url: string,
  credentials: Credentials = anyCredentials,
): Promise<string> {
  const run = await motoContext(url, { stage: 'boot', credentials });
  try {
    return (await ensureBoundary(run.ctx)).arn;
  } finally {
    run.close();
  }
}

// Clients for moto outside a provisioning run (the admin's, the function's).
export function motoAws(url: string, credentials: Credentials = anyCredentials): AwsConfig {
  return { ...loadAwsConfig({ AWS_REGION: motoRegion, AWS_ENDPOINT_URL: url }), credentials };
}

// A policy file of docs/ with its placeholders filled in, as a user would: the
// deployer is the IAM user `deployer` (DEPLOYER: user/deployer)
export function motoPolicy(file: PolicyFile, stage: string, deployer = 'user/deployer'): PolicyDocument {
  return policyFile(
    file,
    { partition: 'aws', region: motoRegion, accountId: motoAccount, app: 'ada-linecount', stage },
    deployer,
  ) as PolicyDocument;
}

// A stage per test, unique per process and label: test files running side by
// side on one moto never meet. STAGE allows 10 characters; a pid is at most 5 in base 36.
export function motoStage(label: string): string {
  if (!/^[a-z0-9]{1,4}$/.test(label))
    throw new Error(`stage label ${label}: 1-4 lowercase letters or digits`);
  return `m${process.pid.toString(36)}${label}`;
}

// Every SDK command the run's clients send, in order (service, command, input).
export function recordCalls(clients: Clients): RecordedCall[] {
  const calls: RecordedCall[] = [];
  const recorder =
    (service: string) =>
    (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<object>) => {
      calls.push({
        service,
        command: String(context.commandName).replace(/Command$/, ''),
        input: args.input,
      });
      return next(args);
    };
  for (const service of Object.keys(Service) as ServiceName[]) {
    const stack = clients[service].middlewareStack as MiddlewareStack<object, MetadataBearer>;
    stack.add(recorder(service), { step: 'initialize', name: 'recordMotoCalls' });
  }
  return calls;
}

// moto's IAM enforcement checks each SigV4 signature against the request path
// decoded, so a path holding a percent-encoded ARN (Lambda's ListTags and
// TagResource: /2017-03-31/tags/arn%3Aaws%3Alambda...) never verifies, whoever
// signs it. Its colons are sent as they are, which a path segment allows
// (RFC 3986, section 3.3): the signer and moto then encode the path alike.
// Only the request's spelling changes; AWS accepts either.
export function signPathsAsMotoChecks(clients: Clients): void {
  clients.lambda.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: unknown };
      if (typeof request.path === 'string' && request.path.includes('/tags/')) {
        request.path = request.path.replace(/%3A/gi, ':');
      }
      return next(args);
    },
    { step: 'build', name: 'signPathsAsMotoChecks' },
  );
}

export function mutating(calls: readonly RecordedCall[]): string[] {
  return calls.filter((call) => isMutating(call.command)).map((call) => `${call.service}:${call.command}`);
}

// The migration function's invocations, answered here instead of by moto (see
// the list of differences above): the function's configuration is read from
// moto as up left it, and the migration it names runs, as the Lambda fake runs
// it (test/fakes/lambda.ts), on the target's schema and role; its result or
// error is answered as Lambda answers a synchronous invocation. moto so never
// authorizes lambda:InvokeFunction: the IAM evaluator tests hold the
// deployer's policy to it (test/iam/deployer.test.ts).
export function runMigrationsLocally(clients: Clients, target: MigrationTarget | undefined): void {
  clients.lambda.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'InvokeCommand') return next(args);
      const input = args.input as InvocationRequest;
      const { Configuration } = await clients.lambda.send(
        new GetFunctionCommand({ FunctionName: input.FunctionName }),
      );
      const entry = Configuration?.ImageConfigResponse?.ImageConfig?.Command?.[0];
      if (Configuration === undefined || entry !== 'index.migrateHandler') return next(args);
      if (target === undefined) {
        throw new Error(
          'this moto run has no database for the migration: give motoContext a migration target',
        );
      }
      const output = await invocationAnswer(migrationRuntime(target), input.Payload, {
        configuration: Configuration,
        imageUri: '',
        tags: new Map(),
      });
      return { output: { ...output, $metadata: {} }, response: {} } as never;
    },
    { step: 'initialize', name: 'runMigrationsLocally' },
  );
}

export interface MotoRun {
  ctx: Ctx;
  calls: RecordedCall[];
  close(): void;
}

export async function motoContext(
  url: string,
  options: { stage: string; mode?: Mode; credentials?: Credentials; env?: Env; migration?: MigrationTarget },
): Promise<MotoRun> {
  const loaded = loadDeployConfig({
    AWS_REGION: motoRegion,
    AWS_ENDPOINT_URL: url,
    STAGE: options.stage,
    ...options.env,
  });
  const config = { ...loaded, aws: { ...loaded.aws, credentials: options.credentials ?? anyCredentials } };
  const clients = createClients(config.aws);
  const calls = recordCalls(clients);
  signPathsAsMotoChecks(clients);
  runMigrationsLocally(clients, options.migration);
  const ctx = await createContext(config, clients, collectingLog(), options.mode ?? 'apply');
  return { ctx, calls, close: () => destroyClients(clients) };
}

// moto's resources are ready at once: every wait ends at its first poll.
const waits = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };
const shortWaits = {
  network: { waits: { ...waits, dependencyTimeoutSeconds: 5 } },
  cache: { waits },
  database: { waits },
};

export const motoImageDigest = `sha256:${'5'.repeat(64)}`;

// moto serves no registry API, so the image is given by digest, as --image-uri
// would give it, instead of built and pushed (lambda-image/publish.ts).
export function motoProvisionOptions(ctx: Ctx): ProvisionOptions {
  return {
    ...shortWaits,
    imageUri: `${ctx.identity.accountId}.dkr.ecr.${ctx.identity.region}.amazonaws.com/${ctx.names.repository}@${motoImageDigest}`,
  };
}

export const motoTeardownOptions: TeardownOptions = { force: false, finalSnapshot: false, ...shortWaits };

// moto evaluates a bucket policy's statements without their conditions (only
// StringEquals is known to it), so the stack's TLS-only statement
// (Deny s3:* when aws:SecureTransport is false) refuses every object request,
// over HTTPS too; an HTTPS endpoint would not help. Tests lift the policy around
// their own object requests and put it back; AWS needs none of this.
export async function liftBucketPolicy(s3: S3Client, Bucket: string): Promise<() => Promise<void>> {
  const { Policy } = await s3.send(new GetBucketPolicyCommand({ Bucket }));
  await s3.send(new DeleteBucketPolicyCommand({ Bucket }));
  return async () => {
    await s3.send(new PutBucketPolicyCommand({ Bucket, Policy }));
  };
}

// What carries the stack's tags: the tagging API (what down.ts lists after a
// teardown), plus the types moto's tagging API does not index, read from their
// own services: IAM roles, ECR repositories, VPC endpoints, RDS subnet and
// parameter groups. Secrets in their recovery window are reported apart.
export async function taggedWithStack(ctx: Ctx): Promise<{ live: string[]; deletedSecrets: string[] }> {
  const { clients, names } = ctx;
  const ours = (tags: Record<string, string>) =>
    Object.entries(names.tags).every(([key, value]) => tags[key] === value);
  const found = new Set((await findLeftovers(ctx)).filter((l) => ours(l.tags)).map((l) => l.arn));

  for (const role of (await clients.iam.send(new ListRolesCommand({}))).Roles ?? []) {
    if (role.RoleName === undefined || role.Arn === undefined) continue;
    const { Tags } = await clients.iam.send(new ListRoleTagsCommand({ RoleName: role.RoleName }));
    if (ours(fromTagList(Tags))) found.add(role.Arn);
  }
  for (const repository of (await clients.ecr.send(new DescribeRepositoriesCommand({}))).repositories ?? []) {
    if (repository.repositoryArn === undefined) continue;
    const { tags } = await clients.ecr.send(new ListEcrTags({ resourceArn: repository.repositoryArn }));
    if (ours(fromTagList(tags))) found.add(repository.repositoryArn);
  }
  const endpoints = await clients.ec2.send(
    new DescribeVpcEndpointsCommand({
      Filters: Object.entries(names.tags).map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
    }),
  );
  for (const endpoint of endpoints.VpcEndpoints ?? []) {
    if (String(endpoint.State).toLowerCase() !== 'deleted')
      found.add(`vpc-endpoint/${endpoint.VpcEndpointId}`);
  }
  const rdsArns = [
    ...((await clients.rds.send(new DescribeDBSubnetGroupsCommand({}))).DBSubnetGroups ?? []).map(
      (g) => g.DBSubnetGroupArn,
    ),
    ...((await clients.rds.send(new DescribeDBParameterGroupsCommand({}))).DBParameterGroups ?? []).map(
      (g) => g.DBParameterGroupArn,
    ),
  ];
  for (const arn of rdsArns) {
    if (arn === undefined) continue;
    const { TagList } = await clients.rds.send(new ListRdsTags({ ResourceName: arn }));
    if (ours(fromTagList(TagList))) found.add(arn);
  }

  const live: string[] = [];
  const deletedSecrets: string[] = [];
  for (const arn of [...found].sort()) {
    if (arn.includes(':secretsmanager:')) {
      const secret = await clients.secretsManager.send(new DescribeSecretCommand({ SecretId: arn }));
      if (secret.DeletedDate !== undefined) {
        deletedSecrets.push(arn);
        continue;
      }
    }
    live.push(arn);
  }
  return { live, deletedSecrets };
}

// ---- IAM enforcement ----

// moto's IAM enforcement differs from AWS's in three ways a policy must be
// translated for, or moto denies what AWS allows:
//   1. Resources: moto authorizes S3 requests against the bucket or object ARN,
//      as AWS does, but every other request against "*" (SQS and IAM use the
//      ARN only when the queue or role already exists, so CreateQueue and a
//      GetRole of a missing role are "*" too). A statement scoped to an ARN never
//      matches "*", so outside S3 the statement's actions are granted on "*".
//   2. Action names: moto names an action by the request's signing name, not the
//      IAM service prefix: CloudWatch signs as "monitoring", the tagging API as
//      "tagging". S3's HeadBucket is s3:ListBucket in AWS (HeadBucket API
//      reference, Permissions) and s3:HeadBucket in moto.
//      moto authorizes DeleteObjects (a POST to the bucket) against the bucket's
//      ARN, AWS against each key's (DeleteObjects API reference): an object
//      delete granted on bucket/* is granted on the bucket too.
//   3. Conditions: moto evaluates StringEquals on the few keys it knows and
//      ignores the rest, so conditions are kept as they are and do nothing.
// The actions stay exactly the policy's: a missing action is still denied.
// moto's S3 mapping is also looser than AWS's in places no translation can
// tighten: Put/GetBucketEncryption, OwnershipControls and PublicAccessBlock are
// authorized as s3:CreateBucket / s3:ListBucket, and DeleteObjects as
// s3:DeleteObject alone; test/moto/iam.test.ts pins each S3 call's action in moto.
const motoActionAliases: Record<string, string[]> = { 's3:ListBucket': ['s3:HeadBucket'] };

function motoActions(action: string): string[] {
  const [service, name] = action.split(':') as [string, string];
  if (service === 'cloudwatch') return [action, `monitoring:${name}`];
  if (service === 'tag') return [action, `tagging:${name}`];
  return [action, ...(motoActionAliases[action] ?? [])];
}

const objectDeletes = new Set(['s3:DeleteObject', 's3:DeleteObjectVersion']);

function motoS3Resources(statement: PolicyStatement): string | string[] | undefined {
  const resources = [statement.Resource ?? []].flat();
  if (![statement.Action].flat().some((a) => objectDeletes.has(a))) return statement.Resource;
  const buckets = resources.filter((r) => r.includes('/')).map((r) => r.slice(0, r.indexOf('/')));
  return [...new Set([...resources, ...buckets])];
}

export function policyAsMotoEvaluates(policy: PolicyDocument): PolicyDocument {
  const Statement: PolicyStatement[] = [];
  for (const statement of policy.Statement) {
    const actions = [statement.Action].flat();
    const s3 = actions.filter((a) => a.startsWith('s3:')).flatMap(motoActions);
    const other = actions.filter((a) => !a.startsWith('s3:')).flatMap(motoActions);
    if (s3.length > 0) Statement.push({ ...statement, Action: s3, Resource: motoS3Resources(statement) });
    if (other.length > 0) {
      Statement.push({
        ...statement,
        ...(statement.Sid === undefined ? {} : { Sid: `${statement.Sid}OnAnyResource` }),
        Action: other,
        Resource: '*',
      });
    }
  }
  return { Version: policy.Version, Statement };
}

export interface MotoIam {
  url: string;
  admin: Credentials;
  iam: IAMClient;
  // a user holding exactly `policy` as its one inline policy
  createUser(name: string, policy: PolicyDocument): Promise<Credentials>;
  // sts:AssumeRole of a new role holding exactly `policy`, by a user allowed only that
  assumeRoleWith(name: string, policy: PolicyDocument): Promise<Credentials>;
  close(): void;
}

async function motoApi(url: string, path: string, body?: string): Promise<string> {
  const response = await fetch(new URL(path, url), {
    method: 'POST',
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'text/plain' } }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (!response.ok)
    throw new Error(`POST ${path} on moto at ${url}: ${response.status} ${text.slice(0, 200)}`);
  return text;
}

const allowAll: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

// Forgets every resource and user on the IAM-enforcing server, reopens its
// window of unauthenticated requests (moto's /moto-api/reset-auth) and spends it
// on an admin user, so a second run against the same server starts alike.
// Refuses a server started without MOTO_AUTH: turning enforcement on there
// would deny the calls of every other test using it.
export async function bootstrapIam(url: string): Promise<MotoIam> {
  const previous = JSON.parse(
    await motoApi(url, '/moto-api/reset-auth', String(motoAuthBootstrapRequests)),
  ) as {
    PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT?: string;
  };
  if (!Number.isFinite(Number(previous.PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT))) {
    await motoApi(url, '/moto-api/reset-auth', 'inf');
    throw new Error(
      `MOTO_IAM_URL=${url} is a moto started without IAM enforcement: start a second one with MOTO_AUTH=3 ../shared/moto/start.sh PORT`,
    );
  }
  await motoApi(url, '/moto-api/reset');
  const aws = motoAws(url);
  const open = new IAMClient({ region: motoRegion, endpoint: url, credentials: anyCredentials });
  await open.send(new CreateUserCommand({ UserName: 'moto-admin' }));
  await open.send(
    new PutUserPolicyCommand({
      UserName: 'moto-admin',
      PolicyName: 'all',
      PolicyDocument: JSON.stringify(allowAll),
    }),
  );
  const key = (await open.send(new CreateAccessKeyCommand({ UserName: 'moto-admin' }))).AccessKey;
  // the window is spent: from here on keys moto does not know are refused
  const refused = await open.send(new ListUsersCommand({})).then(
    () => false,
    (error: unknown) => error instanceof IAMServiceException && error.name === 'InvalidClientTokenId',
  );
  open.destroy();
  if (!refused) throw new Error(`moto at ${url} accepted unknown keys after bootstrap: IAM is not enforced`);
  if (key?.AccessKeyId === undefined || key.SecretAccessKey === undefined)
    throw new Error('moto returned no access key');
  const admin = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  const iam = new IAMClient({ region: motoRegion, endpoint: aws.endpoints.iam, credentials: admin });
  const sts: STSClient[] = [];

  async function createUser(name: string, policy: PolicyDocument): Promise<Credentials> {
    await iam.send(new CreateUserCommand({ UserName: name }));
    await iam.send(
      new PutUserPolicyCommand({ UserName: name, PolicyName: name, PolicyDocument: JSON.stringify(policy) }),
    );
    const created = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
    if (created?.AccessKeyId === undefined || created.SecretAccessKey === undefined) {
      throw new Error(`moto returned no access key for ${name}`);
    }
    return { accessKeyId: created.AccessKeyId, secretAccessKey: created.SecretAccessKey };
  }

  async function assumeRoleWith(name: string, policy: PolicyDocument): Promise<Credentials> {
    const roleArn = `arn:aws:iam::${motoAccount}:role/${name}`;
    const caller = `${name}-caller`;
    const callerCredentials = await createUser(caller, {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn }],
    });
    await iam.send(
      new CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: `arn:aws:iam::${motoAccount}:user/${caller}` },
              Action: 'sts:AssumeRole',
            },
          ],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({ RoleName: name, PolicyName: name, PolicyDocument: JSON.stringify(policy) }),
    );
    const client = new STSClient({
      region: motoRegion,
      endpoint: aws.endpoints.sts,
      credentials: callerCredentials,
    });
    sts.push(client);
    const assumed = (await client.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: name })))
      .Credentials;
    if (
      assumed?.AccessKeyId === undefined ||
      assumed.SecretAccessKey === undefined ||
      assumed.SessionToken === undefined
    ) {
      throw new Error(`moto returned no credentials for ${roleArn}`);
    }
    return {
      accessKeyId: assumed.AccessKeyId,
      secretAccessKey: assumed.SecretAccessKey,
      sessionToken: assumed.SessionToken,
    };
  }

  return {
    url,
    admin,
    iam,
    createUser,
    assumeRoleWith,
    close() {
      iam.destroy();
      for (const client of sts) client.destroy();
    },
  };
}
