import {
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  EntityAlreadyExistsException,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  ListRoleTagsCommand,
  NoSuchEntityException,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  type Role,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { arn, githubOidc } from '../../lib/names.ts';
import { PolicyFile, readPolicyFile } from '../../lib/policy-files.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  orAbsent,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import {
  allow,
  type PolicyDocument,
  type PolicyStatement,
  parsePolicy,
  policyDocument,
  policyDrift,
} from '../policy.ts';
import { fromTagList, type Tags, tagDrift, toTagList } from '../tags.ts';
import { boundaryArn } from './boundary.ts';
import { logGroupStreamsArn } from './log-group.ts';

const kind = 'iam role';

export interface DesiredRole {
  name: string;
  description: string;
  trustPolicy: PolicyDocument;
  // one inline policy per role: it lives and dies with the role, so nothing
  // is left attached to a deleted role and nothing else can grow to use it
  policyName: string;
  policy: PolicyDocument;
  // the managed policy that caps whatever the role is ever given (IAM User
  // Guide, "Permissions boundaries for IAM entities"): the deployer may create
  // and change only roles that carry it (docs/deployer-policy.json)
  permissionsBoundary: string;
  tags: Tags;
}

export type LiveRole = NonNullable<Awaited<ReturnType<typeof findRole>>>;

export type RoleContext = Pick<Ctx, 'identity' | 'names' | 'config'>;

export interface FunctionRoleInputs {
  bucket: string;
  queueArn: string;
  // the cache's auth token; never the database's master secret
  secretArns: string[];
  // the instance (DbiResourceId) and the PostgreSQL role the functions sign in as
  database: { resourceId: string; user: string };
  logGroups: string[];
}

export interface SchedulerRoleInputs {
  functionArn: string;
}

// What every role up.ts makes carries: the permissions boundary, without
// which the deployer may not create it (boundary.ts), and the stack's tags.
export function stackRole(
  ctx: RoleContext,
  role: Omit<DesiredRole, 'permissionsBoundary' | 'tags'>,
): DesiredRole {
  return { ...role, permissionsBoundary: boundaryArn(ctx), tags: ctx.names.tags };
}

export function trustPolicy(ctx: Pick<Ctx, 'identity'>, service: string): PolicyDocument {
  return policyDocument({
    Effect: 'Allow',
    Principal: { Service: service },
    Action: 'sts:AssumeRole',
    // confused-deputy guard: only this account's use of the service may
    // assume the role (IAM User Guide, "The confused deputy problem")
    Condition: { StringEquals: { 'aws:SourceAccount': ctx.identity.accountId } },
  });
}

export function desiredFunctionRole(ctx: RoleContext, inputs: FunctionRoleInputs): DesiredRole {
  const { identity, names } = ctx;
  const bucket = `arn:${identity.partition}:s3:::${inputs.bucket}`;
  return stackRole(ctx, {
    name: names.role,
    description: `${names.base}: the line-counting functions`,
    trustPolicy: trustPolicy(ctx, 'lambda.amazonaws.com'),
    policyName: 'least-privilege',
    policy: policyDocument(
      // The bucket is versioned, so every event names a version and the
      // function reads that one: GetObject with a versionId is authorized as
      // s3:GetObjectVersion (GetObject API reference, Permissions).
      allow('ReadUploads', ['s3:GetObject', 's3:GetObjectVersion'], `${bucket}/${names.uploadsPrefix}*`),
      // Without s3:ListBucket S3 answers a missing object with 403, not 404
      // (GetObject API reference, Permissions), and a deleted upload could not
      // be told from a permission error. It lists key names only; objects
      // outside uploads/ stay unreadable.
      allow('TellMissingUploads', 's3:ListBucket', bucket),
      // what the event source mapping does on the function's behalf
      allow(
        'ConsumeQueue',
        ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        inputs.queueArn,
      ),
      allow('ReadConnectionSecrets', 'secretsmanager:GetSecretValue', [...inputs.secretArns].sort()),
      // Signing in to PostgreSQL as one role of one instance, with an IAM
      // authentication token (RDS User Guide, "Creating and using an IAM
      // policy for IAM database access"; SAR: rds-db:connect takes only
      // the db-user resource, dbuser:DbiResourceId/user). The master
      // secret is the migration role's alone (migration.ts).
      allow(
        'ConnectToDatabase',
        'rds-db:connect',
        databaseUserArn(identity, inputs.database.resourceId, inputs.database.user),
      ),
      writeLogsStatement(ctx, inputs.logGroups),
      ...vpcExecutionStatements(identity),
    ),
  });
}

