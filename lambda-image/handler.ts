import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { createS3Client, createSecretsManagerClient } from '../lib/clients.ts';
import { loadRuntimeConfig } from '../lib/config.ts';
import { metricNamespace, serviceName } from '../lib/metrics.ts';
import { createFunction } from './app.ts';
import { createConnections } from './connections.ts';

// The deployed entry point (index.handler, index.flushHandler). Everything at
// module scope runs once per cold start and is reused by every invocation the
// execution environment serves: configuration, clients, secrets, connections.

const config = loadRuntimeConfig();
const service = serviceName(config.stack.app, config.stack.stage);
const logger = new Logger({ serviceName: service });
const metrics = new Metrics({ namespace: metricNamespace, serviceName: service });

const connections = await createConnections(config, {
  secrets: createSecretsManagerClient(config.aws),
  onError: (what, error) => logger.warn(`${what} failed`, { error }),
});

const fn = createFunction({
  s3: createS3Client(config.aws),
  redis: connections.redis,
  pool: connections.pool,
  buffer: config.buffer,
  schema: config.database.schema,
  logger,
  metrics,
});

export const handler = fn.handler;
export const flushHandler = fn.flushHandler;
