import {
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetBucketEncryptionCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  type LifecycleRule,
  ListObjectVersionsCommand,
  NoSuchBucket,
  NotFound,
  type ObjectIdentifier,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { stepError } from '../../lib/errors.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  type Resource,
  reconcile,
  type Writers,
} from '../../lib/reconcile.ts';
import { policyDocument } from '../policy.ts';
import { fromTagList, toTagList } from '../tags.ts';

const kind = 'bucket';

// A noncurrent version is an overwritten or deleted upload: keep it long
// enough to recover from a mistake, then stop paying for it.
const noncurrentVersionDays = 30;
// Parts of an abandoned multipart upload are billed until aborted.
const abortIncompleteUploadDays = 7;
const lifecycleRuleId = 'expire-noncurrent-versions';

const publicAccessFlags = [
  'BlockPublicAcls',
  'IgnorePublicAcls',
  'BlockPublicPolicy',
  'RestrictPublicBuckets',
] as const;
type PublicAccessBlock = Record<(typeof publicAccessFlags)[number], boolean>;

// The lifecycle rule reduced to the fields this project manages, so that the
// shapes S3 returns (Filter {} vs Filter {Prefix: ''}) compare equal.
interface ManagedLifecycleRule {
  id: string;
  status: string;
  prefix: string;
  noncurrentDays: number | undefined;
  abortIncompleteDays: number | undefined;
}

interface Managed {
  publicAccessBlock: PublicAccessBlock;
  ownership: string;
  encryption: string;
  policy: unknown;
  versioning: string;
  lifecycle: ManagedLifecycleRule[];
  tags: Record<string, string>;
}

interface BucketSpec extends Managed {
  name: string;
  arn: string;
  region: string;
}

// a sub-resource S3 reports as not configured is undefined
export type BucketState = Partial<Omit<Managed, 'lifecycle' | 'tags'>> & Pick<Managed, 'lifecycle' | 'tags'>;

export function bucketArn(ctx: Pick<Ctx, 'identity' | 'names'>): string {
  return `arn:${ctx.identity.partition}:s3:::${ctx.names.bucket}`;
}

export function desiredBucket(ctx: Pick<Ctx, 'identity' | 'names'>): BucketSpec {
  const name = ctx.names.bucket;
  const bucket = bucketArn(ctx);
  return {
    name,
    arn: bucket,
    region: ctx.identity.region,
    // All four: no ACL or policy can ever make an upload public.
    publicAccessBlock: Object.fromEntries(publicAccessFlags.map((flag) => [flag, true])) as PublicAccessBlock,
    // ACLs disabled: the bucket owner owns every object, access is policy-only.
    ownership: 'BucketOwnerEnforced',
    // SSE-S3: encryption at rest without a KMS key to pay for or to grant.
    encryption: 'AES256',
    policy: policyDocument({
      Sid: 'DenyInsecureTransport',
      Effect: 'Deny',
      Principal: '*',
      Action: 's3:*',
      Resource: [bucket, `${bucket}/*`],
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    }),
    versioning: 'Enabled',
    lifecycle: [
      {
        id: lifecycleRuleId,
        status: 'Enabled',
        prefix: '',
        noncurrentDays: noncurrentVersionDays,
        abortIncompleteDays: abortIncompleteUploadDays,
      },
    ],
    tags: ctx.names.tags,
  };
}

// S3 reports "not configured" for each sub-resource with its own error code,
// and the SDK models none of them as a class.
const NotConfigured = {
  publicAccessBlock: 'NoSuchPublicAccessBlockConfiguration',
  ownership: 'OwnershipControlsNotFoundError',
  encryption: 'ServerSideEncryptionConfigurationNotFoundError',
  policy: 'NoSuchBucketPolicy',
  lifecycle: 'NoSuchLifecycleConfiguration',
  tags: 'NoSuchTagSet',
} as const;

async function readOptional<T>(code: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === code) return undefined;
    throw error;
  }
}