export function databaseUserArn(identity: Ctx['identity'], resourceId: string, user: string): string {
  return arn(identity, 'rds-db', `dbuser:${resourceId}/${user}`);
}

export function writeLogsStatement(
  ctx: Pick<Ctx, 'identity'>,
  logGroups: readonly string[],
): PolicyStatement {
  return allow(
    'WriteLogs',
    ['logs:CreateLogStream', 'logs:PutLogEvents'],
    logGroups.map((group) => logGroupStreamsArn(ctx, group)).sort(),
  );
}

// What a function in a VPC needs of its execution role; every function of the
// stack runs in the VPC.
export function vpcExecutionStatements(identity: Ctx['identity']): PolicyStatement[] {
  return [
    // What Lambda does with the role to attach the function to its subnets
    // (Lambda Developer Guide, "Giving Lambda functions access to
    // resources in an Amazon VPC", Required IAM permissions; the
    // AWSLambdaVPCAccessExecutionRole actions, whose version 3 of
    // January 2024 added ec2:DescribeSubnets: AWS Managed Policy
    // Reference). The Describe calls have no resource-level
    // permissions: they only work on "*" (Service Authorization Reference).
    allow('DescribeVpcNetworkInterfaces', ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], '*'),
    // Kept to this account and region, spelled once per resource type the
    // action takes (SAR: network-interface, subnet, security-group), since
    // the IAM User Guide allows no wildcard in an ARN's resource-type part.
    // Lambda creates the interfaces itself, with ids nobody knows in
    // advance. It is not narrowed to the function's subnets and security
    // group: Lambda checks the role when the function is created or updated
    // ("The provided execution role does not have permissions to call
    // CreateNetworkInterface on EC2") in a way AWS does not document, and
    // AWS documents no narrower scope that it accepts.
    allow(
      'CreateVpcNetworkInterfaces',
      'ec2:CreateNetworkInterface',
      ['network-interface', 'security-group', 'subnet'].map((type) => arn(identity, 'ec2', `${type}/*`)),
    ),
    // These take only the interface (SAR); the guide asks for every
    // interface id of the account for DeleteNetworkInterface, or the
    // function may lose its VPC access.
    allow(
      'ManageVpcNetworkInterfaces',
      ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      arn(identity, 'ec2', 'network-interface/*'),
    ),
  ];
}

export function desiredSchedulerRole(ctx: RoleContext, inputs: SchedulerRoleInputs): DesiredRole {
  const { names } = ctx;
  return stackRole(ctx, {
    name: names.schedulerRole,
    description: `${names.base}: EventBridge Scheduler invoking the flush function`,
    trustPolicy: trustPolicy(ctx, 'scheduler.amazonaws.com'),
    policyName: 'invoke-flush',
    policy: policyDocument(allow('InvokeFlush', 'lambda:InvokeFunction', inputs.functionArn)),
  });
}

export interface GeneratorRoleInputs {
  // the account's GitHub OIDC provider (github-oidc.ts)
  providerArn: string;
  // owner/name
  repository: string;
}

// The role .github/workflows/generate.yml assumes: GitHub's OIDC token for a
// run of the repository's main branch, traded for credentials that may only
// put objects under uploads/. Its policy is docs/generator-policy.json, the
// same file a user attaches when creating the role by hand.
export function desiredGeneratorRole(ctx: RoleContext, inputs: GeneratorRoleInputs): DesiredRole {
  const { identity, names } = ctx;
  return stackRole(ctx, {
    name: names.generatorRole,
    description: `${names.base}: the scheduled generator (${inputs.repository}, main branch)`,
    trustPolicy: githubTrustPolicy(inputs),
    policyName: 'upload-only',
    policy: readPolicyFile(PolicyFile.generator, {
      ...identity,
      app: ctx.config.stack.app,
      stage: ctx.config.stack.stage,
    }) as PolicyDocument,
  });
}

