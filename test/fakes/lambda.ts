import { randomUUID } from 'node:crypto';
import {
  type CreateEventSourceMappingRequest,
  type CreateFunctionRequest,
  type DeleteEventSourceMappingRequest,
  type DeleteFunctionRequest,
  type EventSourceMappingConfiguration,
  type FunctionConfiguration,
  type GetEventSourceMappingRequest,
  type GetFunctionConfigurationRequest,
  type GetFunctionRequest,
  InvalidParameterValueException,
  type InvocationRequest,
  LambdaClient,
  type ListEventSourceMappingsRequest,
  type ListTagsRequest,
  ResourceConflictException,
  ResourceNotFoundException,
  type TagResourceRequest,
  type UpdateEventSourceMappingRequest,
  type UpdateFunctionCodeRequest,
  type UpdateFunctionConfigurationRequest,
} from '@aws-sdk/client-lambda';
import { runMigration } from '../../lambda-image/migrate.ts';
import { loadMigrationConfig } from '../../lib/config.ts';
import type { MigrationTarget } from '../support/migration.ts';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful Lambda control plane for image functions and SQS event source
// mappings. Functions become Active and updates Successful at once (the SDK
// waiters then return on their first check). Optional checks make it refuse
// what the service refuses: a role it cannot assume (`roleExists`, and
// `roleNotReadyTimes` for IAM's propagation delay) and an image that is not
// in ECR (`imageExists`). It cannot run an image, so Invoke runs the code a
// test registers for the function's entry point (`runtimes`, by handler:
// ImageConfig.Command, else the image's CMD index.handler), and answers as
// Lambda does: a result is the payload, a thrown error a FunctionError.
// `useDatabase` registers the real migration (lambda-image/migrate.ts) for
// index.migrateHandler, run against a test PostgreSQL.

export interface FakeFunction {
  configuration: FunctionConfiguration;
  imageUri: string;
  tags: Map<string, string>;
}

export interface LambdaFakeOptions {
  accountId?: string;
  region?: string;
  roleExists?: (roleArn: string) => boolean;
  imageExists?: (imageUri: string) => boolean;
  // the first N CreateFunction calls answer "cannot be assumed" (IAM propagation)
  roleNotReadyTimes?: number;
}

// The code behind one entry point: the invocation's payload in, its result out
export type FakeRuntime = (payload: unknown, fn: FakeFunction) => unknown;

export interface LambdaFake extends InstalledFake {
  functions: Map<string, FakeFunction>;
  runtimes: Map<string, FakeRuntime>;
  useDatabase(target: MigrationTarget): void;
  mappings: Map<string, EventSourceMappingConfiguration & { tags: Map<string, string> }>;
  taggedResources(): { arn: string; tags: Record<string, string> }[];
}

const metadata = { $metadata: {} };
const imageCmd = 'index.handler';

// A synchronous invocation's answer (Lambda API reference, Invoke): status
// 200 either way; the result as the payload, or, when the handler threw, the
// Node.js runtime's error document with FunctionError Unhandled.
export async function invocationAnswer(
  runtime: FakeRuntime,
  payload: Uint8Array | undefined,
  fn: FakeFunction,
) {
  const text = new TextDecoder().decode(payload ?? new Uint8Array());
  const answer = (body: unknown, functionError?: string) => ({
    StatusCode: 200,
    ExecutedVersion: '$LATEST',
    ...(functionError === undefined ? {} : { FunctionError: functionError }),
    Payload: new TextEncoder().encode(JSON.stringify(body ?? null)),
  });
  try {
    return answer(await runtime(text === '' ? {} : JSON.parse(text), fn));
  } catch (error) {
    const thrown = error instanceof Error ? error : new Error(String(error));
    return answer(
      { errorType: thrown.name, errorMessage: thrown.message, trace: (thrown.stack ?? '').split('\n') },
      'Unhandled',
    );
  }
}