export function normalizeLifecycle(rules: readonly LifecycleRule[] | undefined): ManagedLifecycleRule[] {
  return (rules ?? [])
    .map((rule) => ({
      id: rule.ID ?? '',
      status: rule.Status ?? '',
      prefix: rule.Filter?.Prefix ?? rule.Prefix ?? '',
      noncurrentDays: rule.NoncurrentVersionExpiration?.NoncurrentDays,
      abortIncompleteDays: rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

function toLifecycleRule(rule: ManagedLifecycleRule): LifecycleRule {
  return {
    ID: rule.id,
    Status: rule.status as LifecycleRule['Status'],
    Filter: { Prefix: rule.prefix },
    ...(rule.noncurrentDays === undefined
      ? {}
      : { NoncurrentVersionExpiration: { NoncurrentDays: rule.noncurrentDays } }),
    ...(rule.abortIncompleteDays === undefined
      ? {}
      : { AbortIncompleteMultipartUpload: { DaysAfterInitiation: rule.abortIncompleteDays } }),
  };
}

// HeadBucket answers 403 both without s3:ListBucket and for a name another
// account owns: the hint names both.
async function bucketExists(ctx: Ctx, Bucket: string): Promise<boolean> {
  try {
    await ctx.clients.s3.send(new HeadBucketCommand({ Bucket }));
    return true;
  } catch (error) {
    if (error instanceof NotFound || error instanceof NoSuchBucket) return false;
    throw stepError(
      `read bucket ${Bucket}`,
      error,
      'check s3:ListBucket permission; with it, a 403 means another account owns the name: change APP or STAGE',
    );
  }
}

async function findBucket(ctx: Ctx, Bucket: string): Promise<BucketState | undefined> {
  const { s3 } = ctx.clients;
  if (!(await bucketExists(ctx, Bucket))) return undefined;
  const [publicAccessBlock, ownership, encryption, policy, versioning, lifecycle, tags] = await Promise.all([
    readOptional(NotConfigured.publicAccessBlock, () => s3.send(new GetPublicAccessBlockCommand({ Bucket }))),
    readOptional(NotConfigured.ownership, () => s3.send(new GetBucketOwnershipControlsCommand({ Bucket }))),
    readOptional(NotConfigured.encryption, () => s3.send(new GetBucketEncryptionCommand({ Bucket }))),
    readOptional(NotConfigured.policy, () => s3.send(new GetBucketPolicyCommand({ Bucket }))),
    s3.send(new GetBucketVersioningCommand({ Bucket })),
    readOptional(NotConfigured.lifecycle, () =>
      s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket })),
    ),
    readOptional(NotConfigured.tags, () => s3.send(new GetBucketTaggingCommand({ Bucket }))),
  ]);
  const block = publicAccessBlock?.PublicAccessBlockConfiguration;
  return {
    publicAccessBlock:
      block === undefined
        ? undefined
        : (Object.fromEntries(
            publicAccessFlags.map((flag) => [flag, block[flag] ?? false]),
          ) as PublicAccessBlock),
    ownership: ownership?.OwnershipControls?.Rules?.[0]?.ObjectOwnership,
    encryption:
      encryption?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault
        ?.SSEAlgorithm,
    policy: policy?.Policy === undefined ? undefined : JSON.parse(policy.Policy),
    versioning: versioning.Status,
    lifecycle: normalizeLifecycle(lifecycle?.Rules),
    tags: fromTagList(tags?.TagSet),
  };
}

export function bucketDrift(desired: BucketSpec, actual: BucketState): FieldChange[] {
  const { name: _name, arn: _arn, region: _region, tags, ...managed } = desired;
  const changes = diffFields(managed, actual);
  if (Object.keys(missingTags(tags, actual.tags)).length > 0) {
    changes.push({ field: 'tags', from: actual.tags, to: { ...actual.tags, ...tags } });
  }
  return changes;
}

// One writer per managed field, each with the IAM action it needs. Order
// matters on creation: block public access before any policy can be attached.
const writers: { [F in keyof Managed]: Writers<BucketSpec, BucketState>[string] } = {
  publicAccessBlock: {
    action: 's3:PutBucketPublicAccessBlock',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutPublicAccessBlockCommand({
          Bucket: desired.name,
          PublicAccessBlockConfiguration: desired.publicAccessBlock,
        }),
      ),
  },
  ownership: {
    action: 's3:PutBucketOwnershipControls',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutBucketOwnershipControlsCommand({
          Bucket: desired.name,
          OwnershipControls: { Rules: [{ ObjectOwnership: desired.ownership as 'BucketOwnerEnforced' }] },
        }),
      ),
  },
  encryption: {
    action: 's3:PutEncryptionConfiguration',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutBucketEncryptionCommand({
          Bucket: desired.name,
          ServerSideEncryptionConfiguration: {
            Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: desired.encryption as 'AES256' } }],
          },
        }),
      ),
  },
  versioning: {
    action: 's3:PutBucketVersioning',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutBucketVersioningCommand({
          Bucket: desired.name,
          VersioningConfiguration: { Status: desired.versioning as 'Enabled' },
        }),
      ),
  },
  policy: {
    action: 's3:PutBucketPolicy',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutBucketPolicyCommand({ Bucket: desired.name, Policy: JSON.stringify(desired.policy) }),
      ),
  },
  lifecycle: {
    action: 's3:PutLifecycleConfiguration',
    write: (ctx, desired) =>
      ctx.clients.s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket: desired.name,
          LifecycleConfiguration: { Rules: desired.lifecycle.map(toLifecycleRule) },
        }),
      ),
  },
  // PutBucketTagging replaces the whole set: foreign tags are written back with ours
  tags: {
    action: 's3:PutBucketTagging',
    write: (ctx, desired, actual) =>
      ctx.clients.s3.send(
        new PutBucketTaggingCommand({
          Bucket: desired.name,
          Tagging: { TagSet: toTagList({ ...actual.tags, ...desired.tags }) },
        }),
      ),
  },
};

