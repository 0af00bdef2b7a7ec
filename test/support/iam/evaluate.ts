import { AssertionError } from 'node:assert';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { Authorization, Scope } from './actions.ts';

// Checks recorded AWS calls against the IAM policies of the principal that
// made them, with @cloud-copilot/iam-simulate (AGPL-3.0, used by tests only)
// evaluating each request as IAM does: identity policies, the permissions
// boundary, explicit denies, conditions on the request context.

export interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
  Principal?: unknown;
}

export interface Principal {
  // who this is, in findings: "the deployer (docs/deployer-policy.json)"
  name: string;
  arn: string;
  policies: { name: string; document: PolicyDocument }[];
  boundary?: PolicyDocument;
}

export interface Request {
  call: string;
  authorization: Authorization;
}

export interface Finding extends Request {
  principal: string;
  result: string;
}

export interface Evaluation {
  denied: Finding[];
  // grants of the principal's policies that some allowed request used: "<policy>#<statement>:<action>"
  used: Set<string>;
  requests: number;
}

const asList = (value: string | string[] | undefined) =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export function statementId(statement: Statement, index: number): string {
  return statement.Sid ?? `statement ${index + 1}`;
}

// The statement a user would add to allow a denied request
export function suggestion(authorization: Authorization): string {
  const condition: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of Object.entries(authorization.context)) {
    if (key === 'lambda:FunctionArn' || key === 'iam:PassedToService') {
      condition[key.endsWith('Arn') ? 'ArnLike' : 'StringEquals'] = { [key]: value };
    }
  }
  return JSON.stringify({
    Effect: 'Allow',
    Action: authorization.action,
    Resource: authorization.resource,
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  });
}

export function describe(finding: Finding): string {
  const { authorization } = finding;
  const lines = [
    `${finding.principal} may not ${authorization.action} on ${authorization.resource} (${finding.result}), needed by ${finding.call}${authorization.why === undefined ? '' : `: ${authorization.why}`}`,
  ];
  const context = Object.entries(authorization.context).filter(([key]) => !key.startsWith('aws:SecureTransport'));
  if (context.length > 0) lines.push(`  request context: ${JSON.stringify(Object.fromEntries(context))}`);
  lines.push(`  a statement that allows it: ${suggestion(authorization)}`);
  return lines.join('\n');
}

export async function evaluateRequests(principal: Principal, requests: readonly Request[], scope: Scope): Promise<Evaluation> {
  const denied: Finding[] = [];
  const used = new Set<string>();
  const seen = new Map<string, string>();
  // a request denied once is reported once, however many calls needed it
  const reported = new Set<string>();
  for (const request of requests) {
    const { authorization } = request;
    // every call is made over TLS (the SDK's default; the bucket policy denies anything else)
    const context = { 'aws:SecureTransport': 'true', ...authorization.context };
    const key = JSON.stringify([authorization.action, authorization.resource, context]);
    let result = seen.get(key);
    if (result === undefined) {
      const response = await runSimulation(
        {
          request: {
            principal: principal.arn,
            action: authorization.action,
            resource: { resource: authorization.resource, accountId: scope.accountId },
            contextVariables: context,
          },
          identityPolicies: principal.policies.map((p) => ({ name: p.name, policy: p.document })),
          ...(principal.boundary === undefined
            ? {}
            : { permissionBoundaryPolicies: [{ name: 'boundary', policy: principal.boundary }] }),
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          ...(authorization.resourcePolicy === undefined ? {} : { resourcePolicy: authorization.resourcePolicy }),
        },
        {},
      );
      if (response.resultType === 'error') {
        throw new Error(
          `IAM cannot evaluate ${authorization.action} on ${authorization.resource} for ${request.call}: ${JSON.stringify(response.errors)} (fix its entry in test/support/iam/actions.ts)`,
        );
      }
      result = response.overallResult;
      // a resource pattern (a resource not created yet: vpc/*) is evaluated once per resource type it may be
      const analyses = response.resultType === 'single' ? [response.result] : response.results;
      const allows = analyses.flatMap((a) => a.analysis?.identityAnalysis?.allowStatements ?? []);
      for (const allow of allows) {
        const policy = principal.policies.find((p) => p.name === allow.policyId);
        const index = policy?.document.Statement.findIndex((s) => JSON.stringify(s) === JSON.stringify(allow.statement)) ?? -1;
        if (policy === undefined || index < 0) continue;
        const statement = policy.document.Statement[index] as Statement;
        for (const action of asList(statement.Action)) {
          if (actionMatches(action, authorization.action)) used.add(`${policy.name}#${statementId(statement, index)}:${action}`);
        }
      }
      seen.set(key, result);
    }
    if (result !== 'Allowed' && !reported.has(key)) {
      reported.add(key);
      denied.push({ ...request, principal: principal.name, result });
    }
  }
  return { denied, used, requests: requests.length };
}

function actionMatches(pattern: string, action: string): boolean {
  const expression = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return expression.test(action);
}

// Every Allow grant (statement × action) of the principal's policies that no
// allowed request used: a least-privilege finding.
export function unusedGrants(principal: Principal, used: ReadonlySet<string>): string[] {
  const unused: string[] = [];
  for (const policy of principal.policies) {
    policy.document.Statement.forEach((statement, index) => {
      if (statement.Effect !== 'Allow') return;
      for (const action of asList(statement.Action)) {
        const grant = `${policy.name}#${statementId(statement, index)}:${action}`;
        if (!used.has(grant)) unused.push(grant);
      }
    });
  }
  return unused;
}

// Fails with every finding listed once, readable in a test report
export function assertNoFindings(findings: readonly string[], what: string): void {
  if (findings.length === 0) return;
  throw new AssertionError({
    message: `${findings.length} ${what}:\n${findings.map((f) => `- ${f}`).join('\n')}`,
    actual: findings.length,
    expected: 0,
    operator: 'strictEqual',
  });
}
