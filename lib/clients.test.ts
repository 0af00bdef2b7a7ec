import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { IAMClient } from '@aws-sdk/client-iam';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { createClient } from './clients.ts';
import type { AwsConfig } from './config.ts';
import { EndpointUnreachableError } from './errors.ts';
import { freePort } from './net.ts';

const run = promisify(execFile);
const clientsModule = fileURLToPath(new URL('./clients.ts', import.meta.url));
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' };

test('a control-plane client package is loaded only when one of its clients is built', async () => {
  // module.registerHooks sees every module the child resolves
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const match = /^@aws-sdk\\/client-[a-z0-9-]+$/.exec(specifier);
        if (match) loaded.add(specifier);
        return next(specifier, context);
      },
    });
    const { createClient, createClients } = await import(${JSON.stringify(clientsModule)});
    const aws = { region: 'us-east-1', endpoints: {}, s3ForcePathStyle: false, credentials: ${JSON.stringify(credentials)} };
    createClients(aws).s3.destroy();
    const before = [...loaded].sort();
    createClient(aws, 'ec2').destroy();
    console.log(JSON.stringify({ before, after: [...loaded].sort() }));
  `;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    timeout: 60_000,
  });
  const { before, after } = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    before: string[];
    after: string[];
  };
  assert.ok(before.includes('@aws-sdk/client-s3'), before.join(', '));
  assert.ok(!before.includes('@aws-sdk/client-ec2'), before.join(', '));
  assert.ok(after.includes('@aws-sdk/client-ec2'), after.join(', '));
});

test('a client loaded on first use is the class the rest of the code imports', () => {
  const iam = createClient(
    { region: 'us-east-1', endpoints: {}, s3ForcePathStyle: false, credentials },
    'iam',
  );
  try {
    // the same module instance: exception classes compare with instanceof
    assert.ok(iam instanceof IAMClient);
  } finally {
    iam.destroy();
  }
});

test('a request that reaches no endpoint fails naming the endpoint, the call and what to check', async () => {
  const port = await freePort();
  const aws: AwsConfig = {
    region: 'us-east-1',
    endpoints: { sqs: `http://127.0.0.1:${port}` },
    s3ForcePathStyle: true,
    credentials,
  };
  const sqs = createClient(aws, 'sqs');
  try {
    const error = await sqs.send(new ListQueuesCommand({})).then(
      () => assert.fail('answered'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof EndpointUnreachableError, String(error));
    assert.equal(error.endpoint, `http://127.0.0.1:${port}`);
    assert.match(
      error.message,
      new RegExp(`^no answer from http://127\\.0\\.0\\.1:${port} for SQS ListQueues \\(.*ECONNREFUSED`),
    );
    assert.match(error.hint, /AWS_ENDPOINT_URL_SQS/);
    assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
  } finally {
    sqs.destroy();
  }
});
