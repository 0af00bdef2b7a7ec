import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type MigrationResult, runMigration } from '../../../lambda-image/migrate.ts';
import { loadDeployConfig, loadMigrationConfig } from '../../../lib/config.ts';
import { stackNames } from '../../../lib/names.ts';
import { emulatorCredentials } from '../../../local/emulator.ts';
import { migrationEnvironment } from '../../../provision/resources/migration.ts';
import { installSecretsManagerFake } from '../../fakes/secrets-manager.ts';
import type { Scope } from '../../support/iam/actions.ts';
import type { Request } from '../../support/iam/evaluate.ts';
import { recordAuthorizations } from '../../support/iam/recorder.ts';
import type { TestMigrationTarget } from '../../support/migration.ts';
import { generateCertificate, PostgresGate, passwordCheck } from '../../support/pg-gate.ts';
import { testDatabaseUrl } from '../../support/services.ts';

// The migration function's own AWS calls, made by its code (runMigration, as
// index.migrateHandler runs it) with the configuration up.ts gives it
// (migrationEnvironment): it reads the RDS master secret by ARN from Secrets
// Manager (the fake answers) and signs in with it, over TLS, to a front that
// checks the password as RDS would (test/support/pg-gate.ts) before the
// machine's PostgreSQL. Two things differ from AWS, both because roles are
// cluster-wide on the shared test server: the migration works in the
// target's schema and creates the target's role rather than linecount_app,
// and the "master user" is the test server's own superuser.

export interface MigrationScenario {
  scope: Scope;
  stage: string;
  masterSecretArn: string;
  target: TestMigrationTarget;
}

export interface MigrationRecording {
  requests: Request[];
  unmapped: string[];
  result: MigrationResult;
}

const masterPassword = 'generated-by-rds';

export async function recordMigrationCalls(scenario: MigrationScenario): Promise<MigrationRecording> {
  const { scope, target } = scenario;
  const config = loadDeployConfig({ AWS_REGION: scope.region, STAGE: scenario.stage });
  const names = stackNames(config.stack, scope);
  const dir = mkdtempSync(join(tmpdir(), 'ada-iam-migration-'));
  const secrets = installSecretsManagerFake({ accountId: scope.accountId, region: scope.region });
  const secretsClient = new SecretsManagerClient({ region: scope.region, credentials: emulatorCredentials });
  const certificate = generateCertificate(dir, 'rds');
  const gate = await new PostgresGate({
    tls: certificate,
    check: passwordCheck(() => masterPassword),
  }).start();
  const server = new URL(testDatabaseUrl);
  // as RDS leaves it: tagged with its instance, the tag the boundary's condition reads
  const dbArn = `arn:${scope.partition}:rds:${scope.region}:${scope.accountId}:db:${names.db}`;
  secrets.state.secrets.set(scenario.masterSecretArn, {
    ARN: scenario.masterSecretArn,
    Name: scenario.masterSecretArn.split(':secret:')[1] ?? scenario.masterSecretArn,
    SecretString: JSON.stringify({ username: server.username || 'postgres', password: masterPassword }),
    Tags: [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }],
  });
  const log = recordAuthorizations(scope, {
    tagsOf: (arn) => {
      const secret = secrets.state.secrets.get(arn);
      return secret === undefined
        ? undefined
        : Object.fromEntries(secret.Tags.map((tag) => [tag.Key ?? '', tag.Value ?? '']));
    },
  });
  try {
    const environment = migrationEnvironment(
      { config, names },
      {
        host: '127.0.0.1',
        port: gate.port,
        name: server.pathname.slice(1) || 'test',
        secretArn: scenario.masterSecretArn,
      },
    );
    assert.equal(environment.DB_APP_USER, names.dbAppUser);
    const migration = loadMigrationConfig({
      ...environment,
      AWS_REGION: scope.region,
      DB_CA_FILE: certificate.certFile,
      DB_SCHEMA: target.schema,
      DB_APP_USER: target.role,
    });
    const result = await runMigration(migration, { secrets: secretsClient });
    assert.equal(result.role, target.role);
    return { requests: log.caller, unmapped: log.unmapped, result };
  } finally {
    log.stop();
    secretsClient.destroy();
    secrets.restore();
    await gate.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
