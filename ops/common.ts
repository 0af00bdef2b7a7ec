import type pg from 'pg';
import { createPool } from '../lambda-image/connections.ts';
import { createClient } from '../lib/clients.ts';
import { ConfigError, type DatabaseSettings, type OpsConfig } from '../lib/config.ts';
import { describeError, UsageError } from '../lib/errors.ts';
import { outputsPath, readOutputs } from '../lib/outputs.ts';

// What the ops commands share: where the database is, how output is written,
// and how a failure becomes a message and an exit code.

export const ExitCode = { ok: 0, attention: 1, failed: 2, usage: 64 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface Io {
  // the working directory that holds .ada/outputs.<stage>.json
  root?: string | undefined;
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

// The database named by the environment (DATABASE_URL, or DB_HOST with
// DB_SECRET_ARN), else by the stage's outputs file that provision/up.ts wrote.
export async function resolveDatabase(config: OpsConfig, root?: string): Promise<DatabaseSettings> {
  const given = config.database;
  if (given.url !== undefined || (given.host !== undefined && given.secretArn !== undefined)) return given;
  const outputs = await readOutputs(config.stack.stage, root);
  if (outputs?.dbEndpoint !== undefined && outputs.dbSecretArn !== undefined) {
    const [host, port] = outputs.dbEndpoint.split(':');
    return {
      ...given,
      host,
      port: port === undefined ? given.port : Number(port),
      secretArn: outputs.dbSecretArn,
    };
  }
  throw new UsageError(
    `no database to read: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test), or DB_HOST with DB_SECRET_ARN, ` +
      `or run provision/up.ts for stage ${config.stack.stage} so that ${outputsPath(config.stack.stage, root)} names it ` +
      '(the database is in a private VPC: reach it through a tunnel or from inside the VPC)',
  );
}

export interface Database {
  pool: pg.Pool;
  schema: string;
  close(): Promise<void>;
}

export async function openDatabase(config: OpsConfig, root?: string): Promise<Database> {
  const settings = await resolveDatabase(config, root);
  // the secrets client stays open with the pool: a rotated password is re-read through it
  const secrets = settings.secretArn === undefined ? undefined : createClient(config.aws, 'secretsManager');
  try {
    const pool = await createPool(settings, { secrets });
    return {
      pool,
      schema: settings.schema,
      async close() {
        await pool.end();
        secrets?.destroy();
      },
    };
  } catch (error) {
    secrets?.destroy();
    throw error;
  }
}

// Runs a command body and turns its failure into one line on stderr and an
// exit code: 64 for a usage or configuration problem, 2 for a failed step.
export async function runCommand(io: Io, body: () => Promise<ExitCode>): Promise<ExitCode> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      io.err(`${error.message}\n`);
      return ExitCode.usage;
    }
    io.err(`${describeError(error)}\n`);
    return ExitCode.failed;
  }
}