// Only tokens GitHub issues for this repository's main branch, asked for the
// audience configure-aws-credentials uses: both claims are checked with
// StringEquals, never a wildcard (IAM User Guide, "Create a role for OpenID
// Connect federation": GitHub's sub claim; GitHub Docs, "Configuring OpenID
// Connect in Amazon Web Services": repo:OWNER/REPO:ref:refs/heads/BRANCH).
export function githubTrustPolicy(inputs: GeneratorRoleInputs): PolicyDocument {
  return policyDocument({
    Effect: 'Allow',
    Principal: { Federated: inputs.providerArn },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: {
      StringEquals: {
        [`${githubOidc.host}:aud`]: githubOidc.audience,
        [`${githubOidc.host}:sub`]: `repo:${inputs.repository}:ref:refs/heads/main`,
      },
    },
  });
}

export function roleArn(ctx: Pick<Ctx, 'identity'>, name: string): string {
  return arn(ctx.identity, 'iam', `role/${name}`, false);
}

async function getRole(ctx: Ctx, RoleName: string): Promise<Role | undefined> {
  const answer = await orAbsent(
    () => ctx.clients.iam.send(new GetRoleCommand({ RoleName })),
    NoSuchEntityException,
  );
  return answer?.Role;
}

async function findRole(ctx: Ctx, name: string, policyName: string) {
  const { iam } = ctx.clients;
  const role = await getRole(ctx, name);
  if (role?.Arn === undefined) return undefined;
  // a role without its inline policy: the policy is put back
  const inline = await orAbsent(
    () => iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: policyName })),
    NoSuchEntityException,
  );
  const { Tags } = await iam.send(new ListRoleTagsCommand({ RoleName: name }));
  return {
    name,
    arn: role.Arn,
    trustPolicy: parsePolicy(role.AssumeRolePolicyDocument),
    policy: parsePolicy(inline?.PolicyDocument),
    permissionsBoundary: role.PermissionsBoundary?.PermissionsBoundaryArn,
    tags: fromTagList(Tags),
  };
}

