import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { recordEmulatorCalls } from '../../test/fakes/calls.ts';
import { testContext } from '../../test/provision/context.ts';
import { emulatorScope, useEmulator } from '../../test/support/emulator-context.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import {
  type BucketState,
  bucketDrift,
  deleteBucket,
  desiredBucket,
  ensureBucket,
  normalizeLifecycle,
} from './bucket.ts';

const config = loadDeployConfig({ AWS_REGION: 'eu-west-1', STAGE: 'test' });
const identity = { accountId: '123456789012', region: 'eu-west-1', partition: 'aws' };
const ctx = { config, identity, names: stackNames(config.stack, identity) };
const desired = desiredBucket(ctx);

function inSync(): BucketState {
  return {
    publicAccessBlock: { ...desired.publicAccessBlock },
    ownership: desired.ownership,
    encryption: desired.encryption,
    policy: JSON.parse(JSON.stringify(desired.policy)),
    versioning: desired.versioning,
    lifecycle: normalizeLifecycle([
      {
        ID: 'expire-noncurrent-versions',
        Status: 'Enabled',
        Filter: { Prefix: '' },
        NoncurrentVersionExpiration: { NoncurrentDays: 30 },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      },
    ]),
    tags: { ...desired.tags },
  };
}

test('the desired bucket blocks public access, enforces ownership, encrypts, versions and denies plain HTTP', () => {
  assert.equal(desired.name, 'ada-linecount-test-123456789012-eu-west-1');
  assert.deepEqual(Object.values(desired.publicAccessBlock), [true, true, true, true]);
  assert.equal(desired.ownership, 'BucketOwnerEnforced');
  assert.equal(desired.encryption, 'AES256');
  assert.equal(desired.versioning, 'Enabled');
  const statement = (desired.policy as { Statement: Record<string, unknown>[] }).Statement[0];
  assert.equal(statement?.Effect, 'Deny');
  assert.deepEqual(statement?.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
  assert.deepEqual(statement?.Resource, [desired.arn, `${desired.arn}/*`]);
  assert.equal(desired.lifecycle[0]?.noncurrentDays, 30);
  assert.equal(desired.lifecycle[0]?.abortIncompleteDays, 7);
});

const cases: { name: string; change: (s: BucketState) => void; fields: string[] }[] = [
  { name: 'in sync', change: () => {}, fields: [] },
  {
    name: 'one public access setting off',
    change: (s) => {
      s.publicAccessBlock = { ...desired.publicAccessBlock, RestrictPublicBuckets: false };
    },
    fields: ['publicAccessBlock'],
  },
  {
    name: 'no public access block',
    change: (s) => (s.publicAccessBlock = undefined),
    fields: ['publicAccessBlock'],
  },
  { name: 'ACLs enabled', change: (s) => (s.ownership = 'ObjectWriter'), fields: ['ownership'] },
  { name: 'KMS instead of SSE-S3', change: (s) => (s.encryption = 'aws:kms'), fields: ['encryption'] },
  { name: 'policy removed', change: (s) => (s.policy = undefined), fields: ['policy'] },
  {
    name: 'policy with keys in another order is in sync',
    change: (s) => {
      const p = desired.policy as { Version: string; Statement: unknown[] };
      s.policy = { Statement: p.Statement, Version: p.Version };
    },
    fields: [],
  },
  { name: 'versioning suspended', change: (s) => (s.versioning = 'Suspended'), fields: ['versioning'] },
  { name: 'versioning never set', change: (s) => (s.versioning = undefined), fields: ['versioning'] },
  { name: 'lifecycle removed', change: (s) => (s.lifecycle = []), fields: ['lifecycle'] },
  {
    name: 'lifecycle days changed',
    change: (s) => {
      s.lifecycle = s.lifecycle.map((r) => ({ ...r, noncurrentDays: 90 }));
    },
    fields: ['lifecycle'],
  },
  { name: 'a tag missing', change: (s) => delete s.tags.stage, fields: ['tags'] },
  { name: 'a foreign tag is kept and not drift', change: (s) => (s.tags['cost-center'] = 'x'), fields: [] },
  {
    name: 'several fields at once',
    change: (s) => {
      s.versioning = undefined;
      s.encryption = undefined;
    },
    fields: ['encryption', 'versioning'],
  },
];

for (const c of cases) {
  test(`bucket drift: ${c.name}`, () => {
    const actual = inSync();
    c.change(actual);
    assert.deepEqual(
      bucketDrift(desired, actual)
        .map((f) => f.field)
        .sort(),
      c.fields,
    );
  });
}

test('bucket tag drift proposes the merged tag set, keeping foreign tags', () => {
  const actual = inSync();
  actual.tags = { 'cost-center': 'x' };
  const [change] = bucketDrift(desired, actual);
  assert.deepEqual(change?.to, { 'cost-center': 'x', ...desired.tags });
});

test('lifecycle rules from S3 compare equal whatever the filter shape', () => {
  const withFilter = normalizeLifecycle([{ ID: 'a', Status: 'Enabled', Filter: { Prefix: '' } }]);
  const legacyPrefix = normalizeLifecycle([{ ID: 'a', Status: 'Enabled', Prefix: '' }]);
  const emptyFilter = normalizeLifecycle([{ ID: 'a', Status: 'Enabled', Filter: {} }]);
  assert.deepEqual(withFilter, legacyPrefix);
  assert.deepEqual(withFilter, emptyFilter);
});

// The bucket on the emulator, as a deployer that may lack an action.

const onEmulator = useEmulator();

function emulatorContext(stage: string) {
  const ctx = onEmulator(stage, ['s3']);
  recordEmulatorCalls(ctx.clients);
  return ctx;
}

const rejectsWithout = (action: string, run: () => Promise<unknown>, message: RegExp) =>
  rejectsWithoutAction(emulatorScope, action, run, message);

test('a bucket is created, found in sync, emptied of every version and deleted; a refused call names its IAM action', async () => {
  const ctx = emulatorContext('bcycle');
  const Bucket = ctx.names.bucket;
  await ensureBucket(ctx);
  await ensureBucket(ctx);
  await rejectsWithout(
    's3:GetBucketPolicy',
    () => ensureBucket(ctx),
    /^cannot read bucket \S+: AccessDenied: .*\(check s3:GetBucketPublicAccessBlock, .*s3:GetBucketPolicy, .* and s3:GetBucketTagging permissions\)$/,
  );
  await ctx.clients.s3.send(new PutObjectCommand({ Bucket, Key: 'uploads/a.txt', Body: 'a\n' }));
  await ctx.clients.s3.send(new PutObjectCommand({ Bucket, Key: 'uploads/a.txt', Body: 'a\nb\n' }));
  await rejectsWithout(
    's3:DeleteBucket',
    () => deleteBucket(ctx),
    /^cannot delete bucket \S+: AccessDenied: .*\(check s3:ListBucketVersions, s3:DeleteObjectVersion and s3:DeleteBucket permissions\)$/,
  );
  await deleteBucket(ctx);
  await deleteBucket(ctx);
  assert.deepEqual(
    ctx.changes.map((c) => c.action),
    ['create', 'unchanged', 'delete', 'delete', 'absent'],
  );
});
