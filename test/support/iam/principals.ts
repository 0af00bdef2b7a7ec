import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IamFake } from '../../fakes/iam.ts';
import type { Scope } from './actions.ts';
import type { PolicyDocument, Principal } from './evaluate.ts';

// The principals that make the project's AWS calls, with the policies they
// really get: the deployer's documented policy, and the roles as up.ts wrote them.

const deployerPolicyFile = fileURLToPath(new URL('../../../docs/deployer-policy.json', import.meta.url));

// docs/deployer-policy.json with its placeholders filled in, as a user attaches it
export function deployerPolicy(scope: Scope): PolicyDocument {
  const text = readFileSync(deployerPolicyFile, 'utf8')
    .replaceAll('REGION', scope.region)
    .replaceAll('ACCOUNT', scope.accountId);
  return JSON.parse(text) as PolicyDocument;
}

export function deployer(scope: Scope, document: PolicyDocument = deployerPolicy(scope)): Principal {
  return {
    name: 'the deployer (docs/deployer-policy.json)',
    arn: `arn:${scope.partition}:iam::${scope.accountId}:user/deployer`,
    policies: [{ name: 'deployer-policy', document }],
  };
}

export function principalOf(name: string, arn: string, document: PolicyDocument, boundary?: PolicyDocument): Principal {
  return { name, arn, policies: [{ name: 'inline', document }], ...(boundary === undefined ? {} : { boundary }) };
}

// A role as it is in the IAM fake after a run: its inline policies as up.ts put them
export function roleInFake(iam: IamFake, roleArn: string, boundaries: Record<string, PolicyDocument> = {}): Principal {
  const role = [...iam.roles.values()].find((r) => r.arn === roleArn);
  if (role === undefined) throw new Error(`no role ${roleArn} in the IAM fake`);
  const boundary = role.permissionsBoundary === undefined ? undefined : boundaries[role.permissionsBoundary];
  return {
    name: `the role ${role.name} (as up.ts wrote it)`,
    arn: role.arn,
    policies: [...role.inlinePolicies].map(([name, document]) => ({
      name,
      document: JSON.parse(document) as PolicyDocument,
    })),
    ...(boundary === undefined ? {} : { boundary }),
  };
}
