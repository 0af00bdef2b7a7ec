import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Scope } from '../support/iam/actions.ts';
import { assertNoFindings, deniedRequests, describeDenial, isAllowed } from '../support/iam/evaluate.ts';
import { generator, stackScope } from '../support/iam/principals.ts';
import { type GeneratorRecording, recordGeneratorCalls } from './scenarios/generator.ts';

// The scheduled generator's calls (scenarios/generator.ts), decided against
// the role .github/workflows/generate.yml assumes: docs/generator-policy.json,
// capped by the permissions boundary, as up.ts creates it.

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const stage = `gen${process.pid % 1000}`;
const stack = stackScope(scope, stage);
const bucket = `ada-linecount-${stage}-${scope.accountId}-${scope.region}`;

describe('the scheduled generator', () => {
  let recording: GeneratorRecording;

  before(async () => {
    recording = await recordGeneratorCalls(scope, stage);
  });

  test('checks the bucket, uploads in one part and in many, and aborts what it interrupts', () => {
    assertNoFindings(recording.unmapped, 'calls that do not map to IAM');
    for (const command of [
      'HeadBucket',
      'PutObject',
      'CreateMultipartUpload',
      'UploadPart',
      'CompleteMultipartUpload',
      'AbortMultipartUpload',
    ]) {
      assert.ok(recording.commands.includes(command), `the generator sent ${command}`);
    }
  });

  test('generate.yml assumes the generator’s own role, which allows every upload of the generator', async () => {
    const principal = generator(stack);
    assert.equal(principal.arn, `arn:aws:iam::${scope.accountId}:role/ada-linecount-${stage}-generator`);
    assert.ok(principal.boundary, 'the role carries the permissions boundary');
    const denied = await deniedRequests(principal, recording.requests);
    assertNoFindings(denied.map(describeDenial), 'requests the generator’s role denies');
  });

  test('the bucket check is refused (no s3:ListBucket) and the generator uploads anyway', async () => {
    assert.deepEqual(
      [
        ...new Set(
          recording.refused.map((r) => `${r.call} ${r.authorization.action} ${r.authorization.resource}`),
        ),
      ],
      [`s3:HeadBucket s3:ListBucket arn:aws:s3:::${bucket}`],
    );
    assert.equal(await isAllowed(generator(stack), 's3:ListBucket', `arn:aws:s3:::${bucket}`), false);
  });

  test('the generator’s role may not read, delete or list objects, nor write outside uploads/', async () => {
    const principal = generator(stack);
    const object = (key: string) => `arn:aws:s3:::${bucket}/${key}`;
    for (const action of [
      's3:GetObject',
      's3:GetObjectVersion',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
    ]) {
      assert.equal(await isAllowed(principal, action, object('uploads/a.csv')), false, action);
    }
    for (const action of ['s3:ListBucket', 's3:ListBucketVersions']) {
      assert.equal(await isAllowed(principal, action, `arn:aws:s3:::${bucket}`), false, action);
    }
    assert.equal(await isAllowed(principal, 's3:PutObject', object('uploads/a.csv')), true);
    assert.equal(await isAllowed(principal, 's3:PutObject', object('private/a.csv')), false);
    assert.equal(
      await isAllowed(principal, 's3:PutObject', 'arn:aws:s3:::payroll-prod/uploads/a.csv'),
      false,
    );
  });
});
