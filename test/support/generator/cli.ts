import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { credentials, mainPath, region, tsxLoader } from './emulator.ts';

// Runs the generator CLI as a user would: a child process configured only by
// its flags and environment, in a working directory of the test's choosing
// (where it looks for .ada/outputs.<stage>.json).

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  args: string[];
  // undefined removes a variable from the child's environment
  env?: Record<string, string | undefined>;
  cwd: string;
  endpoint: string;
  // node flags before the generator's script (the memory test preloads a sampler)
  nodeArgs?: string[];
}

export function spawnCli(run: CliRun): {
  stderr: Readable;
  kill(signal: NodeJS.Signals): void;
  result: Promise<CliResult>;
} {
  // a clean environment (node is started by its absolute path, so not even
  // PATH is needed): nothing from the machine's AWS setup leaks in, and
  // instance-metadata lookups (network traffic off 127.0.0.1) are disabled
  const base = {
    HOME: run.cwd,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL: run.endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const env = Object.fromEntries(
    Object.entries({ ...base, ...run.env }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  const child = spawn(
    process.execPath,
    ['--import', tsxLoader, ...(run.nodeArgs ?? []), mainPath, ...run.args],
    {
      cwd: run.cwd,
      env,
    },
  );
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { stderr: child.stderr, kill: (signal) => child.kill(signal), result };
}
