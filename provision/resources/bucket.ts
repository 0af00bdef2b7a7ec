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
import { AwsStepError, stepError } from '../../lib/errors.ts';
import {
  Action,
  type Ctx,
  diffFields,
  type FieldChange,
  isPlan,
  missingTags,
  record,
} from '../../lib/reconcile.ts';
import { fromTagList, toTagList } from '../tags.ts';

const kind = 'bucket';

// A noncurrent version is an overwritten or deleted upload: keep it long
// enough to recover from a mistake, then stop paying for it.
export const noncurrentVersionDays = 30;
// Parts of an abandoned multipart upload are billed until aborted.
export const abortIncompleteUploadDays = 7;
const lifecycleRuleId = 'expire-noncurrent-versions';

export interface PublicAccessBlock {
  BlockPublicAcls: boolean;
  IgnorePublicAcls: boolean;
  BlockPublicPolicy: boolean;
  RestrictPublicBuckets: boolean;
}

// The lifecycle rule reduced to the fields this project manages, so that the
// shapes S3 returns (Filter {} vs Filter {Prefix: ''}) compare equal.
export interface ManagedLifecycleRule {
  id: string;
  status: string;
  prefix: string;
  noncurrentDays: number | undefined;
  abortIncompleteDays: number | undefined;
}

export interface BucketSpec {
  name: string;
  arn: string;
  region: string;
  publicAccessBlock: PublicAccessBlock;
  ownership: string;
  encryption: string;
  policy: unknown;
  versioning: string;
  lifecycle: ManagedLifecycleRule[];
  tags: Record<string, string>;
}

export interface BucketState {
  publicAccessBlock: PublicAccessBlock | undefined;
  ownership: string | undefined;
  encryption: string | undefined;
  policy: unknown;
  versioning: string | undefined;
  lifecycle: ManagedLifecycleRule[];
  tags: Record<string, string>;
}

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
    publicAccessBlock: {
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    },
    // ACLs disabled: the bucket owner owns every object, access is policy-only.
    ownership: 'BucketOwnerEnforced',
    // SSE-S3: encryption at rest without a KMS key to pay for or to grant.
    encryption: 'AES256',
    policy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'DenyInsecureTransport',
          Effect: 'Deny',
          Principal: '*',
          Action: 's3:*',
          Resource: [bucket, `${bucket}/*`],
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        },
      ],
    },
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

function isS3Error(error: unknown, code: string): boolean {
  return error instanceof S3ServiceException && error.name === code;
}

async function readOptional<T>(code: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (isS3Error(error, code)) return undefined;
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

async function bucketExists(ctx: Ctx): Promise<boolean> {
  const Bucket = ctx.names.bucket;
  try {
    await ctx.clients.s3.send(new HeadBucketCommand({ Bucket }));
    return true;
  } catch (error) {
    if (error instanceof NotFound || error instanceof NoSuchBucket) return false;
    throw stepError(
      `read bucket ${Bucket}`,
      error,
      'a 403 means the name is taken by another account: change APP or STAGE',
    );
  }
}

export async function findBucket(ctx: Ctx): Promise<BucketState | undefined> {
  const { s3 } = ctx.clients;
  const Bucket = ctx.names.bucket;
  if (!(await bucketExists(ctx))) return undefined;
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
        : {
            BlockPublicAcls: block.BlockPublicAcls ?? false,
            IgnorePublicAcls: block.IgnorePublicAcls ?? false,
            BlockPublicPolicy: block.BlockPublicPolicy ?? false,
            RestrictPublicBuckets: block.RestrictPublicBuckets ?? false,
          },
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
  const changes = diffFields(
    {
      publicAccessBlock: desired.publicAccessBlock,
      ownership: desired.ownership,
      encryption: desired.encryption,
      policy: desired.policy,
      versioning: desired.versioning,
      lifecycle: desired.lifecycle,
    },
    actual as unknown as Record<string, unknown>,
  );
  const tags = missingTags(desired.tags, actual.tags);
  if (Object.keys(tags).length > 0) {
    changes.push({ field: 'tags', from: actual.tags, to: { ...actual.tags, ...desired.tags } });
  }
  return changes;
}

type Field = keyof Omit<BucketSpec, 'name' | 'arn' | 'region'>;

// One writer per managed field. Order matters on creation: block public access
// before any policy can be attached.
const applyOrder: Field[] = [
  'publicAccessBlock',
  'ownership',
  'encryption',
  'versioning',
  'policy',
  'lifecycle',
  'tags',
];

async function applyField(ctx: Ctx, desired: BucketSpec, field: Field, actualTags: Record<string, string>) {
  const { s3 } = ctx.clients;
  const Bucket = desired.name;
  switch (field) {
    case 'publicAccessBlock':
      return s3.send(
        new PutPublicAccessBlockCommand({
          Bucket,
          PublicAccessBlockConfiguration: desired.publicAccessBlock,
        }),
      );
    case 'ownership':
      return s3.send(
        new PutBucketOwnershipControlsCommand({
          Bucket,
          OwnershipControls: { Rules: [{ ObjectOwnership: desired.ownership as 'BucketOwnerEnforced' }] },
        }),
      );
    case 'encryption':
      return s3.send(
        new PutBucketEncryptionCommand({
          Bucket,
          ServerSideEncryptionConfiguration: {
            Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: desired.encryption as 'AES256' } }],
          },
        }),
      );
    case 'versioning':
      return s3.send(
        new PutBucketVersioningCommand({
          Bucket,
          VersioningConfiguration: { Status: desired.versioning as 'Enabled' },
        }),
      );
    case 'policy':
      return s3.send(new PutBucketPolicyCommand({ Bucket, Policy: JSON.stringify(desired.policy) }));
    case 'lifecycle':
      return s3.send(
        new PutBucketLifecycleConfigurationCommand({
          Bucket,
          LifecycleConfiguration: { Rules: desired.lifecycle.map(toLifecycleRule) },
        }),
      );
    case 'tags': {
      const merged = { ...actualTags, ...desired.tags };
      return s3.send(
        new PutBucketTaggingCommand({
          Bucket,
          Tagging: { TagSet: toTagList(merged) },
        }),
      );
    }
  }
}

