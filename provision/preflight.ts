import {
  type ContextEntry,
  type EvaluationResult,
  NoSuchEntityException,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { describeError, stepError } from '../lib/errors.ts';
import { arn } from '../lib/names.ts';
import { PolicyFile, type PolicyStatementJson, policyFilePath, readPolicyFile } from '../lib/policy-files.ts';
import type { Ctx } from '../lib/reconcile.ts';
import { memberClusterIds } from './resources/alarms.ts';
import { boundaryArn } from './resources/boundary.ts';
import { cacheReplicas } from './resources/cache.ts';
import { githubProviderArn } from './resources/github-oidc.ts';

// The permission check before a run: is every request up will make allowed
// to the caller, on this stack's resources? IAM answers with
// iam:SimulatePrincipalPolicy, which evaluates the caller's own policies
// (identity policies, permissions boundary) for given actions, resources and
// request context without making the requests (IAM API reference,
// SimulatePrincipalPolicy). What up will request is docs/deployer-policy.json:
// the test suite records every call of up, --plan and down, maps each to the
// IAM requests AWS authorizes it as, and proves that file allows every one of
// them and grants nothing no request needs (test/iam/). So each Allow
// statement of that file is simulated for this stack: its actions, on the
// stack's own ARNs that its resources match, with the context keys its
// conditions read set to what up sends. A statement the caller lacks is
// printed whole, with this stack's names filled in, ready to add.
//
// Not covered: service control policies and resource policies beyond the
// caller's account are not part of a principal simulation, and condition keys
// AWS sets itself (aws:CalledVia) are not known in advance.

export interface Denial {
  statement: string;
  action: string;
  resource: string;
  decision: string;
  context: Record<string, string[]>;
  missingContext: string[];
}

export type PreflightResult =
  | {
      checked: true;
      principal: string;
      requests: number;
      denied: Denial[];
      statements: PolicyStatementJson[];
    }
  | { checked: false; reason: string };

// An assumed-role session is simulated as its role; STS gives the session's
// ARN without the role's path (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION),
// so a role with a path is not found under this name (NoSuchEntity).
export function principalOf(callerArn: string): string | undefined {
  const match = /^arn:([^:]+):(sts|iam)::(\d{12}):(.+)$/.exec(callerArn);
  if (match === null) return undefined;
  const [, partition, service, account, resource = ''] = match;
  if (service === 'sts') {
    const role = /^assumed-role\/([^/]+)\/[^/]+$/.exec(resource)?.[1];
    return role === undefined ? undefined : `arn:${partition}:iam::${account}:role/${role}`;
  }
  return resource.startsWith('user/') || resource.startsWith('role/') ? callerArn : undefined;
}

// The ARNs up and down act on, for the statements' patterns to pick from
export function stackArns(ctx: Ctx): string[] {
  const { identity, names } = ctx;
  const on = (service: string, resource: string, regional = true) =>
    arn(identity, service, resource, regional);
  return [
    `arn:${identity.partition}:s3:::${names.bucket}`,
    `arn:${identity.partition}:s3:::${names.bucket}/${names.uploadsPrefix}example.csv`,
    on('sns', names.topic),
    on('sns', names.alertsTopic),
    on('sqs', names.queue),
    on('sqs', names.dlq),
    on('secretsmanager', `secret:${names.cacheAuthSecret}-AbCdEf`),
    on('ecr', `repository/${names.repository}`),
    on('logs', `log-group:${names.logGroup}`),
    on('logs', `log-group:${names.flushLogGroup}`),
    on('logs', `log-group:${names.migrateLogGroup}`),
    on('iam', `role/${names.role}`, false),
    on('iam', `role/${names.migrateRole}`, false),
    on('iam', `role/${names.schedulerRole}`, false),
    on('iam', `role/${names.generatorRole}`, false),
    boundaryArn(ctx),
    githubProviderArn(ctx),
    on('lambda', `function:${names.function}`),
    on('lambda', `function:${names.flushFunction}`),
    on('lambda', `function:${names.migrateFunction}`),
    on('scheduler', `schedule/default/${names.schedule}`),
    on('cloudwatch', `dashboard/${names.dashboard}`, false),
    on('elasticache', `replicationgroup:${names.cache}`),
    ...memberClusterIds(names.cache, 1 + cacheReplicas).map((id) => on('elasticache', `cluster:${id}`)),
    on('elasticache', `subnetgroup:${names.cacheSubnetGroup}`),
    on('elasticache', `parametergroup:${names.cacheParameterGroup}`),
    on('rds', `db:${names.db}`),
    on('rds', `subgrp:${names.dbSubnetGroup}`),
    on('rds', `pg:${names.dbParameterGroup}`),
  ];
}

const asList = (value: string | string[] | undefined) =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

// IAM's wildcards in ARNs: * any run of characters, ? one (IAM User Guide,
// "IAM JSON policy elements: Resource")
function matches(pattern: string, value: string): boolean {
  const expression = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${expression}$`).test(value);
}

// The statement's resources as this stack's ARNs; a pattern no stack ARN
// matches (EC2 ids, event-source-mapping:*) is simulated as written.
export function resourcesOf(statement: PolicyStatementJson, arns: readonly string[]): string[] {
  const out = new Set<string>();
  for (const pattern of asList(statement.Resource)) {
    // "*": actions that take no resource (SAR), simulated on "*" as AWS authorizes them
    const found = pattern === '*' ? [] : arns.filter((candidate) => matches(pattern, candidate));
    for (const resource of found.length > 0 ? found : [pattern]) out.add(resource);
  }
  return [...out];
}

// What up sends for each condition key: the stack's tags, boundary, function
// and principal where the key names them; otherwise the values the statement
// expects, which the test suite proves are what up sends. A single-valued key
// listed with several values (iam:PassedToService) is one request per value.
export function contextsOf(statement: PolicyStatementJson, ctx: Ctx, principal: string): ContextEntry[][] {
  const { names, identity } = ctx;
  const known = (key: string): string | undefined => {
    const tag = /^aws:(?:Request|Resource)Tag\/(.+)$/.exec(key)?.[1];
    if (tag === 'aws:rds:primaryDBInstanceArn') return arn(identity, 'rds', `db:${names.db}`);
    if (tag !== undefined) return names.tags[tag];
    if (key === 'iam:PermissionsBoundary') return boundaryArn(ctx);
    if (key === 'lambda:FunctionArn') return arn(identity, 'lambda', `function:${names.function}`);
    if (key === 'aws:PrincipalArn') return principal;
    return undefined;
  };
  let variants: ContextEntry[][] = [[]];
  for (const [operator, entries] of Object.entries(statement.Condition ?? {})) {
    const multiValued = operator.startsWith('ForAllValues:') || operator.startsWith('ForAnyValue:');
    for (const [key, expected] of Object.entries(entries)) {
      const value = known(key);
      const values = value === undefined ? asList(expected) : [value];
      if (multiValued) {
        const entry = {
          ContextKeyName: key,
          ContextKeyValues: values,
          ContextKeyType: 'stringList' as const,
        };
        variants = variants.map((variant) => [...variant, entry]);
      } else {
        variants = variants.flatMap((variant) =>
          values.map((one) => [
            ...variant,
            { ContextKeyName: key, ContextKeyValues: [one], ContextKeyType: 'string' as const },
          ]),
        );
      }
    }
  }
  return variants;
}

async function simulate(
  ctx: Ctx,
  input: { principal: string; actions: string[]; resources: string[]; context: ContextEntry[] },
): Promise<EvaluationResult[]> {
  const results: EvaluationResult[] = [];
  let Marker: string | undefined;
  do {
    const page = await ctx.clients.iam.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: input.principal,
        ActionNames: input.actions,
        ResourceArns: input.resources,
        ...(input.context.length > 0 ? { ContextEntries: input.context } : {}),
        ...(Marker === undefined ? {} : { Marker }),
      }),
    );
    results.push(...(page.EvaluationResults ?? []));
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker !== undefined);
  return results;
}

// One decision per action and resource, however IAM groups them
function decisionsOf(result: EvaluationResult): { resource: string; decision: string; missing: string[] }[] {
  const specific = result.ResourceSpecificResults ?? [];
  if (specific.length > 0) {
    return specific.map((r) => ({
      resource: r.EvalResourceName ?? '*',
      decision: String(r.EvalResourceDecision ?? 'implicitDeny'),
      missing: r.MissingContextValues ?? [],
    }));
  }
  return [
    {
      resource: result.EvalResourceName ?? '*',
      decision: String(result.EvalDecision ?? 'implicitDeny'),
      missing: result.MissingContextValues ?? [],
    },
  ];
}

export async function checkPermissions(
  ctx: Ctx,
  file: PolicyFile = PolicyFile.deployer,
): Promise<PreflightResult> {
  const { identity, config } = ctx;
  let callerArn: string | undefined;
  try {
    callerArn = (await ctx.clients.sts.send(new GetCallerIdentityCommand({}))).Arn;
  } catch (error) {
    throw stepError('identify the AWS caller (sts:GetCallerIdentity)', error);
  }
  const principal = callerArn === undefined ? undefined : principalOf(callerArn);
  if (principal === undefined) {
    return {
      checked: false,
      reason: `${callerArn ?? 'the caller'} is not an IAM user or role session, whose policies IAM can simulate`,
    };
  }
  const document = readPolicyFile(file, {
    partition: identity.partition,
    region: identity.region,
    accountId: identity.accountId,
    app: config.stack.app,
    stage: config.stack.stage,
    deployer: principal.slice(principal.indexOf(':iam::') + ':iam::'.length + 13),
  });
  const arns = stackArns(ctx);
  const statements = document.Statement.filter((s) => s.Effect === 'Allow');
  const denied: Denial[] = [];
  let requests = 0;
  try {
    for (const statement of statements) {
      const actions = asList(statement.Action);
      const resources = resourcesOf(statement, arns);
      for (const context of contextsOf(statement, ctx, principal)) {
        requests += actions.length * resources.length;
        for (const result of await simulate(ctx, { principal, actions, resources, context })) {
          for (const decision of decisionsOf(result)) {
            if (decision.decision === 'allowed') continue;
            denied.push({
              statement: statement.Sid ?? '(unnamed)',
              action: result.EvalActionName ?? '',
              resource: decision.resource,
              decision: decision.decision,
              context: Object.fromEntries(
                context.map((e) => [e.ContextKeyName ?? '', e.ContextKeyValues ?? []]),
              ),
              missingContext: decision.missing,
            });
          }
        }
      }
    }
  } catch (error) {
    if (error instanceof NoSuchEntityException) {
      return {
        checked: false,
        reason: `IAM does not know ${principal} (a role with a path is not named by its session's ARN): ${describeError(error)}`,
      };
    }
    const name = error instanceof Error ? error.name : '';
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (/AccessDenied/.test(name) || status === 403) {
      return {
        checked: false,
        reason: `${principal} may not call iam:SimulatePrincipalPolicy on itself (statement CheckOwnPermissions of ${file})`,
      };
    }
    // an emulator without the operation answers 500 with a page the SDK cannot parse
    const detail = describeError(error).split('\n')[0];
    return {
      checked: false,
      reason: `iam:SimulatePrincipalPolicy failed${status === undefined ? '' : ` (HTTP ${status})`}: ${detail}`,
    };
  }
  return { checked: true, principal, requests, denied, statements };
}

// The report: each statement the caller lacks, what of it is denied, and the
// statement to add.
export function renderDenials(result: Extract<PreflightResult, { checked: true }>, file: PolicyFile): string {
  const lines = [
    `${result.principal} may not make ${result.denied.length} of the ${result.requests} requests up needs (iam:SimulatePrincipalPolicy):`,
  ];
  const bySid = new Map<string, Denial[]>();
  for (const denial of result.denied)
    bySid.set(denial.statement, [...(bySid.get(denial.statement) ?? []), denial]);
  for (const [sid, denials] of bySid) {
    for (const d of denials) {
      const context = Object.entries(d.context)
        .map(([key, values]) => `${key}=${values.join(',')}`)
        .join(' ');
      lines.push(
        `  ${d.action} on ${d.resource}${context ? ` with ${context}` : ''}: ${d.decision}${d.missingContext.length ? ` (missing context: ${d.missingContext.join(', ')})` : ''}`,
      );
    }
    const statement = result.statements.find((s) => (s.Sid ?? '(unnamed)') === sid);
    lines.push(
      `  add statement ${sid} of ${file} (${policyFilePath(file)}):`,
      `    ${JSON.stringify(statement)}`,
    );
  }
  return lines.join('\n');
}