const bucket: Resource<BucketSpec, BucketState, { name: string; arn: string }> = {
  kind,
  permissions: {
    // HeadBucket (s3:ListBucket) answers for itself, in bucketExists
    find:
      's3:GetBucketPublicAccessBlock, s3:GetBucketOwnershipControls, s3:GetEncryptionConfiguration, ' +
      's3:GetBucketPolicy, s3:GetBucketVersioning, s3:GetLifecycleConfiguration and s3:GetBucketTagging',
    create: 's3:CreateBucket',
  },
  find: findBucket,
  drift: bucketDrift,
  createFields: (desired) =>
    (Object.keys(writers) as (keyof Managed)[]).map((field) => ({
      field,
      from: undefined,
      to: desired[field],
    })),
  // CreateBucket sets nothing but the ownership: the loop finds the new bucket
  // and writes every other field as drift.
  async create(ctx, desired) {
    try {
      await ctx.clients.s3.send(
        new CreateBucketCommand({
          Bucket: desired.name,
          ObjectOwnership: 'BucketOwnerEnforced',
          // us-east-1 is the one region that refuses an explicit LocationConstraint
          ...(desired.region === 'us-east-1'
            ? {}
            : {
                CreateBucketConfiguration: { LocationConstraint: desired.region as BucketLocationConstraint },
              }),
        }),
      );
    } catch (error) {
      if (error instanceof BucketAlreadyExists) {
        throw stepError(
          `create bucket ${desired.name}`,
          error,
          'bucket names are global and another account owns this one: change APP or STAGE',
        );
      }
      throw error;
    }
    return undefined;
  },
  // a concurrent run created it: it is reconciled like any live bucket
  alreadyExists: (error) => error instanceof BucketAlreadyOwnedByYou,
  writers,
  outputs: (_ctx, desired) => ({ name: desired.name, arn: desired.arn }),
};

export const ensureBucket = (ctx: Ctx) => reconcile(ctx, bucket, desiredBucket(ctx));

// DeleteObjects takes at most 1,000 keys per request (S3 API limit).
const deleteBatchSize = 1_000;

async function emptyBucket(ctx: Ctx, Bucket: string): Promise<number> {
  const { s3 } = ctx.clients;
  let removed = 0;
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  // A versioned bucket only deletes when every version and delete marker is gone.
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({ Bucket, KeyMarker, VersionIdMarker, MaxKeys: deleteBatchSize }),
    );
    const objects: ObjectIdentifier[] = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map(
      (v) => ({
        Key: v.Key ?? '',
        ...(v.VersionId === undefined ? {} : { VersionId: v.VersionId }),
      }),
    );
    for (let i = 0; i < objects.length; i += deleteBatchSize) {
      const result = await s3.send(
        new DeleteObjectsCommand({
          Bucket,
          Delete: { Objects: objects.slice(i, i + deleteBatchSize), Quiet: true },
        }),
      );
      if (result.Errors?.length) {
        const first = result.Errors[0];
        throw new Error(
          `${result.Errors.length} object versions not deleted, first ${first?.Key}: ${first?.Code} ${first?.Message}`,
        );
      }
      removed += objects.slice(i, i + deleteBatchSize).length;
    }
    if (!page.IsTruncated) return removed;
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  }
}

// Teardown reads only whether the bucket exists (HeadBucket), then empties
// and deletes it.
const bucketRemoval: Pick<
  Resource<{ name: string }, true, unknown>,
  'kind' | 'permissions' | 'find' | 'remove' | 'isNotFound'
> = {
  kind,
  permissions: { delete: 's3:ListBucketVersions, s3:DeleteObjectVersion and s3:DeleteBucket' },
  find: async (ctx, name) => ((await bucketExists(ctx, name)) ? true : undefined),
  async remove(ctx, Bucket) {
    const removed = await emptyBucket(ctx, Bucket);
    if (removed > 0) ctx.log.info(`removed ${removed} object versions from ${Bucket}`);
    await ctx.clients.s3.send(new DeleteBucketCommand({ Bucket }));
  },
  isNotFound: (error) => error instanceof NoSuchBucket,
};

export const deleteBucket = (ctx: Ctx) => destroy(ctx, bucketRemoval, ctx.names.bucket);
