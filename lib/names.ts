import type { StackConfig } from './config.ts';

export interface Identity {
  accountId: string;
  region: string;
  partition: string;
}

// Every AWS name derives from APP and STAGE, so two stages never collide and
// teardown can find everything from the configuration alone.
export function stackNames(stack: StackConfig, identity: Identity) {
  const base = `${stack.app}-${stack.stage}`;
  return {
    base,
    // bucket names are global: the account and region make them unique (≤ 63 chars)
    bucket: `${base}-${identity.accountId}-${identity.region}`,
    uploadsPrefix: 'uploads/',
    topic: `${base}-uploads`,
    queue: `${base}-uploads`,
    dlq: `${base}-uploads-dlq`,
    alertsTopic: `${base}-alerts`,
    vpc: `${base}-vpc`,
    cacheSubnetGroup: `${base}-cache`,
    cacheParameterGroup: `${base}-cache-noeviction`,
    // ElastiCache replication-group ids are ≤ 40 characters
    cache: `${base}-cache`,
    cacheAuthSecret: `${base}/cache-auth`,
    dbSubnetGroup: `${base}-db`,
    dbParameterGroup: `${base}-db-force-ssl`,
    db: `${base}-db`,
    dbName: 'linecount',
    // the RDS master user: only the migration function connects as it
    dbUser: 'linecount',
    // the PostgreSQL role the counting and flush functions connect as, with
    // an IAM authentication token (lambda-image/schema.ts grants it its rights)
    dbAppUser: 'linecount_app',
    repository: base,
    function: `${base}-count`,
    flushFunctionAlias: 'flush',
    // the flush handler runs as a second function from the same image
    // (ImageConfig.Command), so each has its own configuration and logs
    flushFunction: `${base}-flush`,
    logGroup: `/aws/lambda/${base}-count`,
    flushLogGroup: `/aws/lambda/${base}-flush`,
    role: `${base}-function`,
    // the one-shot migration: the same image run as a third function
    // (ImageConfig.Command), with a role of its own that may read the master secret
    migrateFunction: `${base}-migrate`,
    migrateLogGroup: `/aws/lambda/${base}-migrate`,
    migrateRole: `${base}-migrate`,
    schedulerRole: `${base}-scheduler`,
    // the role .github/workflows/generate.yml assumes through GitHub's OIDC provider
    generatorRole: `${base}-generator`,
    // The permissions boundary every role of the app carries: one managed
    // policy per account and app (every stage shares it), created once by an
    // administrator (provision/bootstrap.ts), never by up.ts
    boundaryPolicy: `${stack.app}-boundary`,
    schedule: `${base}-flush`,
    dashboard: base,
    tags: { app: stack.app, stage: stack.stage, 'managed-by': 'ada-linecount' } as Record<string, string>,
  };
}

export type StackNames = ReturnType<typeof stackNames>;

// GitHub Actions' OIDC issuer, and the audience aws-actions/configure-aws-credentials
// asks its tokens for (GitHub Docs, "Configuring OpenID Connect in Amazon Web Services")
export const githubOidc = {
  host: 'token.actions.githubusercontent.com',
  audience: 'sts.amazonaws.com',
} as const;

export function arn(identity: Identity, service: string, resource: string, regional = true): string {
  return `arn:${identity.partition}:${service}:${regional ? identity.region : ''}:${identity.accountId}:${resource}`;
}
