import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createFunction } from '../lambda-image/app.ts';
import { createConnections } from '../lambda-image/connections.ts';
import { DurationUnit, ExitCode, onInterrupt, readDuration, runCommand } from '../lib/cli.ts';
import { createClients } from '../lib/clients.ts';
import { type Env, loadDeployConfig, loadRuntimeConfig, loadStackConfig } from '../lib/config.ts';
import { UsageError } from '../lib/errors.ts';
import { parseFlags } from '../lib/flags.ts';
import { metricNamespace, serviceName } from '../lib/metrics.ts';
import { readOutputs } from '../lib/outputs.ts';
import { checkPostgresUrl, checkRedisUrl, maskUrl } from '../lib/reach.ts';
import { emulatorCredentials } from './emulator.ts';
import { startRunner } from './runner.ts';
import { localStackEnv } from './stack.ts';

// The event-source runner as a command, for a local stack started elsewhere
// (`npm run demo -- --keep`): it reads the stack's outputs
// (.ada/outputs.<stage>.json, which name the emulator endpoint), builds the
// function exactly as the deployed handler does, and runs it on the queue
// until SIGINT/SIGTERM, finishing the batch in flight.

const usage = `usage: npx tsx local/run.ts [--flush-interval-ms N] [--help]

Runs the line-count function on the local stack's queue, as the AWS event
source mapping and the flush schedule do. Needs REDIS_URL and DATABASE_URL
(the demo prints them) and the outputs of a running local stack
(STAGE selects .ada/outputs.<stage>.json). Batch size and window come from
BATCH_SIZE and BATCHING_WINDOW_SECONDS.`;

async function main(argv: string[], env: Env): Promise<number> {
  const values = parseFlags(argv, {
    'flush-interval-ms': { type: 'string', default: '60000' },
    help: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return ExitCode.ok;
  }
  const flag = 'flush-interval-ms';
  const flushIntervalMs = readDuration(flag, values[flag], DurationUnit.milliseconds, { min: 100 });
  const { stage } = loadStackConfig(env);
  const outputs = await readOutputs(stage);
  if (outputs?.endpoint === undefined) {
    throw new UsageError(
      `no local stack outputs for stage ${stage} (.ada/outputs.${stage}.json with an endpoint): start one with npm run demo -- --keep`,
    );
  }
  // the process's settings, pointed at the local stack's emulator
  const localEnv: Env = { ...env, ...localStackEnv(outputs.endpoint) };
  const runtime = loadRuntimeConfig(localEnv);
  const deploy = loadDeployConfig(localEnv);
  // a wrong address fails here, named, not as retries inside the first batch
  const hint = (name: string) => `start it, or fix ${name} (npm run demo -- --keep prints the stack's)`;
  if (runtime.redis.url !== undefined) {
    const url = runtime.redis.url;
    await checkRedisUrl(url, { where: maskUrl(url), source: 'REDIS_URL', hint: hint('REDIS_URL') });
  }
  if (runtime.database.url !== undefined) {
    const url = runtime.database.url;
    await checkPostgresUrl(url, { where: maskUrl(url), source: 'DATABASE_URL', hint: hint('DATABASE_URL') });
  }
  const clients = createClients({ ...runtime.aws, credentials: emulatorCredentials });
  const service = serviceName(runtime.stack.app, runtime.stack.stage);
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: metricNamespace, serviceName: service });
  const connections = await createConnections(runtime, {
    onError: (what, error) => logger.warn(`${what} failed`, { error }),
  });
  const fn = createFunction({
    s3: clients.s3,
    redis: connections.redis,
    pool: connections.pool,
    buffer: runtime.buffer,
    schema: runtime.database.schema,
    logger,
    metrics,
  });
  const log = { info: (m: string) => logger.info(m), warn: (m: string) => logger.warn(m) };
  const runner = startRunner({
    sqs: clients.sqs,
    queueUrl: outputs.queueUrl,
    queueArn: outputs.queueArn,
    handler: fn.handler,
    flushHandler: () => fn.flushHandler(),
    batchSize: deploy.fn.batchSize,
    batchingWindowMs: deploy.fn.batchingWindowSeconds * 1000,
    functionTimeoutMs: deploy.fn.timeoutSeconds * 1000,
    flushIntervalMs,
    functionName: `${service}-count`,
    log,
  });
  // the first Ctrl-C finishes the batch in flight; another one exits at once
  await new Promise<void>((resolve) => {
    const removeSignalHandlers = onInterrupt((signal) => {
      log.info(`${signal}: finishing the batch in flight, then stopping (again to exit now)`);
      runner.stop().finally(() => {
        removeSignalHandlers();
        resolve();
      });
    });
  });
  // what is still buffered is flushed once more before leaving
  await fn.flushHandler().catch((error) => logger.warn('final flush failed', { error }));
  await connections.close();
  clients.s3.destroy();
  clients.sqs.destroy();
  logger.info('stopped', { ...runner.stats });
  return ExitCode.ok;
}

process.exitCode = await runCommand(() => main(process.argv.slice(2), process.env));
