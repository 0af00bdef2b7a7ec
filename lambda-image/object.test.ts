import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { after, before, describe, mock, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { buildApp } from 'fauxqs';
import { AwsStepError } from '../lib/errors.ts';
import { LineCounter } from './count.ts';
import type { UploadEvent } from './events.ts';
import { countObject } from './object.ts';

// fauxqs' own start function listens on every interface; building the app and
// listening on loopback keeps the emulator reachable from this machine only.
const app = buildApp({ logger: false });
let endpoint = '';
const bucket = 'ada-object-test';
const clients: S3Client[] = [];

function createS3(overrides: Partial<S3ClientConfig> = {}): S3Client {
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
    ...overrides,
  });
  clients.push(client);
  return client;
}

async function putObject(s3: S3Client, key: string, body: Uint8Array | string): Promise<UploadEvent> {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  const put = await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size }),
  );
  assert.ok(put.ETag, 'PutObject returned no ETag');
  return {
    bucket,
    key,
    size,
    eTag: put.ETag.replaceAll('"', ''),
    sequencer: '0055AED6DCD90281E5',
    eventTime: new Date().toISOString(),
    eventName: 'ObjectCreated:Put',
  };
}

function referenceCount(bytes: Uint8Array): number {
  let lines = 0;
  for (const byte of bytes) if (byte === 10) lines++;
  return lines + (bytes.length > 0 && bytes[bytes.length - 1] !== 10 ? 1 : 0);
}

before(async () => {
  await app.listen({ port: 0, host: '127.0.0.1' });
  endpoint = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await createS3().send(new CreateBucketCommand({ Bucket: bucket }));
});

after(async () => {
  for (const client of clients) client.destroy();
  await app.close();
});

describe('countObject', () => {
  test('counts the lines of an uploaded object whose key needs encoding', async () => {
    const s3 = createS3();
    const upload = await putObject(s3, 'relatórios/jan 2025/a+b ç.txt', 'a\r\nb\n\nc');
    assert.deepEqual(await countObject(s3, upload), { status: 'counted', lines: 4, bytes: 7 });
  });

  test('counts an empty object as zero lines', async () => {
    const s3 = createS3();
    const upload = await putObject(s3, 'uploads/empty.txt', '');
    assert.deepEqual(await countObject(s3, upload), { status: 'counted', lines: 0, bytes: 0 });
  });

  test('counts a multi-megabyte object that arrives in many chunks', async () => {
    const s3 = createS3();
    const bytes = randomBytes(5 * 1024 * 1024);
    const upload = await putObject(s3, 'uploads/big.bin', bytes);
    assert.deepEqual(await countObject(s3, upload), {
      status: 'counted',
      lines: referenceCount(bytes),
      bytes: bytes.length,
    });
  });

  test('an object overwritten since the event is skipped as changed (412 on If-Match)', async () => {
    const s3 = createS3();
    const first = await putObject(s3, 'uploads/overwritten.txt', 'one\ntwo\n');
    await putObject(s3, 'uploads/overwritten.txt', 'one\ntwo\nthree\n');
    assert.deepEqual(await countObject(s3, first), { status: 'skipped', reason: 'changed' });
  });

  test('the current version of an overwritten key is still counted', async () => {
    const s3 = createS3();
    await putObject(s3, 'uploads/rewritten.txt', 'one\n');
    const second = await putObject(s3, 'uploads/rewritten.txt', 'one\ntwo\nthree\n');
    assert.deepEqual(await countObject(s3, second), { status: 'counted', lines: 3, bytes: 14 });
  });

  test('an object deleted since the event is skipped as missing', async () => {
    const s3 = createS3();
    const upload = await putObject(s3, 'uploads/deleted.txt', 'x\n');
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: upload.key }));
    assert.deepEqual(await countObject(s3, upload), { status: 'skipped', reason: 'missing' });
  });

  test('an object in a bucket that no longer exists is skipped as missing', async () => {
    const s3 = createS3();
    const upload = await putObject(s3, 'uploads/gone-bucket.txt', 'x\n');
    assert.deepEqual(await countObject(s3, { ...upload, bucket: 'ada-no-such-bucket' }), {
      status: 'skipped',
      reason: 'missing',
    });
  });

  test('any other failure is thrown with the object named, so the message is retried', async () => {
    const s3 = createS3();
    const upload = await putObject(s3, 'uploads/unreachable.txt', 'x\n');
    // nothing listens on the port of a server that was just closed
    const closed = buildApp({ logger: false });
    await closed.listen({ port: 0, host: '127.0.0.1' });
    const port = (closed.server.address() as AddressInfo).port;
    await closed.close();
    const unreachable = createS3({ endpoint: `http://127.0.0.1:${port}` });
    await assert.rejects(countObject(unreachable, upload), (error: unknown) => {
      assert.ok(error instanceof AwsStepError);
      assert.match(error.message, /^cannot get s3:\/\/ada-object-test\/uploads\/unreachable\.txt: /);
      return true;
    });
  });

  test('a body is destroyed when counting throws midway, and its socket is free again', async () => {
    // one socket: if the failed body kept it, the next request would wait forever
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const s3 = createS3({ requestHandler: { httpAgent: agent } });
    const bodies: Readable[] = [];
    s3.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const output = result.output as { Body?: unknown };
        const response = result.response as { body?: unknown };
        for (const body of [output.Body, response.body]) if (body) bodies.push(body as Readable);
        return result;
      },
      { step: 'initialize', name: 'captureBodies' },
    );
    const bytes = randomBytes(8 * 1024 * 1024);
    const upload = await putObject(s3, 'uploads/throws-midway.bin', bytes);

    bodies.length = 0; // only the GetObject's bodies from here on
    const push = LineCounter.prototype.push;
    let calls = 0;
    const failing = mock.method(
      LineCounter.prototype,
      'push',
      function (this: LineCounter, chunk: Uint8Array) {
        calls++;
        if (calls === 2) throw new Error('counter failed on the second chunk');
        push.call(this, chunk);
      },
    );
    try {
      await assert.rejects(countObject(s3, upload), /counter failed on the second chunk/);
    } finally {
      failing.mock.restore();
    }
    assert.equal(calls, 2, 'the failure happened midway, with more of the body still to come');
    assert.ok(bodies.length > 0, 'the GetObject body was captured');
    for (const body of bodies) {
      assert.equal(body.destroyed, true, 'the body was destroyed');
      assert.equal(body.readableEnded, false, 'the body was not read to its end');
    }

    const timer = new AbortController();
    const next = countObject(s3, upload).then((count) => count.status);
    const timedOut = sleep(5_000, 'socket still held', { signal: timer.signal }).catch(() => 'aborted');
    try {
      assert.equal(await Promise.race([next, timedOut]), 'counted');
    } finally {
      timer.abort();
      agent.destroy();
    }
  });
});
