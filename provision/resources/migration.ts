import { createHash } from 'node:crypto';
import {
  InvocationType,
  InvokeCommand,
  ResourceNotReadyException,
  TagResourceCommand,
} from '@aws-sdk/client-lambda';
import { migrateCmd, rdsCaBundlePath } from '../../lambda-image/recipe.ts';
import { stepError } from '../../lib/errors.ts';
import { type Ctx, canonical, isPlan, type Resource, reconcile, step } from '../../lib/reconcile.ts';
import { allow, policyDocument } from '../policy.ts';
import {
  type DesiredFunction,
  desiredFunction,
  ensureFunction,
  findFunction,
  type LiveFunction,
  waitActive,
} from './function.ts';
import {
  type DesiredRole,
  ensureRole,
  type RoleContext,
  stackRole,
  trustPolicy,
  vpcExecutionStatements,
  writeLogsStatement,
} from './role.ts';

// The one-shot database migration (lambda-image/migrate.ts): the function
// image run as a third function, in the VPC beside the database, with a role
// of its own that alone may read the RDS master user secret. up.ts invokes it
// synchronously once the database and its image exist; it creates the tables
// and the application role that the counting and flush functions sign in as
// with IAM authentication tokens. It runs when its image or configuration
// differs from those of its last successful run, which the function carries as
// a tag: a second up with nothing changed invokes nothing, and a failed
// migration is run again by the next up.

const kind = 'database migration';

// the fingerprint of the image and configuration the last successful migration ran with
export const migratedTag = 'ada-linecount:migrated';

// A cold start in the VPC, the master secret read, and a few statements; the
// advisory locks make a second migration at the same moment wait for the first.
export const migrationTimeoutSeconds = 120;
export const migrationMemoryMb = 256;

export interface MigrationInputs {
  imageUri: string;
  subnetIds: string[];
  securityGroupId: string;
  database: { host: string; port: number; name: string; secretArn: string };
}

export function desiredMigrationRole(ctx: RoleContext, masterSecretArn: string): DesiredRole {
  const { identity, names } = ctx;
  return stackRole(ctx, {
    name: names.migrateRole,
    description: `${names.base}: the database migration, the one reader of the master secret`,
    trustPolicy: trustPolicy(ctx, 'lambda.amazonaws.com'),
    policyName: 'migrate',
    policy: policyDocument(
      // RDS keeps the master user's password in this secret
      // (ManageMasterUserPassword); no other role of the stack may read it
      allow('ReadMasterSecret', 'secretsmanager:GetSecretValue', masterSecretArn),
      writeLogsStatement(ctx, [names.migrateLogGroup]),
      ...vpcExecutionStatements(identity),
    ),
  });
}

// Settings only: the migration reads the master password by ARN when it runs.
export function migrationEnvironment(
  ctx: Pick<Ctx, 'config' | 'names'>,
  database: MigrationInputs['database'],
): Record<string, string> {
  const { app, stage } = ctx.config.stack;
  return {
    APP: app,
    STAGE: stage,
    DB_HOST: database.host,
    DB_PORT: String(database.port),
    DB_NAME: database.name,
    DB_SECRET_ARN: database.secretArn,
    DB_CA_FILE: rdsCaBundlePath,
    DB_APP_USER: ctx.names.dbAppUser,
  };
}

export function desiredMigrationFunction(
  ctx: Pick<Ctx, 'config' | 'names'>,
  inputs: MigrationInputs & { roleArn: string },
): DesiredFunction {
  return desiredFunction(
    ctx,
    { ...inputs, environment: migrationEnvironment(ctx, inputs.database) },
    {
      name: ctx.names.migrateFunction,
      logGroup: ctx.names.migrateLogGroup,
      command: [...migrateCmd],
      description: `${ctx.names.base}: creates the tables and the functions' database role`,
      timeout: migrationTimeoutSeconds,
      memorySize: migrationMemoryMb,
    },
  );
}

// What a migration ran with: the image (the DDL and the grants are its code)
// and the configuration (which database, which role).
export function migrationFingerprint(desired: DesiredFunction): string {
  const subject = { imageUri: desired.imageUri, environment: desired.environment, command: desired.command };
  return createHash('sha256')
    .update(JSON.stringify(canonical(subject)))
    .digest('hex');
}

