import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  MetadataBearer,
} from '@smithy/types';
import { mockClient } from 'aws-sdk-client-mock';
import type { Clients } from '../../lib/clients.ts';

// The shared call log of every stateful fake under test/fakes/. Each fake
// records (service, command, input) for every call its client receives, in
// order, so a test can assert what a run did across services:
//   resetCalls(); await ensureNetwork(ctx); assert.deepEqual(mutatingCalls(), []);
// Command names are the SDK command class name without the `Command` suffix
// (`CreateVpc`, `DescribeDBInstances`).

export interface RecordedCall {
  service: string;
  command: string;
  input: unknown;
}

export const callLog: RecordedCall[] = [];

// Observers of every call as it is made (before the fake or the emulator
// answers it), for checks that need the state the call met, like the IAM check
// reading a resource's tags before a delete removes them.
const observers = new Set<(call: RecordedCall) => void>();

export function observeCalls(observer: (call: RecordedCall) => void): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

export function recordCall(service: string, command: string, input: unknown): void {
  const call = { service, command, input: structuredClone(input) };
  callLog.push(call);
  for (const observer of observers) observer(call);
}

export function resetCalls(): void {
  callLog.length = 0;
}

// Clients that are not faked (S3/SNS/SQS on the emulator, the function's own
// clients) record their calls through a middleware into the same call log, so
// "no mutating call" and the IAM check cover every service.
export function recordClientCalls(client: { middlewareStack: { add: Function } }, service: string): void {
  const recorder =
    (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<object>) => {
      recordCall(service, String(context.commandName).replace(/Command$/, ''), args.input);
      return next(args);
    };
  client.middlewareStack.add(recorder, { step: 'initialize', name: 'recordClientCalls', override: true });
}

export function recordEmulatorCalls(clients: Clients): void {
  recordClientCalls(clients.s3, 's3');
  recordClientCalls(clients.sns, 'sns');
  recordClientCalls(clients.sqs, 'sqs');
}

// AWS read-only operations are named Describe*, Get*, List* or Head*; anything
// else changes state (or, like AssumeRole, at least is not a read).
const readPrefixes = ['Describe', 'Get', 'List', 'Head'] as const;

export function isMutating(command: string): boolean {
  return !readPrefixes.some((prefix) => command.startsWith(prefix));
}

export function mutatingCalls(service?: string): RecordedCall[] {
  return callLog.filter(
    (call) => isMutating(call.command) && (service === undefined || call.service === service),
  );
}

export function callsTo(service: string, command?: string): RecordedCall[] {
  return callLog.filter(
    (call) => call.service === service && (command === undefined || call.command === command),
  );
}

// `service:Command` strings, handy for deepEqual on the order of a run
export function callNames(calls: readonly RecordedCall[] = callLog): string[] {
  return calls.map((call) => `${call.service}:${call.command}`);
}

// A fake's behaviour: one function per implemented command, taking the
// command's input and returning its output (or throwing the service's error).
export type Handlers = Record<string, (input: never) => unknown>;

export interface InstalledFake {
  restore(): void;
}

// Replaces `send` on every instance of `ClientClass` (aws-sdk-client-mock) with
// a dispatcher that logs the call and runs the handler named after the
// command. A command the fake does not implement fails loudly, so a test never
// passes because an unexpected call silently returned undefined.
export function installHandlers(
  ClientClass: Parameters<typeof mockClient>[0],
  service: string,
  handlers: Handlers,
): InstalledFake {
  const mock = mockClient(ClientClass);
  mock.send.callsFake(async (command) => {
    const name = command.constructor.name.replace(/Command$/, '');
    recordCall(service, name, command.input);
    const handler = handlers[name] as ((input: unknown) => unknown) | undefined;
    if (handler === undefined) {
      throw new Error(`the ${service} fake does not implement ${name}; add it to test/fakes/`);
    }
    // a copy, so code under test never shares objects with the fake's state
    // (the SDK's output types are the handlers' business; `never` satisfies the stub's signature)
    return structuredClone(await handler(structuredClone(command.input ?? {}))) as never;
  });
  return { restore: () => mock.restore() };
}
