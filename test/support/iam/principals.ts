import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PolicyFile, readPolicyFile } from '../../../lib/policy-files.ts';
import type { IamFake } from '../../fakes/iam.ts';
import type { Scope } from './actions.ts';
import type { PolicyDocument, Principal } from './evaluate.ts';

// The principals that make the project's AWS calls, with the policies they
// really get: the deployer's and the operator's documented policies, the role
// the scheduled generator assumes, and the roles as up.ts writes them, each
// role capped by the permissions boundary (docs/boundary-policy.json).

const root = new URL('../../../', import.meta.url);
const fromRoot = (path: string) => fileURLToPath(new URL(path, root));

// A stack in an account and region: the policy files are filled in per stack
export interface StackScope extends Scope {
  app: string;
  stage: string;
}

export const stackScope = (scope: Scope, stage: string, app = 'ada-linecount'): StackScope => ({
  ...scope,
  app,
  stage,
});

// the deployer's own name in IAM, for the DEPLOYER placeholder
export const deployerName = 'role/deployer';

// A policy file of docs/ with its placeholders filled in, as a user attaches it
export function policyFile(file: PolicyFile, scope: StackScope, deployer = deployerName): PolicyDocument {
  return readPolicyFile(file, { ...scope, deployer }) as PolicyDocument;
}

// The boundary as provision/bootstrap.ts creates it: every region and stage of the app
export function boundaryDocument(scope: StackScope): PolicyDocument {
  return readPolicyFile(PolicyFile.boundary, { ...scope, region: '*', stage: '*' }) as PolicyDocument;
}

export function deployer(
  scope: StackScope,
  document: PolicyDocument = policyFile(PolicyFile.deployer, scope),
): Principal {
  return {
    name: `the deployer (${PolicyFile.deployer})`,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:${deployerName}`,
    policies: [{ name: 'deployer-policy', document }],
  };
}

// whoever runs the ops commands
export function operator(scope: StackScope): Principal {
  return {
    name: `the operator (${PolicyFile.operator})`,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:role/operator`,
    policies: [{ name: 'operator-policy', document: policyFile(PolicyFile.operator, scope) }],
  };
}

// The policy file of each role a workflow may assume, by the repository
// variable that holds the role's ARN (docs/image.md, GitHub OIDC setup), and
// whether that role carries the permissions boundary.
const workflowRoles: Record<
  string,
  { file: PolicyFile; role: (scope: StackScope) => string; bounded: boolean }
> = {
  AWS_DEPLOY_ROLE_ARN: { file: PolicyFile.deployer, role: () => 'deployer', bounded: false },
  AWS_GENERATOR_ROLE_ARN: {
    file: PolicyFile.generator,
    role: (scope) => `${scope.app}-${scope.stage}-generator`,
    bounded: true,
  },
};

// The principal the scheduled generator runs as: the role that
// .github/workflows/generate.yml assumes, with that role's policy file.
export function generator(scope: StackScope): Principal {
  const workflow = readFileSync(fromRoot('.github/workflows/generate.yml'), 'utf8');
  const variable = /role-to-assume:\s*\$\{\{\s*vars\.(\w+)\s*\}\}/.exec(workflow)?.[1];
  const known = variable === undefined ? undefined : workflowRoles[variable];
  if (known === undefined) {
    throw new Error(
      `generate.yml assumes ${variable ?? 'no role'}: add that role's policy file to workflowRoles in test/support/iam/principals.ts`,
    );
  }
  return {
    name: `the scheduled generator (vars.${variable}, ${known.file})`,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:role/${known.role(scope)}`,
    policies: [{ name: known.file, document: policyFile(known.file, scope) }],
    boundary: known.bounded ? boundaryDocument(scope) : undefined,
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

// The deploy role in the IAM fake, holding `document` (the STS fake's caller is
// a session of it): what the permission check before a run simulates
export function addDeployerRole(iam: IamFake, scope: StackScope, document: PolicyDocument): void {
  const name = deployerName.slice('role/'.length);
  iam.roles.set(name, {
    name,
    arn: `arn:${scope.partition}:iam::${scope.accountId}:${deployerName}`,
    roleId: 'AROADEPLOYER000000000',
    createDate: new Date(),
    description: 'the deploy role',
    trustPolicy: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
    inlinePolicies: new Map([['deployer-policy', JSON.stringify(document)]]),
    attachedPolicies: [],
    tags: new Map(),
  });
}

// A role as it is in the IAM fake after a run: its inline policies as up.ts
// put them, and the boundary it carries as the fake holds it
export function roleInFake(iam: IamFake, roleArn: string): Principal {
  const role = [...iam.roles.values()].find((r) => r.arn === roleArn);
  if (role === undefined) throw new Error(`no role ${roleArn} in the IAM fake`);
  return {
    name: `the role ${role.name} (as up.ts wrote it)`,
    arn: role.arn,
    policies: [...role.inlinePolicies].map(([name, document]) => ({
      name,
      document: JSON.parse(document) as PolicyDocument,
    })),
    boundary:
      role.permissionsBoundary === undefined ? undefined : iam.policyDocument(role.permissionsBoundary),
  };
}
