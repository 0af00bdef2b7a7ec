import { once } from 'node:events';
import { createServer } from 'node:net';

// A port on 127.0.0.1 that was free a moment ago, for child processes (redis-server,
// a registry) that must be told their port on the command line; in-process
// servers listen on port 0 instead.
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no free port on 127.0.0.1');
  return address.port;
}