// The migration function's entry point as the deployed function runs it: its
// environment must be a complete deployed configuration (the master secret by
// ARN, the role to create), and the migration itself then runs on the target,
// connected by URL, for the target's role.
export function migrationRuntime(target: MigrationTarget): FakeRuntime {
  return async (_payload, fn) => {
    const environment = fn.configuration.Environment?.Variables ?? {};
    const deployed = loadMigrationConfig(environment);
    if (deployed.database.secretArn === undefined) {
      throw new Error('the migration function has no DB_SECRET_ARN: it signs in as the master user');
    }
    return runMigration(
      loadMigrationConfig({
        ...environment,
        DATABASE_URL: target.url,
        DB_SCHEMA: target.schema,
        DB_APP_USER: target.role,
      }),
    );
  };
}

// FunctionName accepts a name, a partial ARN or a full ARN (API reference)
function nameOf(functionName: string | undefined): string {
  const value = functionName ?? '';
  const marker = value.indexOf('function:');
  return marker === -1 ? value : (value.slice(marker + 'function:'.length).split(':')[0] ?? '');
}

export function installLambdaFake(options: LambdaFakeOptions = {}): LambdaFake {
  const accountId = options.accountId ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const functions = new Map<string, FakeFunction>();
  const mappings = new Map<string, EventSourceMappingConfiguration & { tags: Map<string, string> }>();
  let roleNotReady = options.roleNotReadyTimes ?? 0;
  const runtimes = new Map<string, FakeRuntime>();
  const functionArn = (name: string) => `arn:aws:lambda:${region}:${accountId}:function:${name}`;

  function fn(functionName: string | undefined): FakeFunction {
    const found = functions.get(nameOf(functionName));
    if (found === undefined) {
      throw new ResourceNotFoundException({
        message: `Function not found: ${functionArn(nameOf(functionName))}`,
        ...metadata,
      });
    }
    return found;
  }

  function mapping(uuid: string | undefined) {
    const found = mappings.get(uuid ?? '');
    if (found === undefined) {
      throw new ResourceNotFoundException({
        message: `The resource you requested does not exist. (Service: Lambda, Status Code: 404)`,
        ...metadata,
      });
    }
    return found;
  }

  function taggable(resource: string | undefined): Map<string, string> {
    const byMapping = [...mappings.values()].find((m) => m.EventSourceMappingArn === resource);
    if (byMapping !== undefined) return byMapping.tags;
    return fn(resource).tags;
  }

  function checkRole(role: string | undefined): void {
    if (options.roleExists !== undefined && !options.roleExists(role ?? '')) {
      throw new InvalidParameterValueException({
        message: 'The role defined for the function cannot be assumed by Lambda.',
        ...metadata,
      });
    }
  }

  function checkImage(imageUri: string | undefined): void {
    if (!imageUri) {
      throw new InvalidParameterValueException({
        message: 'Code.ImageUri is required for PackageType Image',
        ...metadata,
      });
    }
    if (options.imageExists !== undefined && !options.imageExists(imageUri)) {
      throw new InvalidParameterValueException({
        message: `Source image ${imageUri} does not exist. Provide a valid source image.`,
        ...metadata,
      });
    }
  }

  function imageConfigResponse(command: string[] | undefined) {
    return command !== undefined && command.length > 0 ? { ImageConfig: { Command: command } } : undefined;
  }

  function view(f: FakeFunction) {
    return { ...f.configuration, State: 'Active', LastUpdateStatus: 'Successful' };
  }

  const installed = installHandlers(LambdaClient, 'lambda', {
    CreateFunction(input: CreateFunctionRequest) {
      const name = input.FunctionName ?? '';
      if (functions.has(name)) {
        throw new ResourceConflictException({ message: `Function already exist: ${name}`, ...metadata });
      }
      if (roleNotReady > 0) {
        roleNotReady -= 1;
        throw new InvalidParameterValueException({
          message: 'The role defined for the function cannot be assumed by Lambda.',
          ...metadata,
        });
      }
      checkRole(input.Role);
      if (input.PackageType !== 'Image') {
        throw new InvalidParameterValueException({
          message: 'this fake models image functions only',
          ...metadata,
        });
      }
      checkImage(input.Code?.ImageUri);
      const configuration: FunctionConfiguration = {
        FunctionName: name,
        FunctionArn: functionArn(name),
        Role: input.Role,
        Description: input.Description ?? '',
        Timeout: input.Timeout ?? 3,
        MemorySize: input.MemorySize ?? 128,
        PackageType: 'Image',
        Architectures: input.Architectures ?? ['x86_64'],
        Environment: { Variables: input.Environment?.Variables ?? {} },
        VpcConfig: {
          SubnetIds: input.VpcConfig?.SubnetIds ?? [],
          SecurityGroupIds: input.VpcConfig?.SecurityGroupIds ?? [],
          VpcId: input.VpcConfig?.SubnetIds?.length ? 'vpc-from-subnets' : '',
        },
        LoggingConfig: {
          LogFormat: input.LoggingConfig?.LogFormat ?? 'Text',
          LogGroup: input.LoggingConfig?.LogGroup ?? `/aws/lambda/${name}`,
        },
        ImageConfigResponse: imageConfigResponse(input.ImageConfig?.Command),
        Version: '$LATEST',
      };
      functions.set(name, {
        configuration,
        imageUri: input.Code?.ImageUri ?? '',
        tags: new Map(Object.entries(input.Tags ?? {})),
      });
      // the real answer says Pending: the function is not usable yet
      return { ...configuration, State: 'Pending', LastUpdateStatus: 'InProgress' };
    },
    GetFunction(input: GetFunctionRequest) {
      const f = fn(input.FunctionName);
      return {
        Configuration: view(f),
        Code: { RepositoryType: 'ECR', ImageUri: f.imageUri, ResolvedImageUri: f.imageUri },
        Tags: Object.fromEntries(f.tags),
      };
    },
    GetFunctionConfiguration(input: GetFunctionConfigurationRequest) {
      return view(fn(input.FunctionName));
    },
    UpdateFunctionConfiguration(input: UpdateFunctionConfigurationRequest) {
      const f = fn(input.FunctionName);
      if (input.Role !== undefined) checkRole(input.Role);
      const c = f.configuration;
      f.configuration = {
        ...c,
        ...(input.Role === undefined ? {} : { Role: input.Role }),
        ...(input.Description === undefined ? {} : { Description: input.Description }),
        ...(input.Timeout === undefined ? {} : { Timeout: input.Timeout }),
        ...(input.MemorySize === undefined ? {} : { MemorySize: input.MemorySize }),
        ...(input.Environment === undefined
          ? {}
          : { Environment: { Variables: input.Environment.Variables ?? {} } }),
        ...(input.VpcConfig === undefined
          ? {}
          : {
              VpcConfig: {
                SubnetIds: input.VpcConfig.SubnetIds ?? [],
                SecurityGroupIds: input.VpcConfig.SecurityGroupIds ?? [],
                VpcId: c.VpcConfig?.VpcId,
              },
            }),
        ...(input.LoggingConfig === undefined
          ? {}
          : { LoggingConfig: { ...c.LoggingConfig, ...input.LoggingConfig } }),
        ...(input.ImageConfig === undefined
          ? {}
          : { ImageConfigResponse: imageConfigResponse(input.ImageConfig.Command) }),
      };
      return { ...f.configuration, State: 'Active', LastUpdateStatus: 'InProgress' };
    },
    UpdateFunctionCode(input: UpdateFunctionCodeRequest) {
      const f = fn(input.FunctionName);
      checkImage(input.ImageUri);
      f.imageUri = input.ImageUri ?? f.imageUri;
      if (input.Architectures !== undefined) f.configuration.Architectures = input.Architectures;
      return { ...f.configuration, State: 'Active', LastUpdateStatus: 'InProgress' };
    },
    async Invoke(input: InvocationRequest) {
      const f = fn(input.FunctionName);
      const entry = f.configuration.ImageConfigResponse?.ImageConfig?.Command?.[0] ?? imageCmd;
      const runtime = runtimes.get(entry);
      if (runtime === undefined) {
        throw new Error(
          `the Lambda fake has no code for ${entry} (function ${f.configuration.FunctionName}): register it in runtimes, or call useDatabase for index.migrateHandler`,
        );
      }
      if (input.InvocationType !== undefined && input.InvocationType !== 'RequestResponse') {
        throw new Error(`the Lambda fake runs RequestResponse invocations only, not ${input.InvocationType}`);
      }
      return invocationAnswer(runtime, input.Payload, f);
    },
    DeleteFunction(input: DeleteFunctionRequest) {
      functions.delete(nameOf(fn(input.FunctionName).configuration.FunctionName));
      return {};
    },
    ListTags(input: ListTagsRequest) {
      return { Tags: Object.fromEntries(taggable(input.Resource)) };
    },
    TagResource(input: TagResourceRequest) {
      const tags = taggable(input.Resource);
      for (const [key, value] of Object.entries(input.Tags ?? {})) tags.set(key, value);
      return {};
    },
    CreateEventSourceMapping(input: CreateEventSourceMappingRequest) {
      const target = fn(input.FunctionName);
      const arn = target.configuration.FunctionArn;
      const existing = [...mappings.values()].find(
        (m) => m.FunctionArn === arn && m.EventSourceArn === input.EventSourceArn,
      );
      if (existing !== undefined) {
        throw new ResourceConflictException({
          message: `An event source mapping with SQS arn (" ${input.EventSourceArn} ") and function (" ${target.configuration.FunctionName} ") already exists. Please update or delete the existing mapping with UUID ${existing.UUID}`,
          ...metadata,
        });
      }
      const UUID = randomUUID();
      const created = {
        UUID,
        EventSourceMappingArn: `arn:aws:lambda:${region}:${accountId}:event-source-mapping:${UUID}`,
        FunctionArn: arn,
        EventSourceArn: input.EventSourceArn,
        BatchSize: input.BatchSize ?? 10,
        MaximumBatchingWindowInSeconds: input.MaximumBatchingWindowInSeconds ?? 0,
        FunctionResponseTypes: input.FunctionResponseTypes ?? [],
        ...(input.ScalingConfig === undefined ? {} : { ScalingConfig: input.ScalingConfig }),
        State: input.Enabled === false ? 'Disabled' : 'Enabled',
        StateTransitionReason: 'USER_INITIATED',
        LastModified: new Date(),
        tags: new Map(Object.entries(input.Tags ?? {})),
      };
      mappings.set(UUID, created);
      const { tags: _tags, ...answer } = created;
      return { ...answer, State: 'Creating' };
    },
    ListEventSourceMappings(input: ListEventSourceMappingsRequest) {
      const wanted = input.FunctionName === undefined ? undefined : nameOf(input.FunctionName);
      return {
        EventSourceMappings: [...mappings.values()]
          .filter(
            (m) =>
              (wanted === undefined || nameOf(m.FunctionArn) === wanted) &&
              (input.EventSourceArn === undefined || m.EventSourceArn === input.EventSourceArn),
          )
          .map(({ tags: _tags, ...m }) => m),
      };
    },
    GetEventSourceMapping(input: GetEventSourceMappingRequest) {
      const { tags: _tags, ...m } = mapping(input.UUID);
      return m;
    },
    UpdateEventSourceMapping(input: UpdateEventSourceMappingRequest) {
      const m = mapping(input.UUID);
      if (input.BatchSize !== undefined) m.BatchSize = input.BatchSize;
      if (input.MaximumBatchingWindowInSeconds !== undefined) {
        m.MaximumBatchingWindowInSeconds = input.MaximumBatchingWindowInSeconds;
      }
      if (input.FunctionResponseTypes !== undefined) m.FunctionResponseTypes = input.FunctionResponseTypes;
      if (input.ScalingConfig !== undefined) m.ScalingConfig = input.ScalingConfig;
      if (input.Enabled !== undefined) m.State = input.Enabled ? 'Enabled' : 'Disabled';
      const { tags: _tags, ...answer } = m;
      return { ...answer, State: 'Updating' };
    },
    DeleteEventSourceMapping(input: DeleteEventSourceMappingRequest) {
      const { tags: _tags, ...m } = mapping(input.UUID);
      mappings.delete(input.UUID ?? '');
      return { ...m, State: 'Deleting' };
    },
  });

  return {
    ...installed,
    functions,
    runtimes,
    useDatabase(target) {
      runtimes.set('index.migrateHandler', migrationRuntime(target));
    },
    mappings,
    taggedResources: () => [
      ...[...functions.values()].map((f) => ({
        arn: f.configuration.FunctionArn ?? '',
        tags: Object.fromEntries(f.tags),
      })),
      ...[...mappings.values()].map((m) => ({
        arn: m.EventSourceMappingArn ?? '',
        tags: Object.fromEntries(m.tags),
      })),
    ],
  };
}
