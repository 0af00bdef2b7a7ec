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
// reading a resource's tags before a delete removes them; and of every call
// that failed, with the error it got, for checks that depend on the answer
// (S3 answers a missing object with 404 only to a caller that may list the bucket).
export interface CallObserver {
  called(call: RecordedCall): void;
  failed?(call: RecordedCall, error: unknown): void;
}

const observers = new Set<CallObserver>();

export function observeCalls(observer: CallObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

export function recordCall(service: string, command: string, input: unknown): RecordedCall {
  const call = { service, command, input: structuredClone(input) };
  callLog.push(call);
  for (const observer of observers) observer.called(call);
  return call;
}

function recordFailure(call: RecordedCall, error: unknown): void {
  for (const observer of observers) observer.failed?.(call, error);
}

export function resetCalls(): void {
  callLog.length = 0;
}

interface MiddlewareClient {
  middlewareStack: { add: Function };
}

// Clients that are not faked (S3/SNS/SQS on the emulator, the function's own
// clients) record their calls through a middleware into the same call log, so
// "no mutating call" and the IAM check cover every service.
export function recordClientCalls(client: MiddlewareClient, service: string): void {
  const recorder =
    (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<object>) => {
      const call = recordCall(service, String(context.commandName).replace(/Command$/, ''), args.input);
      try {
        return await next(args);
      } catch (error) {
        recordFailure(call, error);
        throw error;
      }
    };
  client.middlewareStack.add(recorder, { step: 'initialize', name: 'recordClientCalls', override: true });
}

export function recordEmulatorCalls(clients: Clients): void {
  recordClientCalls(clients.s3, 's3');
  recordClientCalls(clients.sns, 'sns');
  recordClientCalls(clients.sqs, 'sqs');
}

// For code that builds its own clients (a CLI's main): every instance of
// ClientClass gets the recording middleware before its first command, until
// the returned function restores the class.
export function recordEveryClient(ClientClass: { prototype: object }, service: string): () => void {
  const prototype = ClientClass.prototype as {
    send: (this: MiddlewareClient, ...args: unknown[]) => unknown;
  };
  const own = Object.getOwnPropertyDescriptor(prototype, 'send');
  const send = prototype.send;
  const recording = new WeakSet<object>();
  prototype.send = function (this: MiddlewareClient, ...args: unknown[]) {
    if (!recording.has(this)) {
      recording.add(this);
      recordClientCalls(this, service);
    }
    return send.apply(this, args);
  };
  return () => {
    if (own === undefined) delete (prototype as { send?: unknown }).send;
    else Object.defineProperty(prototype, 'send', own);
  };
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
    const call = recordCall(service, name, command.input);
    const handler = handlers[name] as ((input: unknown) => unknown) | undefined;
    if (handler === undefined) {
      throw new Error(`the ${service} fake does not implement ${name}; add it to test/fakes/`);
    }
    try {
      // a copy, so code under test never shares objects with the fake's state
      // (the SDK's output types are the handlers' business; `never` satisfies the stub's signature)
      return structuredClone(await handler(structuredClone(command.input ?? {}))) as never;
    } catch (error) {
      recordFailure(call, error);
      throw error;
    }
  });
  return { restore: () => mock.restore() };
}
