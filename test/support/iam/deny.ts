import assert from 'node:assert/strict';
import { observeCalls } from '../../fakes/calls.ts';
import { authorizationsFor, type Live, type Scope } from './actions.ts';

// A caller that lacks some actions: every call that IAM would authorize as
// one of them fails, before the fake or the emulator sees it, with the error
// the service answers (for negative tests: "without elasticache:X, up stops
// and names the step and the permission"). A call the table cannot map goes
// through; the IAM tests report those.

// The error code each service answers an unauthorized call with (each
// service's Common Errors page): query services AccessDenied, EC2
// UnauthorizedOperation, SNS AuthorizationError, JSON services AccessDeniedException.
const deniedCodes: Record<string, string> = {
  ec2: 'UnauthorizedOperation',
  sns: 'AuthorizationError',
  lambda: 'AccessDeniedException',
  ecr: 'AccessDeniedException',
  logs: 'AccessDeniedException',
  secretsmanager: 'AccessDeniedException',
  scheduler: 'AccessDeniedException',
  tagging: 'AccessDeniedException',
};

export class AccessDenied extends Error {
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 403 };
}

export function denyActions(scope: Scope, actions: readonly string[], live: Live = {}): () => void {
  const denied = new Set(actions.map((action) => action.toLowerCase()));
  return observeCalls({
    called(call) {
      let authorizations: ReturnType<typeof authorizationsFor>;
      try {
        authorizations = authorizationsFor(call, scope, live);
      } catch {
        return;
      }
      const refused = authorizations.find(
        (a) => a.as === undefined && a.optional === undefined && denied.has(a.action.toLowerCase()),
      );
      if (refused === undefined) return;
      const error = new AccessDenied(
        `User: arn:${scope.partition}:sts::${scope.accountId}:assumed-role/deployer/session is not authorized to perform: ${refused.action} on resource: ${refused.resource} because no identity-based policy allows the ${refused.action} action`,
      );
      error.name = deniedCodes[call.service] ?? 'AccessDenied';
      throw error;
    },
  });
}

// Runs `run` as a caller without `action`: it must fail with `message`.
export async function rejectsWithoutAction(
  scope: Scope,
  action: string,
  run: () => Promise<unknown>,
  message: RegExp,
): Promise<void> {
  const allow = denyActions(scope, [action]);
  await assert.rejects(run(), { message }).finally(allow);
}
