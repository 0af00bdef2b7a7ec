import { after, before } from 'node:test';
import type { Ctx } from '../../lib/reconcile.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { testContext } from '../provision/context.ts';

// The emulator's account: the ARNs it answers with are built from it.
export const emulatorScope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };

type EmulatedService = 's3' | 'sns' | 'sqs';

// One local emulator for the test file (started before its tests, stopped
// after them); the returned function makes a provisioning context whose
// clients of the given services talk to it, as the emulator's account.
export function useEmulator(): (stage: string, services: readonly EmulatedService[]) => Ctx {
  let emulator: Emulator;
  before(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  after(async () => {
    await emulator.stop();
  });
  return (stage, services) => {
    const endpoints = Object.fromEntries(
      services.map((service) => [`AWS_ENDPOINT_URL_${service.toUpperCase()}`, emulator.endpoint]),
    );
    const ctx = testContext('apply', { ...endpoints, STAGE: stage }, emulatorScope);
    for (const service of services) ctx.clients[service].config.credentials = async () => emulatorCredentials;
    return ctx;
  };
}
