import { computeDigest, DigestMismatchError, isDigest, verifyDigest } from './digest.ts';
import { manifestAccept } from './media.ts';
import { registryBaseUrl } from './reference.ts';

// A small client for the OCI distribution API (the registry HTTP API v2): what
// a daemonless push needs and nothing more. Written here because the npm
// registry clients that exist either need a Docker daemon or upload in chunks,
// which ECR refuses.

type RegistryAuth =
  // ECR: the decoded GetAuthorizationToken pair (user AWS), sent on every request
  | { kind: 'basic'; username: string; password: string }
  // public registries (public.ecr.aws): an anonymous token from the Bearer challenge
  | { kind: 'anonymous' };

interface RegistryOptions {
  host: string;
  repository: string;
  auth: RegistryAuth;
  // defaults to https://host (http for loopback hosts: the local test registry)
  baseUrl?: string;
  requestTimeoutMs?: number;
}

export class RegistryError extends Error {
  readonly status: number | undefined;
  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryError';
    this.status = options?.status;
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface Challenge {
  realm: string;
  service?: string;
  scope?: string;
}

// RFC 7235 auth-param list: key="quoted value" or key=token, comma separated
export function parseBearerChallenge(header: string | null): Challenge | undefined {
  if (header === null || !/^bearer\s/i.test(header)) return undefined;
  const params: Record<string, string> = {};
  for (const match of header.slice(7).matchAll(/([a-zA-Z_]+)\s*=\s*(?:"([^"]*)"|([^\s,]+))/g)) {
    const key = match[1]?.toLowerCase();
    if (key !== undefined) params[key] = match[2] ?? match[3] ?? '';
  }
  if (params.realm === undefined) return undefined;
  return {
    realm: params.realm,
    ...(params.service === undefined ? {} : { service: params.service }),
    ...(params.scope === undefined ? {} : { scope: params.scope }),
  };
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 5;
// one request may carry a whole base layer (tens of MB) over a slow uplink
const defaultRequestTimeoutMs = 10 * 60_000;

export class RegistryClient {
  readonly name: string;
  private readonly baseUrl: string;
  private readonly repository: string;
  private readonly auth: RegistryAuth;
  private readonly timeoutMs: number;
  private authorization: string | undefined;

  constructor(options: RegistryOptions) {
    this.repository = options.repository;
    this.name = `${options.host}/${options.repository}`;
    this.baseUrl = (options.baseUrl ?? registryBaseUrl(options.host)).replace(/\/$/, '');
    this.auth = options.auth;
    this.timeoutMs = options.requestTimeoutMs ?? defaultRequestTimeoutMs;
    if (options.auth.kind === 'basic') {
      const pair = `${options.auth.username}:${options.auth.password}`;
      this.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    }
  }

  async getManifest(reference: string): Promise<FetchedManifest> {
    const response = await this.send('GET', this.path(`manifests/${reference}`), {
      headers: { accept: manifestAccept },
    });
    await this.expect(response, [200], `get manifest ${reference}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = computeDigest(bytes);
    // By digest, the bytes must hash to it; by tag, to what the registry says it served.
    const expected = isDigest(reference) ? reference : response.headers.get('docker-content-digest');
    if (expected !== null && expected !== digest) {
      throw new DigestMismatchError(`manifest ${this.name}:${reference}`, expected, digest);
    }
    const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
    return { bytes, mediaType, digest };
  }

  // The manifest digest a reference points to, or undefined when absent
  async findManifest(reference: string): Promise<string | undefined> {
    const response = await this.send('HEAD', this.path(`manifests/${reference}`), {
      headers: { accept: manifestAccept },
    });
    if (response.status === 404) return undefined;
    await this.expect(response, [200], `check manifest ${reference}`);
    return response.headers.get('docker-content-digest') ?? undefined;
  }

  async getBlob(digest: string, what: string): Promise<Buffer> {
    const response = await this.send('GET', this.path(`blobs/${digest}`), {});
    await this.expect(response, [200], `download ${what} ${digest}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    verifyDigest(bytes, digest, `${what} ${digest} from ${this.name}`);
    return bytes;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.send('HEAD', this.path(`blobs/${digest}`), {});
    if (response.status === 404) return false;
    await this.expect(response, [200], `check blob ${digest}`);
    return true;
  }

  // Monolithic upload in three requests: POST opens a session, one PATCH sends
  // the whole blob, PUT ?digest= commits it. ECR rejects the single-request
  // POST ?digest= form and multi-chunk PATCH sequences, and accepts this one
  // (it answers 201 to the PATCH where the spec says 202).
  async uploadBlob(digest: string, bytes: Uint8Array): Promise<void> {
    const started = await this.send('POST', this.path('blobs/uploads/'), {});
    await this.expect(started, [202], `start upload of ${digest}`);
    const sessionUrl = this.location(started, `start upload of ${digest}`);
    const patched = await this.send('PATCH', sessionUrl, {
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    await this.expect(patched, [201, 202, 204], `upload ${digest}`);
    // the session URL may change after each request (registry state travels in it)
    const commitUrl = new URL(
      patched.headers.get('location') === null ? sessionUrl : this.location(patched, `upload ${digest}`),
    );
    commitUrl.searchParams.set('digest', digest);
    const committed = await this.send('PUT', commitUrl.toString(), {});
    await this.expect(committed, [201], `commit upload of ${digest}`);
    const stored = committed.headers.get('docker-content-digest');
    if (stored !== null && stored !== digest) {
      throw new DigestMismatchError(`blob uploaded to ${this.name}`, digest, stored);
    }
  }

  // Returns the digest the registry computed; the caller compares it with its own.
  async putManifest(tag: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const response = await this.send('PUT', this.path(`manifests/${tag}`), {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    await this.expect(response, [200, 201], `put manifest ${tag}`);
    const digest = response.headers.get('docker-content-digest');
    if (digest === null) {
      throw new RegistryError(
        `${this.name} accepted manifest ${tag} but sent no Docker-Content-Digest header`,
      );
    }
    return digest;
  }

  private path(rest: string): string {
    return `${this.baseUrl}/v2/${this.repository}/${rest}`;
  }

  private location(response: Response, what: string): string {
    const location = response.headers.get('location');
    if (location === null)
      throw new RegistryError(`${this.name}: ${what}: the answer has no Location header`);
    return new URL(location, this.baseUrl).toString();
  }

  // One request with this registry's credentials; on a Bearer challenge it
  // fetches a token and retries once. Redirects (blob downloads go to S3 or a
  // CDN) are followed by hand WITHOUT the Authorization header: the target is
  // another origin, which must not see the registry token and, being
  // pre-signed, rejects a second auth mechanism.
  private async send(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
  ): Promise<Response> {
    let response = await this.sendOnce(method, url, init, this.authorization);
    if (response.status === 401) {
      const challenge = parseBearerChallenge(response.headers.get('www-authenticate'));
      if (challenge !== undefined) {
        await response.body?.cancel();
        this.authorization = `Bearer ${await this.fetchToken(challenge, method)}`;
        response = await this.sendOnce(method, url, init, this.authorization);
      }
    }
    for (let hop = 0; redirectStatuses.has(response.status); hop++) {
      const location = response.headers.get('location');
      if (location === null || hop >= maxRedirects) break;
      await response.body?.cancel();
      const next = new URL(location, url).toString();
      // only reads are redirected; a redirected write would need its body re-sent
      response = await this.sendOnce(method === 'HEAD' ? 'HEAD' : 'GET', next, {
        headers: init.headers ?? {},
      });
    }
    return response;
  }

  private async sendOnce(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Uint8Array },
    authorization?: string,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      return await fetch(url, {
        method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    } catch (error) {
      throw new RegistryError(
        `cannot reach ${new URL(url).origin} (${method} ${new URL(url).pathname}): ${error instanceof Error ? error.message : error} (check the network and the registry address)`,
        { cause: error },
      );
    }
  }

  // Docker token protocol: GET realm?service=..&scope=repository:NAME:ACTIONS
  // answers {"token": ...} (or "access_token").
  private async fetchToken(challenge: Challenge, method: string): Promise<string> {
    const url = new URL(challenge.realm);
    if (challenge.service !== undefined) url.searchParams.set('service', challenge.service);
    const actions = method === 'GET' || method === 'HEAD' ? 'pull' : 'pull,push';
    url.searchParams.set('scope', `repository:${this.repository}:${actions}`);
    const headers: Record<string, string> = {};
    if (this.auth.kind === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    }
    const response = await this.sendOnce('GET', url.toString(), { headers });
    await this.expect(response, [200], `get a token from ${url.origin}`);
    const body = (await response.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`${url.origin} answered the token request without a token`);
    return token;
  }

  private async expect(response: Response, ok: readonly number[], what: string): Promise<void> {
    if (ok.includes(response.status)) return;
    const text = await response.text().catch(() => '');
    let detail = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      if (parsed.errors?.length) detail = parsed.errors.map((e) => `${e.code}: ${e.message}`).join('; ');
    } catch {
      // not a JSON error body: the raw text is the detail
    }
    const hint =
      response.status === 401 || response.status === 403
        ? 'check the credentials and that they may pull/push this repository'
        : response.status === 404
          ? 'check the repository name and that it exists'
          : 'retry; if it persists, the registry refuses this request';
    throw new RegistryError(
      `${this.name}: cannot ${what}: HTTP ${response.status}${detail ? ` ${detail}` : ''} (${hint})`,
      { status: response.status },
    );
  }
}
