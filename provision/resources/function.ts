import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  InvalidParameterValueException,
  LastUpdateStatus,
  LogFormat,
  PackageType,
  ResourceConflictException,
  ResourceNotFoundException,
  State,
  TagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from '@aws-sdk/client-lambda';
import { flushCmd, rdsCaBundlePath } from '../../lambda-image/recipe.ts';
import type { Architecture } from '../../lib/config.ts';
import { stepError } from '../../lib/errors.ts';
import { metricNamespace, serviceName } from '../../lib/metrics.ts';
import { arn } from '../../lib/names.ts';
import { retryWhile, withProgress } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  findLive,
  missingTags,
  type Resource,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import { reportElapsed } from '../progress.ts';
import { type Tags, tagDrift } from '../tags.ts';

const kind = 'lambda function';

// IAM is eventually consistent: for a while after a role (or its inline
// policy) is created, CreateFunction answers InvalidParameterValueException
// with one of these messages (Lambda API reference, CreateFunction; AWS
// re:Post "The role defined for the function cannot be assumed by Lambda").
const roleNotReadyMessages = [
  /cannot be assumed by Lambda/i,
  /execution role does not have permissions to call/i,
];
const roleReadyTimeoutMs = 120_000;

export interface FunctionInputs {
  roleArn: string;
  imageUri: string;
  subnetIds: string[];
  securityGroupId: string;
  environment: Record<string, string>;
}

export type DesiredFunction = ReturnType<typeof desiredFunction>;

export type LiveFunction = ReturnType<typeof toLive>;

export interface ConnectionInputs {
  cache: { host: string; port: number; authSecretArn: string };
  // the functions sign in as `user` with an IAM authentication token: no
  // password, and no access to the master secret
  database: { host: string; port: number; name: string; user: string };
}

// Settings only, never secret values: the function reads the cache token by
// ARN at cold start and makes database tokens itself, so no credential appears
// in GetFunctionConfiguration. Lambda sets AWS_REGION, which the tokens are
// signed for.
export function functionEnvironment(
  ctx: Pick<Ctx, 'config'>,
  inputs: ConnectionInputs,
): Record<string, string> {
  const { app, stage } = ctx.config.stack;
  return {
    APP: app,
    STAGE: stage,
    REDIS_HOST: inputs.cache.host,
    REDIS_PORT: String(inputs.cache.port),
    REDIS_AUTH_SECRET_ARN: inputs.cache.authSecretArn,
    DB_HOST: inputs.database.host,
    DB_PORT: String(inputs.database.port),
    DB_NAME: inputs.database.name,
    DB_IAM_USER: inputs.database.user,
    DB_CA_FILE: rdsCaBundlePath,
    POWERTOOLS_SERVICE_NAME: serviceName(app, stage),
    POWERTOOLS_METRICS_NAMESPACE: metricNamespace,
  };
}

// The counting and flush functions take timeout and memory from the
// configuration; the migration function names its own.
export function desiredFunction(
  ctx: Pick<Ctx, 'config' | 'names'>,
  inputs: FunctionInputs,
  which: {
    name: string;
    logGroup: string;
    // [] = the image's CMD
    command: string[];
    description: string;
    timeout?: number;
    memorySize?: number;
  },
) {
  const { fn } = ctx.config;
  return {
    ...which,
    imageUri: inputs.imageUri,
    architecture: fn.architecture,
    role: inputs.roleArn,
    timeout: which.timeout ?? fn.timeoutSeconds,
    memorySize: which.memorySize ?? fn.memoryMb,
    environment: inputs.environment,
    subnetIds: [...inputs.subnetIds].sort(),
    securityGroupIds: [inputs.securityGroupId],
    tags: ctx.names.tags,
  };
}

type StackFunction = (ctx: Pick<Ctx, 'config' | 'names'>, inputs: FunctionInputs) => DesiredFunction;

export const desiredCountFunction: StackFunction = (ctx, inputs) =>
  desiredFunction(ctx, inputs, {
    name: ctx.names.function,
    logGroup: ctx.names.logGroup,
    command: [],
    description: `${ctx.names.base}: counts the lines of uploaded files`,
  });

export const desiredFlushFunction: StackFunction = (ctx, inputs) =>
  desiredFunction(ctx, inputs, {
    name: ctx.names.flushFunction,
    logGroup: ctx.names.flushLogGroup,
    command: [...flushCmd],
    description: `${ctx.names.base}: flushes buffered counts to PostgreSQL on a schedule`,
  });