async function createBucket(ctx: Ctx, desired: BucketSpec): Promise<void> {
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
    // someone else (a concurrent run) created it: carry on and reconcile it
    if (error instanceof BucketAlreadyOwnedByYou) return;
    if (error instanceof BucketAlreadyExists) {
      throw stepError(
        `create bucket ${desired.name}`,
        error,
        'bucket names are global and another account owns this one: change APP or STAGE',
      );
    }
    throw stepError(`create bucket ${desired.name}`, error, 'check s3:CreateBucket permission');
  }
}

export async function ensureBucket(ctx: Ctx): Promise<{ name: string; arn: string }> {
  const desired = desiredBucket(ctx);
  const outputs = { name: desired.name, arn: desired.arn };
  let actual = await findBucket(ctx);
  if (actual === undefined) {
    const fields = applyOrder.map((field) => ({ field, from: undefined, to: desired[field] }));
    record(ctx, { kind, name: desired.name, action: Action.create, fields });
    if (isPlan(ctx)) return outputs;
    await createBucket(ctx, desired);
    actual = await findBucket(ctx);
    if (actual === undefined) throw stepError(`find bucket ${desired.name} after creating it`, 'not found');
  } else {
    const drift = bucketDrift(desired, actual);
    record(ctx, {
      kind,
      name: desired.name,
      action: drift.length > 0 ? Action.update : Action.unchanged,
      ...(drift.length > 0 ? { fields: drift } : {}),
    });
    if (isPlan(ctx) || drift.length === 0) return outputs;
  }
  const drifted = new Set(bucketDrift(desired, actual).map((change) => change.field));
  for (const field of applyOrder) {
    if (!drifted.has(field)) continue;
    try {
      await applyField(ctx, desired, field, actual.tags);
    } catch (error) {
      throw stepError(`set ${field} on bucket ${desired.name}`, error, 'check the s3:PutBucket* permissions');
    }
  }
  return outputs;
}

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
        throw stepError(
          `empty bucket ${Bucket}`,
          `${result.Errors.length} objects not deleted, first ${first?.Key}: ${first?.Code} ${first?.Message}`,
          'check s3:DeleteObjectVersion permission',
        );
      }
      removed += objects.slice(i, i + deleteBatchSize).length;
    }
    if (!page.IsTruncated) return removed;
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  }
}

export async function deleteBucket(ctx: Ctx): Promise<void> {
  const Bucket = ctx.names.bucket;
  if (!(await bucketExists(ctx))) {
    record(ctx, { kind, name: Bucket, action: Action.absent });
    return;
  }
  record(ctx, { kind, name: Bucket, action: Action.delete });
  if (isPlan(ctx)) return;
  try {
    const removed = await emptyBucket(ctx, Bucket);
    if (removed > 0) ctx.log.info(`removed ${removed} object versions from ${Bucket}`);
    await ctx.clients.s3.send(new DeleteBucketCommand({ Bucket }));
  } catch (error) {
    if (error instanceof NoSuchBucket) return;
    if (error instanceof AwsStepError) throw error;
    throw stepError(`delete bucket ${Bucket}`, error, 'check s3:DeleteBucket permission');
  }
}

// IAM policies grant object access on this ARN
export function bucketObjectsArn(ctx: Pick<Ctx, 'identity' | 'names'>): string {
  return `${bucketArn(ctx)}/*`;
}
