import { createClients } from '../../lib/clients.ts';
import { type Env, loadDeployConfig } from '../../lib/config.ts';
import { type Identity, stackNames } from '../../lib/names.ts';
import type { Ctx, Log, Mode } from '../../lib/reconcile.ts';

export const testIdentity: Identity = { accountId: '123456789012', region: 'us-east-1', partition: 'aws' };

export interface CollectingLog extends Log {
  lines: string[];
}

export function collectingLog(): CollectingLog {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => lines.push(message),
    warn: (message) => lines.push(`warning: ${message}`),
    progress: (message) => lines.push(`progress: ${message}`),
  };
}

// A context over the fakes: the clients are real SDK clients whose `send` the
// fakes replace, so the code under test runs unchanged.
export function testContext(mode: Mode = 'apply', env: Env = {}, identity: Identity = testIdentity): Ctx {
  const config = loadDeployConfig({ AWS_REGION: identity.region, ...env });
  return {
    config,
    clients: createClients(config.aws),
    log: collectingLog(),
    mode,
    identity,
    names: stackNames(config.stack, identity),
    changes: [],
  };
}
