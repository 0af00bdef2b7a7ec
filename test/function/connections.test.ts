import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, mock, test } from 'node:test';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  createConnections,
  createPool,
  createRedis,
  parseDatabaseSecret,
  parseRedisSecret,
} from '../../lambda-image/connections.ts';
import type { DatabaseSettings } from '../../lib/config.ts';
import { freePort } from '../../lib/net.ts';
import { callsTo, resetCalls } from '../fakes/calls.ts';
import { installSecretsManagerFake, type SecretsManagerFake } from '../fakes/secrets-manager.ts';
import { dropRole } from '../support/migration.ts';
import {
  type Certificate,
  generateCertificate as generateGateCertificate,
  iamTokenCheck,
  PostgresGate,
  passwordCheck,
} from '../support/pg-gate.ts';
import { sleep } from '../support/records.ts';
import { testDatabaseUrl, testRedisUrl, uniqueName } from '../support/services.ts';

// Connections as the deployed function builds them, on this machine: a private
// redis-server that requires a password, and a TLS "password gate" in front of
// the shared PostgreSQL (which trusts loopback and so never asks for one). The
// secrets come from the stateful Secrets Manager fake; rotating a secret means
// changing it there and on the server, as a managed rotation does.

let secretsFake: SecretsManagerFake;
let secrets: SecretsManagerClient;
let dir: string;
const cleanups: (() => unknown)[] = [];

before(() => {
  secretsFake = installSecretsManagerFake();
  secrets = new SecretsManagerClient({ region: 'us-east-1' });
  dir = mkdtempSync(join(tmpdir(), 'ada-connections-'));
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  secrets.destroy();
  secretsFake.restore();
  rmSync(dir, { recursive: true, force: true });
});

function putSecret(name: string, value: string): string {
  const arn = `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-abcdef`;
  secretsFake.state.secrets.set(arn, { ARN: arn, Name: name, SecretString: value, Tags: [] });
  return arn;
}

function rotateSecret(arn: string, value: string): void {
  const secret = secretsFake.state.secrets.get(arn);
  assert.ok(secret);
  secret.SecretString = value;
}

const secretReads = () => callsTo('secretsmanager', 'GetSecretValue').length;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function startPrivateRedis(password: string): Promise<{ port: number; process: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      password,
    ],
    { stdio: 'ignore' },
  );
  cleanups.push(() => child.kill());
  const probe = new Redis({
    port,
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined); // refused until the server listens
  await waitFor('the private redis-server', async () => {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  });
  probe.disconnect();
  return { port, process: child };
}

// ---- a PostgreSQL front that demands a password over TLS (test/support/pg-gate.ts) ----

function generateCertificate(name: string): Certificate {
  return generateGateCertificate(dir, name);
}

class PasswordGate {
  password = '';
  private gate: PostgresGate;

  constructor(tls: { key: string; cert: string }) {
    this.gate = new PostgresGate({ tls, check: passwordCheck(() => this.password) });
  }

  get port(): number {
    return this.gate.port;
  }

  async start(password: string): Promise<this> {
    this.password = password;
    await this.gate.start();
    return this;
  }

  dropConnections(): void {
    this.gate.dropConnections();
  }

  stop(): Promise<void> {
    return this.gate.stop();
  }
}

function deployedDatabase(port: number, secretArn: string, caFile: string): DatabaseSettings {
  return {
    host: '127.0.0.1',
    port,
    name: new URL(testDatabaseUrl).pathname.slice(1) || 'test',
    secretArn,
    caFile,
    schema: 'public',
    poolMax: 1,
  };
}

// ---- tests ----

test('local URLs give a working Redis client and PostgreSQL pool', async () => {
  const connections = await createConnections({
    redis: { url: testRedisUrl, port: 6379, tls: false },
    database: { url: testDatabaseUrl, port: 5432, name: 'test', schema: 'public', poolMax: 1 },
  });
  try {
    assert.equal(await connections.redis.ping(), 'PONG');
    const { rows } = await connections.pool.query('SELECT 1 AS one');
    assert.equal(rows[0].one, 1);
  } finally {
    await connections.close();
  }
});

