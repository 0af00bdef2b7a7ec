import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseImageReference, registryBaseUrl } from './reference.ts';
import { parseBearerChallenge } from './registry.ts';

const digest = `sha256:${'c'.repeat(64)}`;

test('image references split into host, repository, tag and digest', () => {
  const cases = [
    ['public.ecr.aws/lambda/nodejs:24', { host: 'public.ecr.aws', repository: 'lambda/nodejs', tag: '24' }],
    [
      `123456789012.dkr.ecr.eu-west-1.amazonaws.com/ada-linecount-dev@${digest}`,
      { host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', repository: 'ada-linecount-dev', digest },
    ],
    [`127.0.0.1:5000/a/b:v1@${digest}`, { host: '127.0.0.1:5000', repository: 'a/b', tag: 'v1', digest }],
    ['127.0.0.1:5000/repo', { host: '127.0.0.1:5000', repository: 'repo' }],
  ] as const;
  for (const [reference, expected] of cases)
    assert.deepEqual(parseImageReference(reference), expected, reference);
});

test('malformed references are refused with the expected shape', () => {
  for (const bad of ['nodejs:24', 'host/Repo:1', 'host/repo@sha256:abc', 'host/repo:bad tag']) {
    assert.throws(() => parseImageReference(bad), /invalid image reference .*expected host\/repository/, bad);
  }
});

test('only loopback registries are spoken to over plain HTTP', () => {
  assert.equal(registryBaseUrl('public.ecr.aws'), 'https://public.ecr.aws');
  assert.equal(
    registryBaseUrl('1.dkr.ecr.us-east-1.amazonaws.com'),
    'https://1.dkr.ecr.us-east-1.amazonaws.com',
  );
  assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.equal(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
  assert.equal(registryBaseUrl('10.0.0.1:5000'), 'https://10.0.0.1:5000');
});

test('Bearer challenges are parsed; Basic challenges are not Bearer', () => {
  assert.deepEqual(
    parseBearerChallenge('Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"'),
    { realm: 'https://public.ecr.aws/token/', service: 'public.ecr.aws', scope: 'aws' },
  );
  assert.deepEqual(parseBearerChallenge('bearer realm=https://r/token, service=s'), {
    realm: 'https://r/token',
    service: 's',
  });
  assert.equal(parseBearerChallenge('Basic realm="ecr"'), undefined);
  assert.equal(parseBearerChallenge(null), undefined);
});
