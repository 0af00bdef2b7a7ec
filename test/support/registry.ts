import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ECRClient } from '@aws-sdk/client-ecr';
import { loadTestConfig } from '../../lib/config.ts';
import { freePort } from '../../lib/net.ts';

// A real OCI registry for the image tests: Debian's docker-registry (the CNCF
// distribution server) on 127.0.0.1, with htpasswd Basic auth like ECR's
// registry API, storage in a temporary directory, no TLS. Plus a stand-in for
// ECR's control plane answering GetAuthorizationToken with that Basic pair.

export const registryTools = ['docker-registry', 'skopeo', 'htpasswd'] as const;

export function missingRegistryTools(): string[] {
  return registryTools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

// Skip only on a developer machine without the packages; in CI (CI set) the
// tests run and fail loudly instead of passing silently.
export function registrySkipReason(): string | false {
  const missing = missingRegistryTools();
  if (missing.length === 0 || loadTestConfig().ci) return false;
  return `needs ${missing.join(', ')}: apt-get install -y docker-registry skopeo apache2-utils`;
}

export interface TestRegistry {
  // 127.0.0.1:PORT
  host: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<TestRegistry> {
  const missing = missingRegistryTools();
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(', ')} not installed: apt-get install -y docker-registry skopeo apache2-utils (.ci/run does this)`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'registry-'));
  // ECR's token decodes to the user name AWS and a password
  const username = 'AWS';
  const password = `pw-${process.pid}-${Date.now()}`;
  // registry's htpasswd auth reads bcrypt entries only (-B)
  const htpasswd = execFileSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8' });
  await writeFile(join(dir, 'htpasswd'), htpasswd);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      'auth:',
      '  htpasswd:',
      '    realm: test-registry',
      `    path: ${join(dir, 'htpasswd')}`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'config.yml'), config);
    const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const host = `127.0.0.1:${port}`;
    if (await waitForRegistry(host, child)) {
      return {
        host,
        username,
        password,
        async stop() {
          if (child.exitCode === null) {
            child.kill('SIGTERM');
            await once(child, 'exit');
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    // the port may have been taken between probing and binding: try another
    if (attempt >= 3) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
  }
}

async function waitForRegistry(host: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false;
    try {
      const response = await fetch(`http://${host}/v2/`);
      // 401 with a Basic challenge: up, and auth is on
      if (response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

export interface EcrControlPlane {
  ecr: ECRClient;
  tokenRequests: number;
  stop(): Promise<void>;
}

// ECR's GetAuthorizationToken (JSON 1.1 protocol): the token is base64("AWS:<password>")
// and proxyEndpoint is the registry's URL, as the real service answers.
export async function startEcrControlPlane(registry: TestRegistry): Promise<EcrControlPlane> {
  const state = { tokenRequests: 0 };
  const server: Server = createServer((request, response) => {
    const target = request.headers['x-amz-target'];
    request.resume();
    request.on('end', () => {
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target !== 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken') {
        response.statusCode = 400;
        response.end(JSON.stringify({ __type: 'UnknownOperationException', message: String(target) }));
        return;
      }
      state.tokenRequests++;
      const token = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
      response.end(
        JSON.stringify({
          authorizationData: [
            {
              authorizationToken: token,
              expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
              proxyEndpoint: `http://${registry.host}`,
            },
          ],
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('ECR stand-in has no port');
  const ecr = new ECRClient({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${address.port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return {
    ecr,
    get tokenRequests() {
      return state.tokenRequests;
    },
    async stop() {
      ecr.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
