import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket } from 'node:tls';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { testDatabaseUrl } from './services.ts';

// A PostgreSQL front that signs clients in the way RDS does, in front of the
// machine's PostgreSQL (which trusts loopback and so never asks for a
// password): TLS is required, the password is asked for in clear text over it
// and checked, and only then is the session piped to the real server. Two
// checks: a password (the master user secret), or an IAM authentication token,
// verified as RDS verifies one (the SigV4 signature of an rds-db connect
// request for this endpoint and user, within its lifetime).

export interface Certificate {
  key: string;
  cert: string;
  certFile: string;
}

// A self-signed certificate for 127.0.0.1, written to dir
export function generateCertificate(dir: string, name: string): Certificate {
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
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile };
}

export interface Startup {
  user: string;
  database: string;
}

// undefined: signed in; otherwise why not
export type SignInCheck = (
  startup: Startup,
  password: string,
) => string | undefined | Promise<string | undefined>;

// PostgreSQL frontend/backend protocol: SSLRequest code, AuthenticationCleartextPassword, ErrorResponse.
const sslRequestCode = 80877103;
const protocolVersion3 = 196608;

function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

async function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  for (;;) {
    const chunk = stream.read(n) as Buffer | null;
    if (chunk !== null) return chunk;
    if (stream.destroyed || stream.readableEnded) throw new Error('client went away');
    await Promise.race([once(stream, 'readable'), once(stream, 'close')]);
  }
}

function parseStartup(message: Buffer): Map<string, string> {
  const fields = message.subarray(8, -1).toString('utf8').split('\0');
  const parameters = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) parameters.set(fields[i] ?? '', fields[i + 1] ?? '');
  return parameters;
}

function startupMessage(parameters: Map<string, string>): Buffer {
  const body = Buffer.from(`${[...parameters].flat().join('\0')}\0\0`);
  const header = Buffer.alloc(8);
  header.writeInt32BE(body.length + 8, 0);
  header.writeInt32BE(protocolVersion3, 4);
  return Buffer.concat([header, body]);
}

export interface GateOptions {
  tls: { key: string; cert: string };
  check: SignInCheck;
  // The server's name for a role: roles are cluster-wide, so a test signs in
  // to the shared server as a role of its own under the name the code uses.
  upstreamUser?: (user: string) => string;
}

export class PostgresGate {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: GateOptions) {}

  async start(): Promise<this> {
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
    const header = await readBytes(socket, 8);
    if (header.readInt32BE(4) !== sslRequestCode) {
      // rds.force_ssl = 1, and IAM sign-in needs TLS anyway
      socket.end(errorResponse('28000', 'no pg_hba.conf entry for host "127.0.0.1", no encryption'));
      return;
    }
    socket.write('S');
    const stream = new TLSSocket(socket, {
      isServer: true,
      secureContext: createSecureContext(this.options.tls),
    });
    stream.on('error', () => socket.destroy());
    const first = await readBytes(stream, 8);
    const startup = Buffer.concat([first, await readBytes(stream, first.readInt32BE(0) - 8)]);
    const parameters = parseStartup(startup);
    const user = parameters.get('user') ?? '';
    stream.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // 'R': cleartext password, please
    const type = await readBytes(stream, 5);
    const body = await readBytes(stream, type.readInt32BE(1) - 4);
    const refused = await this.options.check(
      { user, database: parameters.get('database') ?? '' },
      body.subarray(0, -1).toString(),
    );
    if (refused !== undefined) {
      stream.end(errorResponse('28P01', `password authentication failed for user "${user}": ${refused}`));
      return;
    }
    const upstreamUser = this.options.upstreamUser?.(user) ?? user;
    parameters.set('user', upstreamUser);
    const target = new URL(testDatabaseUrl);
    const upstream = connect(Number(target.port || 5432), target.hostname);
    this.sockets.add(upstream);
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => socket.destroy());
    upstream.write(startupMessage(parameters));
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

export function passwordCheck(password: () => string): SignInCheck {
  return (_startup, given) => (given === password() ? undefined : 'wrong password');
}

export interface IamCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface IamTokenCheckOptions {
  // the endpoint the token must be for
  host: string;
  port: () => number;
  region: string;
  // the keys IAM knows, by access key id
  credentials: IamCredentials[];
  // every token accepted, with who signed it in
  onSignIn?: (signIn: { user: string; token: string; accessKeyId: string }) => void;
  now?: () => Date;
}

// RDS's longest token lifetime: 15 minutes (RDS User Guide, IAM database authentication)
const tokenLifetimeSeconds = 900;
const clockSkewSeconds = 300;

function signingDate(text: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (match === null) return undefined;
  const [, y, mo, d, h, mi, s] = match;
  return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
}

// The token is the connect request, presigned: host:port/?Action=connect&DBUser=…&X-Amz-…
// It is checked by signing the same request again with the key IAM knows
// for its access key id and comparing the signatures.
export function iamTokenCheck(options: IamTokenCheckOptions): SignInCheck {
  return async (startup, token) => {
    let url: URL;
    try {
      url = new URL(`https://${token}`);
    } catch {
      return 'not an authentication token';
    }
    const query = url.searchParams;
    const endpoint = `${options.host}:${options.port()}`;
    if (url.host !== endpoint) return `token for ${url.host}, not ${endpoint}`;
    if (query.get('Action') !== 'connect') return 'not a connect token';
    if (query.get('DBUser') !== startup.user)
      return `token for user ${query.get('DBUser')}, not ${startup.user}`;
    if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'not signed with SigV4';
    const [accessKeyId = '', day = '', region, service, terminator] = (
      query.get('X-Amz-Credential') ?? ''
    ).split('/');
    if (region !== options.region || service !== 'rds-db' || terminator !== 'aws4_request') {
      return `credential scope ${region}/${service}, not ${options.region}/rds-db`;
    }
    const credentials = options.credentials.find((c) => c.accessKeyId === accessKeyId);
    if (credentials === undefined) return `unknown access key ${accessKeyId}`;
    const date = signingDate(query.get('X-Amz-Date') ?? '');
    const expires = Number(query.get('X-Amz-Expires'));
    if (date === undefined || !day || !date.toISOString().replaceAll('-', '').startsWith(day))
      return 'bad date';
    if (!Number.isInteger(expires) || expires < 1 || expires > tokenLifetimeSeconds) return 'bad lifetime';
    const now = (options.now?.() ?? new Date()).getTime();
    if (now > date.getTime() + expires * 1000) return 'token expired';
    if (now < date.getTime() - clockSkewSeconds * 1000) return 'token from the future';
    if ((query.get('X-Amz-Security-Token') ?? undefined) !== credentials.sessionToken)
      return 'wrong session token';
    const signer = new SignatureV4({
      service: 'rds-db',
      region: options.region,
      credentials,
      sha256: Sha256,
    });
    const request = new HttpRequest({
      method: 'GET',
      protocol: 'https:',
      hostname: options.host,
      port: options.port(),
      query: { Action: 'connect', DBUser: startup.user },
      headers: { host: endpoint },
    });
    const expected = await signer.presign(request, { signingDate: date, expiresIn: expires });
    if (expected.query?.['X-Amz-Signature'] !== query.get('X-Amz-Signature'))
      return 'signature does not match';
    options.onSignIn?.({ user: startup.user, token, accessKeyId });
    return undefined;
  };
}