export function functionArn(ctx: Pick<Ctx, 'identity'>, name: string): string {
  return arn(ctx.identity, 'lambda', `function:${name}`);
}

function toLive(
  name: string,
  configuration: FunctionConfiguration,
  imageUri: string | undefined,
  tags: Tags,
) {
  return {
    name,
    arn: configuration.FunctionArn ?? '',
    imageUri,
    architecture: configuration.Architectures?.[0],
    role: configuration.Role,
    timeout: configuration.Timeout,
    memorySize: configuration.MemorySize,
    environment: configuration.Environment?.Variables ?? {},
    subnetIds: [...(configuration.VpcConfig?.SubnetIds ?? [])].sort(),
    securityGroupIds: [...(configuration.VpcConfig?.SecurityGroupIds ?? [])].sort(),
    logGroup: configuration.LoggingConfig?.LogGroup,
    logFormat: configuration.LoggingConfig?.LogFormat,
    command: configuration.ImageConfigResponse?.ImageConfig?.Command ?? [],
    state: configuration.State,
    lastUpdateStatus: configuration.LastUpdateStatus,
    tags,
  };
}

// Configuration and code are changed by two different calls, so the drift is
// split the same way.
export function functionConfigurationDrift(desired: DesiredFunction, actual: LiveFunction): FieldChange[] {
  return diffFields(
    {
      role: desired.role,
      timeout: desired.timeout,
      memorySize: desired.memorySize,
      environment: desired.environment,
      subnetIds: desired.subnetIds,
      securityGroupIds: [...desired.securityGroupIds].sort(),
      logGroup: desired.logGroup,
      // Text keeps Powertools' JSON lines and EMF documents exactly as printed
      logFormat: LogFormat.Text,
      command: desired.command,
    },
    actual as unknown as Record<string, unknown>,
  );
}

export function functionCodeDrift(desired: DesiredFunction, actual: LiveFunction): FieldChange[] {
  return diffFields(
    { imageUri: desired.imageUri, architecture: desired.architecture },
    { imageUri: actual.imageUri, architecture: actual.architecture },
  );
}

