import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConfigError,
  loadDeployConfig,
  loadMigrationConfig,
  loadRuntimeConfig,
  loadTestConfig,
  outageToleranceSeconds,
} from './config.ts';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail('expected a ConfigError');
}

test('every configuration problem is reported at once', () => {
  const problems = problemsOf(() =>
    loadDeployConfig({ STAGE: 'Prod!', FUNCTION_TIMEOUT_SECONDS: 'ten', FUNCTION_MEMORY_MB: '64' }),
  );
  assert.equal(problems.length, 4);
  assert.match(problems.join('\n'), /AWS_REGION is not set/);
  assert.match(problems.join('\n'), /STAGE=Prod!/);
  assert.match(problems.join('\n'), /FUNCTION_TIMEOUT_SECONDS=ten/);
  assert.match(problems.join('\n'), /FUNCTION_MEMORY_MB=64/);
});

test('a visibility timeout below 6 × function timeout + batching window is refused', () => {
  const problems = problemsOf(() =>
    loadDeployConfig({
      AWS_REGION: 'eu-west-1',
      FUNCTION_TIMEOUT_SECONDS: '30',
      BATCHING_WINDOW_SECONDS: '5',
      QUEUE_VISIBILITY_TIMEOUT_SECONDS: '184',
    }),
  );
  assert.deepEqual(problems, [
    'QUEUE_VISIBILITY_TIMEOUT_SECONDS=184 must be at least 6 × FUNCTION_TIMEOUT_SECONDS + BATCHING_WINDOW_SECONDS = 185',
  ]);
});

test('more than 10 messages per batch without a batching window is refused', () => {
  const problems = problemsOf(() =>
    loadDeployConfig({ AWS_REGION: 'eu-west-1', BATCH_SIZE: '11', BATCHING_WINDOW_SECONDS: '0' }),
  );
  assert.deepEqual(problems, [
    'BATCH_SIZE=11 needs BATCHING_WINDOW_SECONDS of at least 1 (Lambda takes more than 10 messages per batch only with a batching window): set BATCHING_WINDOW_SECONDS=1 or more, or BATCH_SIZE=10 or less',
  ]);
  assert.equal(
    loadDeployConfig({ AWS_REGION: 'eu-west-1', BATCH_SIZE: '10', BATCHING_WINDOW_SECONDS: '0' }).fn
      .batchSize,
    10,
  );
  assert.equal(
    loadDeployConfig({ AWS_REGION: 'eu-west-1', BATCH_SIZE: '11', BATCHING_WINDOW_SECONDS: '1' }).fn
      .batchSize,
    11,
  );
});

test('defaults satisfy the queue rules', () => {
  const config = loadDeployConfig({ AWS_REGION: 'eu-west-1' });
  assert.equal(config.stack.app, 'ada-linecount');
  assert.equal(config.stack.stage, 'dev');
  assert.ok(
    config.fn.visibilityTimeoutSeconds >= 6 * config.fn.timeoutSeconds + config.fn.batchingWindowSeconds,
  );
  assert.ok(config.fn.dlqRetentionSeconds > config.fn.queueRetentionSeconds);
  assert.ok(config.fn.maxReceiveCount >= 5);
});

test('the default queue settings dead-letter no message during a 15-minute database outage', () => {
  const { fn } = loadDeployConfig({ AWS_REGION: 'eu-west-1' });
  // the 5th receive comes 4 visibility timeouts after the first; only the 6th would dead-letter
  assert.ok(outageToleranceSeconds(fn) >= 15 * 60, `${outageToleranceSeconds(fn)} s`);
  assert.doesNotThrow(() =>
    loadDeployConfig({ AWS_REGION: 'eu-west-1', DB_OUTAGE_TOLERANCE_SECONDS: '900' }),
  );
});

test('a stated database outage tolerance refuses queue settings that would dead-letter sooner', () => {
  const problems = problemsOf(() =>
    loadDeployConfig({
      AWS_REGION: 'eu-west-1',
      FUNCTION_TIMEOUT_SECONDS: '30',
      BATCHING_WINDOW_SECONDS: '5',
      DB_OUTAGE_TOLERANCE_SECONDS: '900',
    }),
  );
  assert.deepEqual(problems, [
    'DB_OUTAGE_TOLERANCE_SECONDS=900 needs (MAX_RECEIVE_COUNT - 1) × QUEUE_VISIBILITY_TIMEOUT_SECONDS ≥ 900, but 4 × 185 = 740: raise either one',
  ]);
  assert.doesNotThrow(() =>
    loadDeployConfig({
      AWS_REGION: 'eu-west-1',
      FUNCTION_TIMEOUT_SECONDS: '30',
      BATCHING_WINDOW_SECONDS: '5',
      QUEUE_VISIBILITY_TIMEOUT_SECONDS: '225',
      DB_OUTAGE_TOLERANCE_SECONDS: '900',
    }),
  );
});

test('per-service endpoints override the shared one', () => {
  const config = loadDeployConfig({
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
    AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
  });
  assert.equal(config.aws.endpoints.s3, 'http://127.0.0.1:9000');
  assert.equal(config.aws.endpoints.sqs, 'http://127.0.0.1:4566');
  assert.equal(config.aws.s3ForcePathStyle, true);
});

