import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Scope } from '../support/iam/actions.ts';
import { assertNoFindings, deniedRequests, describeDenial } from '../support/iam/evaluate.ts';
import { generator } from '../support/iam/principals.ts';
import { type GeneratorRecording, recordGeneratorCalls } from './scenarios/generator.ts';

// The scheduled generator's calls (scenarios/generator.ts), decided against
// the policy of the role .github/workflows/generate.yml assumes.

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };

describe('the scheduled generator', () => {
  let recording: GeneratorRecording;

  before(async () => {
    recording = await recordGeneratorCalls(scope, `gen${process.pid % 1000}`);
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

  test('the role generate.yml assumes allows every request of the generator', async () => {
    const denied = await deniedRequests(generator(scope), recording.requests);
    assertNoFindings(denied.map(describeDenial), 'requests the generator’s role denies');
  });
});
