// The project's few error classes. Each message says what failed and what to
// do about it; the SDK error that caused it rides along as `cause`.

export class AwsStepError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AwsStepError';
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class TimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TimeoutError';
  }
}

// Wraps a failed AWS call: `cannot create queue ada-uploads: <sdk message> (check sqs:CreateQueue permission)`.
// A call that reached no endpoint (EndpointUnreachableError, below) gets that
// error's own hint instead of the step's: a GetCallerIdentity that never
// reached STS says nothing about credentials or permissions.
export function stepError(what: string, error: unknown, hint?: string): AwsStepError {
  if (error instanceof EndpointUnreachableError) {
    return new AwsStepError(`cannot ${what}: ${error.message} (${unreachableHint}: ${error.hint})`, {
      cause: error,
    });
  }
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new AwsStepError(`cannot ${what}: ${detail}${hint ? ` (${hint})` : ''}`, { cause: error });
}

export const unreachableHint = 'the request got no answer, so credentials and permissions were not checked';

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// An AWS endpoint that could not be reached at all: the connection was
// refused, the name did not resolve, or no connection was made in time.
// lib/clients.ts raises it with the endpoint the request went to, which the
// SDK's own error does not name (a connection timeout says only how long).
export class EndpointUnreachableError extends Error {
  readonly endpoint: string;
  // what to check, for the message at the command's edge (lib/cli.ts)
  readonly hint: string;
  constructor(message: string, endpoint: string, hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EndpointUnreachableError';
    this.endpoint = endpoint;
    this.hint = hint;
  }
}