test('an unreachable Redis fails a command fast instead of hanging the invocation', async () => {
  const port = await freePort(); // nothing listens here
  const redis = await createRedis({ url: `redis://127.0.0.1:${port}`, port, tls: false });
  try {
    const started = Date.now();
    await assert.rejects(redis.get('anything'));
    assert.ok(Date.now() - started < 5000, `rejected after ${Date.now() - started} ms`);
  } finally {
    redis.disconnect();
  }
});

test('the Redis auth token is read from Secrets Manager, and read again once after rotation', async () => {
  const server = await startPrivateRedis('token-1');
  const arn = putSecret('cache-auth', 'token-1');
  resetCalls();
  const redis = await createRedis(
    { host: '127.0.0.1', port: server.port, tls: false, authSecretArn: arn },
    { secrets },
  );
  cleanups.push(() => redis.disconnect());
  assert.equal(await redis.ping(), 'PONG');
  assert.equal(secretReads(), 1);

  // rotate: new token on the server and in the secret; drop the live connection
  const admin = new Redis({ port: server.port, password: 'token-1' });
  cleanups.push(() => admin.disconnect());
  await admin.call('CONFIG', 'SET', 'requirepass', 'token-2');
  rotateSecret(arn, 'token-2');
  await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  await waitFor(
    'the client to reconnect with the rotated token',
    async () => (await redis.ping()) === 'PONG',
  );
  assert.equal(secretReads(), 2);

  // a secret that stays wrong is re-read once per failure streak, not on every reconnect attempt
  await admin.call('CONFIG', 'SET', 'requirepass', 'token-3');
  await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  await sleep(2500);
  await assert.rejects(redis.ping());
  assert.equal(secretReads(), 3);
});

test('PostgreSQL credentials come from the RDS secret over verified TLS, and are read again once after rotation (28P01)', async () => {
  const serverCert = generateCertificate('server');
  const gate = await new PasswordGate(serverCert).start('pw-1');
  cleanups.push(() => gate.stop());
  const arn = putSecret(
    'db-master',
    JSON.stringify({ username: 'postgres', password: 'pw-1', engine: 'postgres' }),
  );
  resetCalls();
  const pool = await createPool(deployedDatabase(gate.port, arn, serverCert.certFile), { secrets });
  cleanups.push(() => pool.end());
  assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
  const { rows } = await pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  assert.equal(rows.length, 1);
  assert.equal(secretReads(), 1);

  // rotation: the server now wants pw-2, the secret says so, the pooled connection is gone
  gate.password = 'pw-2';
  rotateSecret(arn, JSON.stringify({ username: 'postgres', password: 'pw-2', engine: 'postgres' }));
  gate.dropConnections();
  await sleep(50);
  assert.equal((await pool.query('SELECT 2 AS two')).rows[0].two, 2);
  assert.equal(secretReads(), 2);

  // a password that is still wrong after the re-read fails with 28P01, after exactly one re-read
  gate.password = 'pw-3';
  gate.dropConnections();
  await sleep(50);
  await assert.rejects(pool.query('SELECT 3'), { code: '28P01' });
  assert.equal(secretReads(), 3);
});

test('a database certificate not signed by the configured CA is refused', async () => {
  const serverCert = generateCertificate('untrusted-server');
  const otherCa = generateCertificate('other-ca');
  const gate = await new PasswordGate(serverCert).start('pw');
  cleanups.push(() => gate.stop());
  const arn = putSecret('db-untrusted', JSON.stringify({ username: 'postgres', password: 'pw' }));
  const pool = await createPool(deployedDatabase(gate.port, arn, otherCa.certFile), { secrets });
  cleanups.push(() => pool.end());
  await assert.rejects(pool.query('SELECT 1'), /self[- ]signed|unable to verify|certificate/i);
});

// ---- IAM database authentication (the counting and flush functions) ----

const iamKeys = { accessKeyId: 'AKIAFUNCTIONROLE0001', secretAccessKey: 'the-function-role-secret' };

