import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IamFake } from '../../fakes/iam.ts';
import type { Scope } from './actions.ts';
import type { PolicyDocument, Principal } from './evaluate.ts';

// The principals that make the project's AWS calls, with the policies they
// really get: the deployer's documented policy, the role the scheduled
// generator assumes, and the roles as up.ts writes them.

const root = new URL('../../../', import.meta.url);
const fromRoot = (path: string) => fileURLToPath(new URL(path, root));

export const deployerPolicyPath = 'docs/deployer-policy.json';

// A policy file of docs/ with its placeholders filled in, as a user attaches it
export function policyFile(path: string, scope: Scope): PolicyDocument {
  const text = readFileSync(fromRoot(path), 'utf8')
    .replaceAll('REGION', scope.region)
    .replaceAll('ACCOUNT', scope.accountId);
  return JSON.parse(text) as PolicyDocument;
}

export function deployer(
  scope: Scope,
  document: PolicyDocument = policyFile(deployerPolicyPath, scope),
): Principal {
  return {
    name: `the deployer (${deployerPolicyPath})`,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:role/deployer`,
    policies: [{ name: 'deployer-policy', document }],
  };
}

// The policy file of each role a workflow may assume, by the repository
// variable that holds the role's ARN (docs/image.md, GitHub OIDC setup).
const workflowRoles: Record<string, string> = {
  AWS_DEPLOY_ROLE_ARN: deployerPolicyPath,
};

// The principal the scheduled generator runs as: the role that
// .github/workflows/generate.yml assumes, with that role's policy file.
export function generator(scope: Scope): Principal {
  const workflow = readFileSync(fromRoot('.github/workflows/generate.yml'), 'utf8');
  const variable = /role-to-assume:\s*\$\{\{\s*vars\.(\w+)\s*\}\}/.exec(workflow)?.[1];
  const path = variable === undefined ? undefined : workflowRoles[variable];
  if (path === undefined) {
    throw new Error(
      `generate.yml assumes ${variable ?? 'no role'}: add that role's policy file to workflowRoles in test/support/iam/principals.ts`,
    );
  }
  return {
    name: `the scheduled generator (vars.${variable}, ${path})`,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:role/generator`,
    policies: [
      { name: path === deployerPolicyPath ? 'deployer-policy' : path, document: policyFile(path, scope) },
    ],
  };
}

// A role with one inline policy, as ensureRole writes it
export function rolePrincipal(
  name: string,
  arn: string,
  policyName: string,
  document: PolicyDocument,
  boundary?: PolicyDocument,
): Principal {
  return { name, arn, policies: [{ name: policyName, document }], boundary };
}

// A role as it is in the IAM fake after a run: its inline policies as up.ts put them
export function roleInFake(
  iam: IamFake,
  roleArn: string,
  boundaries: Record<string, PolicyDocument> = {},
): Principal {
  const role = [...iam.roles.values()].find((r) => r.arn === roleArn);
  if (role === undefined) throw new Error(`no role ${roleArn} in the IAM fake`);
  return {
    name: `the role ${role.name} (as up.ts wrote it)`,
    arn: role.arn,
    policies: [...role.inlinePolicies].map(([name, document]) => ({
      name,
      document: JSON.parse(document) as PolicyDocument,
    })),
    boundary: role.permissionsBoundary === undefined ? undefined : boundaries[role.permissionsBoundary],
  };
}
