import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { createSecureContext, TLSSocket } from 'node:tls';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
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
import { testDatabaseUrl, testRedisUrl } from '../support/services.ts';
import { sleep } from './fixtures.ts';

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

// ---- a PostgreSQL front that demands a password over TLS ----

function generateCertificate(name: string): { key: string; cert: string; certFile: string } {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return {
    key: execFileSync('cat', [keyFile], { encoding: 'utf8' }),
    cert: execFileSync('cat', [certFile], { encoding: 'utf8' }),
    certFile,
  };
}

async function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  for (;;) {
    const chunk = stream.read(n) as Buffer | null;
    if (chunk !== null) return chunk;
    if (stream.destroyed || stream.readableEnded) throw new Error('client went away');
    await Promise.race([once(stream, 'readable'), once(stream, 'close')]);
  }
}

// PostgreSQL frontend/backend protocol: SSLRequest code, AuthenticationCleartextPassword, ErrorResponse.
const sslRequestCode = 80877103;

function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

class PasswordGate {
  password = '';
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly tls: { key: string; cert: string }) {}

  async start(password: string): Promise<this> {
    this.password = password;
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      this.serve(socket).catch(() => socket.destroy());
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  private async serve(socket: Socket): Promise<void> {
    let stream: Duplex = socket;
    let header = await readBytes(stream, 8);
    if (header.readInt32BE(4) === sslRequestCode) {
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext(this.tls) });
      secure.on('error', () => socket.destroy());
      stream = secure;
      header = await readBytes(stream, 8);
    }
    const startup = Buffer.concat([header, await readBytes(stream, header.readInt32BE(0) - 8)]);
    stream.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // 'R': cleartext password, please
    const type = await readBytes(stream, 5);
    const body = await readBytes(stream, type.readInt32BE(1) - 4);
    if (body.subarray(0, -1).toString() !== this.password) {
      stream.end(errorResponse('28P01', 'password authentication failed for user "postgres"'));
      return;
    }
    const target = new URL(testDatabaseUrl);
    const upstream = connect(Number(target.port || 5432), target.hostname);
    this.sockets.add(upstream);
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => socket.destroy());
    upstream.write(startup);
    stream.pipe(upstream).pipe(stream);
  }

  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.server;
    if (server) await new Promise((resolve) => server.close(resolve));
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