test('the function needs either URLs or hosts with secret ARNs', () => {
  const problems = problemsOf(() => loadRuntimeConfig({ DB_SCHEMA: 'Bad-Name' }));
  assert.equal(problems.length, 3);
  const config = loadRuntimeConfig({
    REDIS_URL: 'redis://127.0.0.1:6379',
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
  });
  assert.equal(config.buffer.keyPrefix, 'ada-linecount:dev:');
});

test('deployed, the function signs in to PostgreSQL as DB_IAM_USER, signed for AWS_REGION, and never with a secret too', () => {
  const deployed = {
    AWS_REGION: 'us-east-1',
    REDIS_HOST: 'cache.example',
    REDIS_AUTH_SECRET_ARN: 'arn:cache',
    DB_HOST: 'db.example',
    DB_IAM_USER: 'linecount_app',
  };
  const config = loadRuntimeConfig(deployed);
  assert.equal(config.database.iamUser, 'linecount_app');
  assert.equal(config.database.secretArn, undefined);
  const { AWS_REGION: _region, ...withoutRegion } = deployed;
  assert.match(problemsOf(() => loadRuntimeConfig(withoutRegion)).join('\n'), /DB_IAM_USER needs AWS_REGION/);
  assert.match(
    problemsOf(() => loadRuntimeConfig({ ...deployed, DB_SECRET_ARN: 'arn:master' })).join('\n'),
    /DB_IAM_USER and DB_SECRET_ARN are both set/,
  );
  assert.match(
    problemsOf(() => loadRuntimeConfig({ ...deployed, DB_IAM_USER: 'App-User' })).join('\n'),
    /DB_IAM_USER=App-User must be a lowercase SQL identifier/,
  );
});

test('the migration needs the master secret (or a URL) and the role to create, and every problem is reported at once', () => {
  const problems = problemsOf(() => loadMigrationConfig({ DB_HOST: 'db.example', DB_IAM_USER: 'x' }));
  assert.deepEqual(problems.length, 3, problems.join('\n'));
  assert.match(problems.join('\n'), /set DB_APP_USER/);
  assert.match(problems.join('\n'), /DB_HOST with DB_SECRET_ARN, the master user secret/);
  assert.match(problems.join('\n'), /DB_IAM_USER is not for the migration/);
  const config = loadMigrationConfig({
    DB_HOST: 'db.example',
    DB_SECRET_ARN: 'arn:master',
    DB_APP_USER: 'linecount_app',
  });
  assert.equal(config.applicationUser, 'linecount_app');
  assert.equal(config.database.secretArn, 'arn:master');
});

test('the moto servers are optional, and the IAM-enforcing one must be a second server', () => {
  assert.deepEqual(
    { ...loadTestConfig({}), databaseUrl: undefined, redisUrl: undefined },
    { databaseUrl: undefined, redisUrl: undefined, motoUrl: undefined, motoIamUrl: undefined, ci: false },
  );
  const both = loadTestConfig({ MOTO_URL: 'http://127.0.0.1:5000', MOTO_IAM_URL: 'http://127.0.0.1:5001' });
  assert.equal(both.motoUrl, 'http://127.0.0.1:5000');
  assert.equal(both.motoIamUrl, 'http://127.0.0.1:5001');
  assert.throws(
    () => loadTestConfig({ MOTO_URL: 'http://127.0.0.1:5000', MOTO_IAM_URL: 'http://127.0.0.1:5000' }),
    /MOTO_IAM_URL must name a second moto server/,
  );
  assert.throws(() => loadTestConfig({ MOTO_URL: '127.0.0.1:5000' }), /MOTO_URL is not a URL/);
});

test('the permissions boundary is a policy name or ARN, and the GitHub repository is owner/name', () => {
  const good = loadDeployConfig({
    AWS_REGION: 'us-east-1',
    PERMISSIONS_BOUNDARY: 'arn:aws:iam::123456789012:policy/security/org-boundary',
    GITHUB_REPOSITORY: 'ada-contabilidade/ada-linecount',
  });
  assert.equal(good.provision.permissionsBoundary, 'arn:aws:iam::123456789012:policy/security/org-boundary');
  assert.equal(good.provision.githubRepository, 'ada-contabilidade/ada-linecount');
  const unset = loadDeployConfig({
    AWS_REGION: 'us-east-1',
    PERMISSIONS_BOUNDARY: '',
    GITHUB_REPOSITORY: '',
  });
  assert.equal(unset.provision.permissionsBoundary, undefined);
  assert.equal(unset.provision.githubRepository, undefined);
  const problems = problemsOf(() =>
    loadDeployConfig({
      AWS_REGION: 'us-east-1',
      PERMISSIONS_BOUNDARY: 'arn:aws:iam::123:policy/x',
      GITHUB_REPOSITORY: 'https://github.com/ada/linecount',
    }),
  );
  assert.equal(problems.length, 2);
  assert.match(
    problems[0] ?? '',
    /^PERMISSIONS_BOUNDARY=arn:aws:iam::123:policy\/x must be a managed policy's name/,
  );
  assert.match(
    problems[1] ?? '',
    /^GITHUB_REPOSITORY=https:\/\/github.com\/ada\/linecount must be owner\/name/,
  );
});
