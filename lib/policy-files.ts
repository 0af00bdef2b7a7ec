import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The IAM policies of docs/ are the only copy of each: a user attaches them,
// provision/bootstrap.ts creates the boundary from one, the preflight of
// provision/up.ts simulates the deployer's, and the tests decide every
// recorded call against them. Each has placeholders a user fills in:
// ACCOUNT, REGION, APP and STAGE (lib/names.ts builds every name from APP and
// STAGE), DEPLOYER in the deployer's, and the partition of every ARN (arn:aws:).

export const PolicyFile = {
  // up, up --plan and down (the deploy and teardown workflows)
  deployer: 'docs/deployer-policy.json',
  // the ops commands: status, redrive, audit, report
  operator: 'docs/operator-policy.json',
  // the permissions boundary every role of the app carries
  boundary: 'docs/boundary-policy.json',
  // the role generate.yml assumes, when created by hand instead of by up.ts
  generator: 'docs/generator-policy.json',
} as const;
export type PolicyFile = (typeof PolicyFile)[keyof typeof PolicyFile];

interface Placeholders {
  partition: string;
  region: string;
  accountId: string;
  app: string;
  stage: string;
  // DEPLOYER: the deploy identity's own name in IAM (role/NAME or user/NAME),
  // the one resource it may simulate its permissions on; left as it is when unknown
  deployer?: string | undefined;
}

// Resolved from this module, not the working directory: the file is found
// from any cwd, through `npx tsx provision/up.ts` or an import.
const root = new URL('../', import.meta.url);

export function policyFilePath(file: PolicyFile): string {
  return fileURLToPath(new URL(file, root));
}

export function fillPlaceholders(text: string, values: Placeholders): string {
  return text
    .replaceAll('arn:aws:', `arn:${values.partition}:`)
    .replace(/\bREGION\b/g, values.region)
    .replace(/\bACCOUNT\b/g, values.accountId)
    .replace(/\bAPP\b/g, values.app)
    .replace(/\bSTAGE\b/g, values.stage)
    .replace(/\bDEPLOYER\b/g, values.deployer ?? 'DEPLOYER');
}

export interface PolicyStatementJson {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

interface PolicyDocumentJson {
  Version: '2012-10-17';
  Statement: PolicyStatementJson[];
}

export function readPolicyFile(file: PolicyFile, values: Placeholders): PolicyDocumentJson {
  let text: string;
  try {
    text = readFileSync(policyFilePath(file), 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read ${file}, which ships with this code: ${(error as Error).message} (reinstall the checkout)`,
      { cause: error },
    );
  }
  return JSON.parse(fillPlaceholders(text, values)) as PolicyDocumentJson;
}