export function functionDrift(desired: DesiredFunction, actual: LiveFunction): FieldChange[] {
  return [
    ...functionConfigurationDrift(desired, actual),
    ...functionCodeDrift(desired, actual),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

export function isRoleNotReady(error: unknown): boolean {
  return (
    error instanceof InvalidParameterValueException &&
    roleNotReadyMessages.some((pattern) => pattern.test(error.message))
  );
}

function configurationRequest(desired: DesiredFunction) {
  return {
    FunctionName: desired.name,
    Description: desired.description,
    Role: desired.role,
    Timeout: desired.timeout,
    MemorySize: desired.memorySize,
    Environment: { Variables: desired.environment },
    VpcConfig: { SubnetIds: desired.subnetIds, SecurityGroupIds: desired.securityGroupIds },
    LoggingConfig: { LogFormat: LogFormat.Text, LogGroup: desired.logGroup },
    // an empty Command resets to the image's CMD
    ImageConfig: { Command: desired.command },
  };
}

// An update still running (a function just created, or an interrupted
// earlier run) blocks the next one with ResourceConflictException.
async function settle(ctx: Ctx, actual: LiveFunction): Promise<void> {
  if (actual.state === State.Pending) await waitActive(ctx, actual.name);
  if (actual.lastUpdateStatus === LastUpdateStatus.InProgress) await waitUpdated(ctx, actual.name);
}

const lambdaFunction: Resource<DesiredFunction, LiveFunction, { name: string; arn: string }> = {
  kind,
  permissions: {
    find: 'lambda:GetFunction',
    create: 'lambda:CreateFunction, lambda:TagResource and iam:PassRole',
    update:
      'lambda:UpdateFunctionConfiguration, lambda:UpdateFunctionCode, lambda:TagResource and iam:PassRole',
    delete: 'lambda:DeleteFunction',
  },
  async find(ctx, name) {
    const answer = await ctx.clients.lambda.send(new GetFunctionCommand({ FunctionName: name }));
    if (answer.Configuration === undefined) return undefined;
    return toLive(name, answer.Configuration, answer.Code?.ImageUri, answer.Tags ?? {});
  },
  drift: functionDrift,
  async create(ctx, desired) {
    const what = `IAM role ${desired.role} to become assumable by Lambda`;
    const created = await retryWhile(
      () =>
        ctx.clients.lambda.send(
          new CreateFunctionCommand({
            ...configurationRequest(desired),
            PackageType: PackageType.Image,
            Code: { ImageUri: desired.imageUri },
            Architectures: [desired.architecture],
            Tags: desired.tags,
          }),
        ),
      isRoleNotReady,
      { what, timeoutMs: roleReadyTimeoutMs, onProgress: reportElapsed(ctx.log, what) },
    );
    // Pending until Lambda has set it up: the wait is for Active only
    return {
      ...toLive(desired.name, created, desired.imageUri, desired.tags),
      state: State.Pending,
      lastUpdateStatus: undefined,
    };
  },
  // a function of this name exists (another run won the race)
  alreadyExists: (error) => error instanceof ResourceConflictException,
  async update(ctx, desired, actual) {
    const { lambda } = ctx.clients;
    await settle(ctx, actual);
    if (functionConfigurationDrift(desired, actual).length > 0) {
      await lambda.send(new UpdateFunctionConfigurationCommand(configurationRequest(desired)));
      await waitUpdated(ctx, desired.name);
    }
    if (functionCodeDrift(desired, actual).length > 0) {
      await lambda.send(
        new UpdateFunctionCodeCommand({
          FunctionName: desired.name,
          ImageUri: desired.imageUri,
          Architectures: [desired.architecture],
        }),
      );
      await waitUpdated(ctx, desired.name);
    }
    const missing = missingTags(desired.tags, actual.tags);
    if (Object.keys(missing).length > 0) {
      await lambda.send(new TagResourceCommand({ Resource: actual.arn, Tags: missing }));
    }
  },
  // a new function is Pending; one an earlier run left changing is waited for too
  async wait(ctx, _desired, actual) {
    await settle(ctx, actual);
    return undefined;
  },
  outputs: (ctx, desired, actual) => ({
    name: desired.name,
    arn: actual?.arn || functionArn(ctx, desired.name),
  }),
  // Deleting a VPC function leaves its ENIs behind for a while; teardown waits
  // for them before deleting the security groups (see teardown/down.ts).
  remove: (ctx, name) => ctx.clients.lambda.send(new DeleteFunctionCommand({ FunctionName: name })),
  isNotFound: (error) => error instanceof ResourceNotFoundException,
};

export const findFunction = (ctx: Ctx, name: string) =>
  step(`read ${kind} ${name}`, lambdaFunction.permissions?.find, () => findLive(ctx, lambdaFunction, name));

export const ensureFunction = (ctx: Ctx, desired: DesiredFunction) => reconcile(ctx, lambdaFunction, desired);

export const deleteFunction = (ctx: Ctx, name: string) => destroy(ctx, lambdaFunction, name);

// The SDK's Lambda waiters back off up to 300 s between checks (their
// service defaults: minDelay 1, maxDelay 300), so a function that turned
// Active or Updated moments after a check could leave a run idle for minutes.
// Checking every 2 to 10 s costs a GetFunction call each; the overall limits
// (each wait's maxWaitTime) stay.
const waiterDelays = { minDelay: 2, maxDelay: 10 } as const;

// Each wait: its waiter, its overall limit in seconds, and what to read when it fails.
const waits = {
  // VPC functions create Hyperplane ENIs before becoming Active: minutes, not seconds
  active: {
    waiter: waitUntilFunctionActiveV2,
    maxWaitTime: 900,
    until: 'become Active',
    reason: "the function's StateReason in the Lambda console",
  },
  updated: {
    waiter: waitUntilFunctionUpdatedV2,
    maxWaitTime: 900,
    until: 'finish updating',
    reason: "the function's LastUpdateStatusReason",
  },
};

export const waitActive = (ctx: Ctx, name: string) => waitFor(ctx, name, waits.active);

const waitUpdated = (ctx: Ctx, name: string) => waitFor(ctx, name, waits.updated);

async function waitFor(
  ctx: Ctx,
  name: string,
  { waiter, maxWaitTime, until, reason }: (typeof waits)[keyof typeof waits],
): Promise<void> {
  await withProgress(
    `${kind} ${name} to ${until}`,
    (message) => ctx.log.progress(message),
    waiter({ client: ctx.clients.lambda, maxWaitTime, ...waiterDelays }, { FunctionName: name }),
  ).catch((error: unknown) => {
    throw stepError(
      `wait for ${kind} ${name} to ${until}`,
      error,
      `check lambda:GetFunction permission, and ${reason}`,
    );
  });
}
