import { createClients } from '../lib/clients.ts';
import { type DeployConfig, type Env, loadDeployConfig } from '../lib/config.ts';
import { stackNames } from '../lib/names.ts';
import type { StackOutputs } from '../lib/outputs.ts';
import type { Change, Ctx, Log } from '../lib/reconcile.ts';
import { ensureBucket } from '../provision/resources/bucket.ts';
import { resolveIdentity } from '../provision/resources/identity.ts';
import { ensureNotification } from '../provision/resources/notification.ts';
import { ensureDeadLetterQueue, ensureQueue } from '../provision/resources/queue.ts';
import { ensureSubscription } from '../provision/resources/subscription.ts';
import { ensureTopic } from '../provision/resources/topic.ts';
import { type Emulator, emulatorCredentials, startEmulator } from './emulator.ts';

// The messaging half of the AWS stack (bucket, topic, queues, subscription,
// notification) on the local emulator, created by the same reconcile code
// that provision/up.ts runs against AWS: only the endpoint differs.

export const localRegion = 'us-east-1';

interface LocalStackOptions {
  // 0 (default) picks a free port; the demo passes LOCAL_AWS_PORT
  port?: number;
  // settings as environment variables (APP, STAGE, FUNCTION_TIMEOUT_SECONDS, ...)
  env?: Env;
  log?: Log;
}

export interface LocalStack {
  endpoint: string;
  emulator: Emulator;
  // what another process (the generator, a script) needs to reach this stack
  env: Record<string, string>;
  config: DeployConfig;
  clients: Ctx['clients'];
  outputs: StackOutputs;
  changes: Change[];
  stop(): Promise<void>;
}

export const silentLog: Log = { info() {}, warn() {}, progress() {} };

// The variables every AWS client of this project reads (lib/config.ts),
// pointed at the emulator. The keys are the emulator's dummy credentials
// (it accepts any), for child processes whose SDK reads them from the
// environment; they open nothing.
export function localStackEnv(endpoint: string, overrides: Env = {}): Record<string, string> {
  const env: Record<string, string> = {
    AWS_REGION: localRegion,
    AWS_ENDPOINT_URL: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: emulatorCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: emulatorCredentials.secretAccessKey,
  };
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  return env;
}

export async function createLocalContext(env: Env, log: Log = silentLog): Promise<Ctx> {
  const loaded = loadDeployConfig(env);
  // in-process clients get the dummy keys directly, never from process.env
  const config: DeployConfig = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
  const clients = createClients(config.aws);
  const identity = await resolveIdentity(clients.sts, config.aws.region ?? localRegion);
  return {
    config,
    clients,
    log,
    mode: 'apply',
    identity,
    names: stackNames(config.stack, identity),
    changes: [],
  };
}

// Same order as provision/up.ts: the topic policy exists before the
// notification that S3 validates against it.
export async function reconcileMessaging(ctx: Ctx, endpoint?: string): Promise<StackOutputs> {
  const bucket = await ensureBucket(ctx);
  const dlq = await ensureDeadLetterQueue(ctx);
  const topic = await ensureTopic(ctx, { bucketArn: bucket.arn });
  const queue = await ensureQueue(ctx, { dlqArn: dlq.arn, topicArn: topic.arn });
  await ensureSubscription(ctx, { topicArn: topic.arn, queueArn: queue.arn });
  await ensureNotification(ctx, { bucket: bucket.name, topicArn: topic.arn });
  return {
    app: ctx.config.stack.app,
    stage: ctx.config.stack.stage,
    region: ctx.identity.region,
    accountId: ctx.identity.accountId,
    bucket: bucket.name,
    uploadsPrefix: ctx.names.uploadsPrefix,
    topicArn: topic.arn,
    // always the URL the API returned, never one built from the name
    queueUrl: queue.url,
    queueArn: queue.arn,
    dlqUrl: dlq.url,
    dlqArn: dlq.arn,
    ...(endpoint === undefined ? {} : { endpoint }),
    updatedAt: new Date().toISOString(),
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? silentLog;
  const emulator = await startEmulator({ port: options.port ?? 0, warn: (m) => log.warn(m) });
  try {
    const env = localStackEnv(emulator.endpoint, options.env);
    const ctx = await createLocalContext(env, log);
    const outputs = await reconcileMessaging(ctx, emulator.endpoint);
    return {
      endpoint: emulator.endpoint,
      emulator,
      env,
      config: ctx.config,
      clients: ctx.clients,
      outputs,
      changes: ctx.changes,
      async stop() {
        // only the clients this stack used (the factory builds others on access)
        for (const client of [ctx.clients.s3, ctx.clients.sns, ctx.clients.sqs, ctx.clients.sts])
          client.destroy();
        await emulator.stop();
      },
    };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
}
