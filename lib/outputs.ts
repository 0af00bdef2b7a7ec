import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// What provisioning hands to every other script (generator, ops commands):
// .ada/outputs.<stage>.json, ignored by git. It holds names and endpoints only,
// never a secret value.
export interface StackOutputs {
  app: string;
  stage: string;
  region: string;
  accountId: string;
  bucket: string;
  uploadsPrefix: string;
  topicArn: string;
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
  functionName?: string;
  functionArn?: string;
  imageUri?: string;
  cacheEndpoint?: string;
  dbEndpoint?: string;
  dbSecretArn?: string;
  cacheAuthSecretArn?: string;
  alertsTopicArn?: string;
  dashboardName?: string;
  // the role generate.yml assumes (the repository variable AWS_GENERATOR_ROLE_ARN),
  // when GITHUB_REPOSITORY was set
  generatorRoleArn?: string;
  // set when the outputs describe the local emulated stack
  endpoint?: string;
  updatedAt: string;
}

export function outputsPath(stage: string, root = process.cwd()): string {
  return join(root, '.ada', `outputs.${stage}.json`);
}

export async function writeOutputs(outputs: StackOutputs, root?: string): Promise<string> {
  const path = outputsPath(outputs.stage, root);
  await mkdir(dirname(path), { recursive: true });
  // write-then-rename so a reader never sees half a file
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(outputs, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
  return path;
}

export async function readOutputs(stage: string, root?: string): Promise<StackOutputs | undefined> {
  try {
    return JSON.parse(await readFile(outputsPath(stage, root), 'utf8')) as StackOutputs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
