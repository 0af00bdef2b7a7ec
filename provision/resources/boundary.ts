import {
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  DeletePolicyVersionCommand,
  EntityAlreadyExistsException,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  ListPolicyVersionsCommand,
  NoSuchEntityException,
} from '@aws-sdk/client-iam';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import { PolicyFile, readPolicyFile } from '../../lib/policy-files.ts';
import {
  type Ctx,
  type FieldChange,
  isPlan,
  orAbsent,
  type Resource,
  reconcile,
  step,
} from '../../lib/reconcile.ts';
import { type PolicyDocument, parsePolicy, policyDrift } from '../policy.ts';
import { toTagList } from '../tags.ts';

// The permissions boundary: one customer managed policy per account and app
// that every role up.ts creates carries, so that whatever the deployer writes
// into a role's own policy, the role can never do more than this (IAM User
// Guide, "Permissions boundaries for IAM entities": the effective permissions
// are the intersection). The deployer may not create or edit it: if up.ts
// could, a deployer could widen it to *:* and every role with it. So it is the
// first step of setting up an account, done by an administrator with
// provision/bootstrap.ts (ensureBoundary); up.ts only reads it (findBoundary).

const kind = 'iam permissions boundary';

// IAM keeps at most five versions of a managed policy; a sixth needs one of
// the old ones deleted first (IAM User Guide, "Versioning IAM policies").
export const maxPolicyVersions = 5;

type BoundaryContext = Pick<Ctx, 'identity' | 'names' | 'config'>;

// PERMISSIONS_BOUNDARY names it (a policy name in this account, or an ARN);
// by default <APP>-boundary.
export function boundaryArn(ctx: BoundaryContext): string {
  const configured = ctx.config.provision.permissionsBoundary;
  if (configured?.startsWith('arn:')) return configured;
  return arn(ctx.identity, 'iam', `policy/${configured ?? ctx.names.boundaryPolicy}`, false);
}

// docs/boundary-policy.json for this account and app: every region, every stage
export function desiredBoundary(ctx: BoundaryContext): PolicyDocument {
  return readPolicyFile(PolicyFile.boundary, {
    partition: ctx.identity.partition,
    region: '*',
    accountId: ctx.identity.accountId,
    app: ctx.config.stack.app,
    stage: '*',
  }) as PolicyDocument;
}

type LiveBoundary = NonNullable<Awaited<ReturnType<typeof readBoundary>>>;

// By the configured ARN, which may name another account's policy
// (PERMISSIONS_BOUNDARY): never by a name built here.
async function readBoundary(ctx: Ctx) {
  const { iam } = ctx.clients;
  const PolicyArn = boundaryArn(ctx);
  const policy = await orAbsent(() => iam.send(new GetPolicyCommand({ PolicyArn })), NoSuchEntityException);
  const defaultVersionId = policy?.Policy?.DefaultVersionId;
  if (defaultVersionId === undefined) return undefined;
  const version = await iam.send(new GetPolicyVersionCommand({ PolicyArn, VersionId: defaultVersionId }));
  return { arn: PolicyArn, document: parsePolicy(version.PolicyVersion?.Document), defaultVersionId };
}

const readPermissions = 'iam:GetPolicy and iam:GetPolicyVersion';

export const findBoundary = (ctx: Ctx) =>
  step(`read ${kind} ${boundaryArn(ctx)}`, readPermissions, () => readBoundary(ctx));

export function boundaryDrift(desired: PolicyDocument, actual: LiveBoundary): FieldChange[] {
  return policyDrift('document', desired, actual.document);
}

const bootstrapHint = (ctx: Ctx) =>
  `an administrator creates it once per account and app: AWS_REGION=${ctx.identity.region} APP=${ctx.config.stack.app} npx tsx provision/bootstrap.ts (docs/deploy.md, "Setting up an account")`;

// up.ts: the boundary must exist before a role can carry it, and it is not
// up.ts's to create or change. A plan warns and goes on; a run stops before
// its first change. A boundary that differs from docs/boundary-policy.json is
// reported: the roles still work while it allows what they need.
export async function requireBoundary(ctx: Ctx): Promise<{ arn: string }> {
  const actual = await findBoundary(ctx);
  const PolicyArn = boundaryArn(ctx);
  if (actual === undefined) {
    if (isPlan(ctx)) {
      ctx.log.warn(`the permissions boundary ${PolicyArn} does not exist: ${bootstrapHint(ctx)}`);
      return { arn: PolicyArn };
    }
    throw stepError(`find the permissions boundary ${PolicyArn}`, 'it does not exist', bootstrapHint(ctx));
  }
  if (boundaryDrift(desiredBoundary(ctx), actual).length > 0) {
    ctx.log.warn(
      `the permissions boundary ${PolicyArn} differs from docs/boundary-policy.json: ${bootstrapHint(ctx)} to bring it up to date`,
    );
  }
  return { arn: actual.arn };
}

interface BoundarySpec {
  // the policy's name, for the change records
  name: string;
  document: PolicyDocument;
}

// provision/bootstrap.ts, as an administrator: create the boundary, or make
// docs/boundary-policy.json its default version.
const boundary: Resource<BoundarySpec, LiveBoundary, { arn: string }> = {
  kind,
  permissions: {
    find: readPermissions,
    create: 'iam:CreatePolicy and iam:TagPolicy',
    update: 'iam:ListPolicyVersions, iam:DeletePolicyVersion and iam:CreatePolicyVersion',
  },
  find: (ctx) => readBoundary(ctx),
  drift: (desired, actual) => boundaryDrift(desired.document, actual),
  async create(ctx, desired) {
    const { app } = ctx.config.stack;
    const { Policy } = await ctx.clients.iam.send(
      new CreatePolicyCommand({
        PolicyName: desired.name,
        Description: `${app}: the permissions boundary of every role up.ts creates`,
        PolicyDocument: JSON.stringify(desired.document),
        Tags: toTagList({ app, 'managed-by': 'ada-linecount' }),
      }),
    );
    return {
      arn: Policy?.Arn ?? boundaryArn(ctx),
      document: desired.document,
      defaultVersionId: Policy?.DefaultVersionId ?? 'v1',
    };
  },
  alreadyExists: (error) => error instanceof EntityAlreadyExistsException,
  async update(ctx, desired, actual) {
    const { iam } = ctx.clients;
    const PolicyArn = actual.arn;
    const { Versions = [] } = await iam.send(new ListPolicyVersionsCommand({ PolicyArn }));
    if (Versions.length >= maxPolicyVersions) {
      const oldest = Versions.filter((v) => !v.IsDefaultVersion).sort(
        (a, b) => (a.CreateDate?.getTime() ?? 0) - (b.CreateDate?.getTime() ?? 0),
      )[0];
      if (oldest?.VersionId !== undefined) {
        await iam.send(new DeletePolicyVersionCommand({ PolicyArn, VersionId: oldest.VersionId }));
      }
    }
    await iam.send(
      new CreatePolicyVersionCommand({
        PolicyArn,
        PolicyDocument: JSON.stringify(desired.document),
        SetAsDefault: true,
      }),
    );
  },
  outputs: (ctx, _desired, actual) => ({ arn: actual?.arn ?? boundaryArn(ctx) }),
};

export function ensureBoundary(ctx: Ctx): Promise<{ arn: string }> {
  const PolicyArn = boundaryArn(ctx);
  const name = PolicyArn.slice(PolicyArn.lastIndexOf('/') + 1);
  return reconcile(ctx, boundary, { name, document: desiredBoundary(ctx) });
}