async function iamSignIn(label: string, signingKeys = iamKeys) {
  const admin = new pg.Pool({ connectionString: testDatabaseUrl, max: 1 });
  const role = uniqueName(label);
  await admin.query(`CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN`);
  cleanups.push(async () => {
    await dropRole(admin, role);
    await admin.end();
  });
  const serverCert = generateCertificate(`${label}-server`);
  const signIns: { user: string; token: string; accessKeyId: string }[] = [];
  const gate: PostgresGate = new PostgresGate({
    tls: serverCert,
    check: iamTokenCheck({
      host: '127.0.0.1',
      port: () => gate.port,
      region: 'us-east-1',
      credentials: [iamKeys],
      onSignIn: (signIn) => signIns.push(signIn),
    }),
  });
  await gate.start();
  cleanups.push(() => gate.stop());
  const settings: DatabaseSettings = {
    host: '127.0.0.1',
    port: gate.port,
    name: new URL(testDatabaseUrl).pathname.slice(1) || 'test',
    iamUser: role,
    caFile: serverCert.certFile,
    schema: 'public',
    poolMax: 2,
  };
  const pool = await createPool(settings, { aws: { region: 'us-east-1', credentials: signingKeys } });
  pool.on('error', () => undefined);
  cleanups.push(() => pool.end());
  return { role, gate, pool, signIns };
}

test('with DB_IAM_USER the pool signs in as that role with an IAM token over verified TLS, and reads no secret', async () => {
  resetCalls();
  const { role, pool, signIns } = await iamSignIn('iam_signin');
  // the gate refuses a client that does not ask for TLS, as RDS does
  const { rows } = await pool.query<{ user: string }>('SELECT current_user AS user');
  assert.deepEqual(rows, [{ user: role }]);
  assert.equal(callsTo('secretsmanager').length, 0, 'no secret is read');
  assert.equal(signIns.length, 1);
  // the token: an rds-db connect request for this endpoint and user, valid 15 minutes (900 s)
  const token = new URL(`https://${signIns[0]?.token}`);
  assert.equal(token.searchParams.get('Action'), 'connect');
  assert.equal(token.searchParams.get('DBUser'), role);
  assert.equal(token.searchParams.get('X-Amz-Expires'), '900');
  assert.match(
    token.searchParams.get('X-Amz-Credential') ?? '',
    /^AKIAFUNCTIONROLE0001\/\d{8}\/us-east-1\/rds-db\/aws4_request$/,
  );
});

test('each new connection signs in with a token made then: an open connection outlives its token, a new one gets a fresh token', async () => {
  const { pool, gate, signIns } = await iamSignIn('iam_fresh');
  const start = Date.now();
  mock.timers.enable({ apis: ['Date'], now: start });
  try {
    const held = await pool.connect();
    assert.equal((await held.query('SELECT 1 AS one')).rows[0].one, 1);
    // twenty minutes on: the first token has expired, the connection it opened has not
    mock.timers.setTime(start + 20 * 60_000);
    assert.equal((await held.query('SELECT 2 AS two')).rows[0].two, 2);
    held.release();
    gate.dropConnections();
    await sleep(50);
    assert.equal((await pool.query('SELECT 3 AS three')).rows[0].three, 3);
  } finally {
    mock.timers.reset();
  }
  assert.equal(signIns.length, 2);
  const signedAt = signIns.map((s) => new URL(`https://${s.token}`).searchParams.get('X-Amz-Date'));
  assert.notEqual(signedAt[0], signedAt[1], 'the second connection was signed 20 minutes later');
});

test('a token signed with keys IAM does not know is refused (28P01)', async () => {
  const { pool, signIns } = await iamSignIn('iam_wrong', { ...iamKeys, secretAccessKey: 'not-the-secret' });
  await assert.rejects(pool.query('SELECT 1'), { code: '28P01' });
  assert.equal(signIns.length, 0);
});

test('secrets are parsed in the shapes RDS and the cache provisioning store', () => {
  assert.deepEqual(parseDatabaseSecret('{"username":"u","password":"p","host":"h"}', 'arn'), {
    username: 'u',
    password: 'p',
  });
  assert.throws(() => parseDatabaseSecret('{"username":"u"}', 'arn:x'), /arn:x lacks/);
  assert.deepEqual(parseRedisSecret('plain-token\n', 'arn'), { password: 'plain-token' });
  assert.throws(
    () => parseRedisSecret('{"authToken": ', 'arn'),
    /secret arn starts with "\{" but is not JSON/,
  );
  assert.deepEqual(parseRedisSecret('{"authToken":"t","username":"app"}', 'arn'), {
    username: 'app',
    password: 't',
  });
});