export function roleDrift(desired: DesiredRole, actual: LiveRole): FieldChange[] {
  return [
    ...diffFields({ permissionsBoundary: desired.permissionsBoundary }, actual),
    ...policyDrift('trustPolicy', desired.trustPolicy, actual.trustPolicy),
    ...policyDrift(`policy:${desired.policyName}`, desired.policy, actual.policy),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

// One resource for every role of the stack, given the role it is to make:
// the inline policy it reads is the desired role's, and the boundary the
// create is allowed with (iam:PermissionsBoundary) names the desired one.
function role(desired: DesiredRole): Resource<DesiredRole, LiveRole, { name: string; arn: string }> {
  return {
    kind,
    permissions: {
      find: 'iam:GetRole, iam:GetRolePolicy and iam:ListRoleTags',
      create: `iam:CreateRole with iam:PermissionsBoundary ${desired.permissionsBoundary}, and iam:TagRole`,
    },
    find: (ctx, name) => findRole(ctx, name, desired.policyName),
    drift: roleDrift,
    // CreateRole takes no inline policy: the loop finds the role again and puts it
    async create(ctx, desired) {
      await ctx.clients.iam.send(
        new CreateRoleCommand({
          RoleName: desired.name,
          Description: desired.description,
          AssumeRolePolicyDocument: JSON.stringify(desired.trustPolicy),
          PermissionsBoundary: desired.permissionsBoundary,
          Tags: toTagList(desired.tags),
        }),
      );
      return undefined;
    },
    alreadyExists: (error) => error instanceof EntityAlreadyExistsException,
    // in roleDrift's order, the boundary first: the deployer may change a
    // role's trust and policies only once it carries the boundary
    // (iam:PermissionsBoundary is the role's boundary)
    writers: {
      permissionsBoundary: {
        action: 'iam:PutRolePermissionsBoundary',
        write: (ctx, { name: RoleName, permissionsBoundary: PermissionsBoundary }) =>
          ctx.clients.iam.send(new PutRolePermissionsBoundaryCommand({ RoleName, PermissionsBoundary })),
      },
      trustPolicy: {
        action: 'iam:UpdateAssumeRolePolicy',
        write: (ctx, { name: RoleName, trustPolicy }) =>
          ctx.clients.iam.send(
            new UpdateAssumeRolePolicyCommand({ RoleName, PolicyDocument: JSON.stringify(trustPolicy) }),
          ),
      },
      [`policy:${desired.policyName}`]: {
        action: 'iam:PutRolePolicy',
        write: (ctx, { name: RoleName, policyName: PolicyName, policy }) =>
          ctx.clients.iam.send(
            new PutRolePolicyCommand({ RoleName, PolicyName, PolicyDocument: JSON.stringify(policy) }),
          ),
      },
      tags: {
        action: 'iam:TagRole',
        write: (ctx, desired, actual) =>
          ctx.clients.iam.send(
            new TagRoleCommand({
              RoleName: desired.name,
              Tags: toTagList(missingTags(desired.tags, actual.tags)),
            }),
          ),
      },
    },
    outputs: (ctx, desired, actual) => ({
      name: desired.name,
      arn: actual?.arn ?? roleArn(ctx, desired.name),
    }),
  };
}

export const ensureRole = (ctx: Ctx, desired: DesiredRole) => reconcile(ctx, role(desired), desired);

export const ensureFunctionRole = (ctx: Ctx, inputs: FunctionRoleInputs) =>
  ensureRole(ctx, desiredFunctionRole(ctx, inputs));

export const ensureSchedulerRole = (ctx: Ctx, inputs: SchedulerRoleInputs) =>
  ensureRole(ctx, desiredSchedulerRole(ctx, inputs));

export const ensureGeneratorRole = (ctx: Ctx, inputs: GeneratorRoleInputs) =>
  ensureRole(ctx, desiredGeneratorRole(ctx, inputs));

// IAM refuses to delete a role that still has policies (DeleteConflictException):
// inline policies are deleted and managed ones detached first. The deployer
// may touch only roles that carry the boundary, so a role without it (made
// before the boundary existed, or stripped of it by an administrator) gets it
// back first. Deleting needs only the role itself: its policy and tags are not read.
export const deleteRole = (ctx: Ctx, name: string) =>
  destroy(
    ctx,
    {
      kind,
      permissions: {
        find: 'iam:GetRole',
        delete:
          'iam:PutRolePermissionsBoundary, iam:ListRolePolicies, iam:DeleteRolePolicy, iam:ListAttachedRolePolicies, iam:DetachRolePolicy and iam:DeleteRole',
      },
      find: getRole,
      async remove(ctx, RoleName, found) {
        const { iam } = ctx.clients;
        const PermissionsBoundary = boundaryArn(ctx);
        if (found.PermissionsBoundary?.PermissionsBoundaryArn !== PermissionsBoundary) {
          await iam.send(new PutRolePermissionsBoundaryCommand({ RoleName, PermissionsBoundary }));
        }
        const inline = await iam.send(new ListRolePoliciesCommand({ RoleName }));
        for (const PolicyName of inline.PolicyNames ?? []) {
          await iam.send(new DeleteRolePolicyCommand({ RoleName, PolicyName }));
        }
        const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName }));
        for (const policy of attached.AttachedPolicies ?? []) {
          await iam.send(new DetachRolePolicyCommand({ RoleName, PolicyArn: policy.PolicyArn }));
        }
        await iam.send(new DeleteRoleCommand({ RoleName }));
      },
      isNotFound: (error) => error instanceof NoSuchEntityException,
    },
    name,
  );
