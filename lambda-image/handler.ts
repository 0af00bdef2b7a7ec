import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createS3Client, createSecretsManagerClient } from '../lib/clients.ts';
import { loadMigrationConfig, loadRuntimeConfig } from '../lib/config.ts';
import { metricNamespace, serviceName } from '../lib/metrics.ts';
import { createFunction, type LineCountFunction } from './app.ts';
import { createConnections } from './connections.ts';
import type { FlushResult } from './flush.ts';
import { type MigrationResult, runMigration } from './migrate.ts';

// The deployed entry points, one image for three functions: index.handler
// (the SQS batches), index.flushHandler (the schedule) and
// index.migrateHandler (invoked by provision/up.ts). Each function's
// configuration holds only what its own entry point needs, so nothing is built
// at module scope: the first invocation of an execution environment builds
// what its entry point uses (configuration, clients, connections) and every
// later invocation reuses it. A failed start is tried again by the next
// invocation.

let counting: Promise<LineCountFunction> | undefined;

function lineCountFunction(): Promise<LineCountFunction> {
  counting ??= startLineCount().catch((error: unknown) => {
    counting = undefined;
    throw error;
  });
  return counting;
}

async function startLineCount(): Promise<LineCountFunction> {
  const config = loadRuntimeConfig();
  const service = serviceName(config.stack.app, config.stack.stage);
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: metricNamespace, serviceName: service });
  const connections = await createConnections(config, {
    secrets: createSecretsManagerClient(config.aws),
    onError: (what, error) => logger.warn(`${what} failed`, { error }),
  });
  return createFunction({
    s3: createS3Client(config.aws),
    redis: connections.redis,
    pool: connections.pool,
    buffer: config.buffer,
    schema: config.database.schema,
    logger,
    metrics,
  });
}

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  return (await lineCountFunction()).handler(event, context);
}

export async function flushHandler(event?: unknown, context?: Context): Promise<FlushResult> {
  return (await lineCountFunction()).flushHandler(event, context);
}

// A thrown error is the invocation's FunctionError, which up.ts reports.
export async function migrateHandler(_event?: unknown, context?: Context): Promise<MigrationResult> {
  const config = loadMigrationConfig();
  const logger = new Logger({ serviceName: `${serviceName(config.stack.app, config.stack.stage)}-migrate` });
  if (context !== undefined) logger.addContext(context);
  const secrets = createSecretsManagerClient(config.aws);
  try {
    const result = await runMigration(config, {
      secrets,
      onError: (what, error) => logger.warn(`${what} failed`, { error }),
    });
    logger.info('migrated', { ...result });
    return result;
  } catch (error) {
    logger.error('migration failed', { error });
    throw error;
  } finally {
    secrets.destroy();
  }
}
