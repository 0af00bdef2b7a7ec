import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { generateAndUpload, minPartBytes } from '../../../generator/generate.ts';
import { main } from '../../../generator/main.ts';
import { NameStyle } from '../../../generator/names.ts';
import { loadStackConfig } from '../../../lib/config.ts';
import { stackNames } from '../../../lib/names.ts';
import { emulatorCredentials, startEmulator } from '../../../local/emulator.ts';
import { recordClientCalls, recordEveryClient } from '../../fakes/calls.ts';
import type { Scope } from '../../support/iam/actions.ts';
import { denyActions } from '../../support/iam/deny.ts';
import type { Request } from '../../support/iam/evaluate.ts';
import { recordAuthorizations } from '../../support/iam/recorder.ts';

// The scheduled generator's calls on the local emulator, as
// .github/workflows/generate.yml runs it (generator/main.ts with --bucket and
// --prefix uploads/): the bucket check (HeadBucket), small files (PutObject)
// and one above a part's size (CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload). Then an upload interrupted halfway, whose
// multipart upload lib-storage aborts (AbortMultipartUpload), through the
// generator's own API: the CLI stops the same way on Ctrl-C.
// The CLI runs answered as its role answers it: HeadBucket is s3:ListBucket,
// which the upload-only role lacks, so S3 refuses it (403) and the generator
// goes on; that request is kept apart, as refused.

export interface GeneratorRecording {
  requests: Request[];
  // requests S3 refused and the generator went on without
  refused: Request[];
  unmapped: string[];
  commands: string[];
}

// main() reads its configuration from the environment, as in the workflow
// (AWS_REGION from the job, the keys from configure-aws-credentials); the
// calls are recorded in this process, so the variables are set here for its run.
async function withEnvironment<T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  try {
    return await run();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

// HeadBucket's action (HeadBucket API reference, Permissions), which the role does not grant
const notGranted = 's3:ListBucket';

export async function recordGeneratorCalls(scope: Scope, stage: string): Promise<GeneratorRecording> {
  const names = stackNames(loadStackConfig({ STAGE: stage }), scope);
  const emulator = await startEmulator({ port: 0 });
  const options = {
    region: scope.region,
    endpoint: emulator.endpoint,
    forcePathStyle: true,
    credentials: emulatorCredentials,
  };
  const setup = new S3Client(options);
  const commands: string[] = [];
  const log = recordAuthorizations(scope, {}, (call) => {
    commands.push(call.command);
    return true;
  });
  let restore = () => {};
  let allow = () => {};
  try {
    await setup.send(new CreateBucketCommand({ Bucket: names.bucket }));
    restore = recordEveryClient(S3Client, 's3');
    allow = denyActions(scope, [notGranted]);
    const run = (args: string[]) =>
      withEnvironment(
        {
          AWS_REGION: scope.region,
          AWS_ENDPOINT_URL_S3: emulator.endpoint,
          AWS_ACCESS_KEY_ID: emulatorCredentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: emulatorCredentials.secretAccessKey,
          STAGE: stage,
        },
        () => main(['--bucket', names.bucket, '--prefix', names.uploadsPrefix, '--json', ...args]),
      );
    assert.equal(
      await run(['--count', '3', '--min-lines', '1', '--max-lines', '20']),
      0,
      'small files uploaded',
    );
    // above one part (5 MiB): lines are at least 40 bytes
    const lines = String(Math.ceil((minPartBytes * 1.5) / 40));
    assert.equal(
      await run(['--count', '1', '--min-lines', lines, '--max-lines', lines]),
      0,
      'a multipart upload',
    );
    allow();
    restore();

    // an upload stopped once its first part is on its way
    const s3 = new S3Client(options);
    recordClientCalls(s3, 's3');
    const stop = new AbortController();
    await assert.rejects(
      generateAndUpload({
        s3,
        bucket: names.bucket,
        prefix: names.uploadsPrefix,
        count: 1,
        minLines: 400_000,
        maxLines: 400_000,
        concurrency: 1,
        seed: 1,
        names: NameStyle.simple,
        signal: stop.signal,
        onProgress: (progress) => {
          if (progress.bytes > minPartBytes * 1.5) stop.abort(new Error('interrupted'));
        },
      }),
    );
    // lib-storage aborts the multipart upload once its part uploads settle
    for (let waited = 0; !commands.includes('AbortMultipartUpload') && waited < 10_000; waited += 50) {
      await sleep(50);
    }
    s3.destroy();
    const refused = log.caller.filter((r) => r.authorization.action === notGranted);
    return {
      requests: log.caller.filter((r) => r.authorization.action !== notGranted),
      refused,
      unmapped: log.unmapped,
      commands,
    };
  } finally {
    allow();
    restore();
    log.stop();
    setup.destroy();
    await emulator.stop();
  }
}