interface MigrationSpec {
  // the migration function's name
  name: string;
  functionArn: string;
  fingerprint: string;
}

// The migration as a resource: it exists once the function does, and it
// drifts when the function's tag is not this run's fingerprint. `before` is
// the function as it was before this run ensured it, so a new function's
// first migration is a create.
// The live side is what the function's tag says the last successful migration ran with.
function migration(
  before: LiveFunction | undefined,
): Resource<MigrationSpec, { fingerprint: string | undefined }, boolean> {
  const migrate = async (ctx: Ctx, desired: MigrationSpec) => {
    await runMigration(ctx, desired.name);
    await ctx.clients.lambda
      .send(
        new TagResourceCommand({
          Resource: desired.functionArn,
          Tags: { [migratedTag]: desired.fingerprint },
        }),
      )
      .catch((error: unknown) => {
        throw stepError(
          `record the migration on ${kind} function ${desired.name}`,
          error,
          'check lambda:TagResource permission; the migration itself succeeded and runs again, harmlessly, next time',
        );
      });
  };
  return {
    kind,
    permissions: { create: 'lambda:InvokeFunction', update: 'lambda:InvokeFunction' },
    find: async () => (before === undefined ? undefined : { fingerprint: before.tags[migratedTag] }),
    drift: (desired, actual) =>
      actual.fingerprint === desired.fingerprint
        ? []
        : [{ field: 'migrated', from: actual.fingerprint, to: desired.fingerprint }],
    async create(ctx, desired) {
      await migrate(ctx, desired);
      return { fingerprint: desired.fingerprint };
    },
    update: (ctx, desired) => migrate(ctx, desired),
    // whether it ran: outside a plan, unless the function had already migrated with this fingerprint
    outputs: (ctx, desired) => !isPlan(ctx) && before?.tags[migratedTag] !== desired.fingerprint,
  };
}

export async function ensureMigration(ctx: Ctx, inputs: MigrationInputs) {
  const role = await ensureRole(ctx, desiredMigrationRole(ctx, inputs.database.secretArn));
  const desired = desiredMigrationFunction(ctx, { ...inputs, roleArn: role.arn });
  const before = await findFunction(ctx, desired.name);
  const fn = await ensureFunction(ctx, desired);
  const ran = await reconcile(ctx, migration(before), {
    name: fn.name,
    functionArn: fn.arn,
    fingerprint: migrationFingerprint(desired),
  });
  return { functionName: fn.name, roleArn: role.arn, ran };
}

// A synchronous invocation (RequestResponse) answers 200 whether or not the
// code failed; a failure is told by FunctionError, with the error in the
// payload (Lambda API reference, Invoke).
async function runMigration(ctx: Ctx, functionName: string): Promise<void> {
  const invoke = () =>
    ctx.clients.lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: InvocationType.RequestResponse,
        Payload: new TextEncoder().encode('{}'),
      }),
    );
  const answer = await step(`run the ${kind} (invoke ${functionName})`, 'lambda:InvokeFunction', () =>
    invoke().catch(async (error: unknown) => {
      // An idle VPC function becomes Inactive; its next invocation fails while
      // Lambda sets it up again (Lambda Developer Guide, "Lambda function states")
      if (!(error instanceof ResourceNotReadyException)) throw error;
      await waitActive(ctx, functionName);
      return invoke();
    }),
  );
  const text = new TextDecoder().decode(answer.Payload ?? new Uint8Array());
  if (answer.FunctionError !== undefined) {
    let payload: { errorType?: unknown; errorMessage?: unknown } = {};
    try {
      payload = JSON.parse(text);
    } catch {
      payload = { errorMessage: text };
    }
    const type = typeof payload.errorType === 'string' ? `${payload.errorType}: ` : '';
    const message = typeof payload.errorMessage === 'string' ? payload.errorMessage : text;
    throw stepError(
      `migrate the database: ${functionName} failed (${answer.FunctionError})`,
      `${type}${message}`,
      `its log is in ${ctx.names.migrateLogGroup}; fix the cause and run up again, which runs the migration again`,
    );
  }
  ctx.log.info(`database migrated by ${functionName}: ${text}`);
}
