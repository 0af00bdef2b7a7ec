import { observeCalls, type RecordedCall } from '../../fakes/calls.ts';
import type { FakeAws } from '../../fakes/index.ts';
import {
  type Authorization,
  authorizationsFor,
  authorizationsOnFailure,
  type Live,
  registryAuthorization,
  type Scope,
} from './actions.ts';
import type { Request } from './evaluate.ts';

// Maps every call to its IAM requests at the moment it is made, while the
// resources it names still carry the tags their conditions read (a delete's
// resource is gone by the end of the test). Unlike the call log, which tests
// reset, it keeps every call from start() to stop().

export interface AuthorizationLog {
  // requests made with the caller's own credentials
  caller: Request[];
  // requests AWS makes with a role on the caller's behalf, by role ARN
  byRole: Map<string, Request[]>;
  // calls the table in actions.ts cannot map
  unmapped: string[];
  stop(): void;
}

export function liveOf(aws: FakeAws): Live {
  const normalize = (arn: string) => arn.replace(/:\*$/, '');
  return {
    tagsOf(arn) {
      const wanted = normalize(arn);
      for (const source of aws.tagging.sources) {
        const found = source().find((resource) => normalize(resource.arn) === wanted);
        if (found !== undefined) return found.tags;
      }
      return undefined;
    },
    routeTableOfAssociation(associationId) {
      for (const table of aws.ec2.state.routeTables.values()) {
        if (table.Associations.some((a) => a.RouteTableAssociationId === associationId))
          return table.RouteTableId;
      }
      return undefined;
    },
    roleOf(functionArn) {
      const name = functionArn.split(':function:')[1]?.split(':')[0] ?? '';
      return aws.lambda.functions.get(name)?.configuration.Role;
    },
    functionOfMapping(uuid) {
      return aws.lambda.mappings.get(uuid)?.FunctionArn;
    },
    boundaryOf(roleArn) {
      const name = roleArn.split(':role/')[1] ?? '';
      return aws.iam.roles.get(name)?.permissionsBoundary;
    },
  };
}

export function recordAuthorizations(
  scope: Scope,
  live: Live = {},
  include: (call: RecordedCall) => boolean = () => true,
): AuthorizationLog {
  const caller: Request[] = [];
  const byRole = new Map<string, Request[]>();
  const unmapped: string[] = [];
  const add = (call: RecordedCall, authorizations: Authorization[]) => {
    const name = `${call.service}:${call.command}`;
    for (const authorization of authorizations) {
      const request = { call: name, authorization };
      if (authorization.as === undefined) {
        caller.push(request);
      } else {
        const list = byRole.get(authorization.as) ?? [];
        list.push(request);
        byRole.set(authorization.as, list);
      }
    }
  };
  const stop = observeCalls({
    called(call) {
      if (!include(call)) return;
      try {
        add(call, authorizationsFor(call, scope, live));
      } catch (error) {
        unmapped.push(error instanceof Error ? error.message : String(error));
      }
    },
    failed(call, error) {
      if (include(call)) add(call, authorizationsOnFailure(call, error, scope, live));
    },
  });
  return { caller, byRole, unmapped, stop };
}

// The registry API of an image push goes over fetch, not the SDK: every
// request to `host` is recorded as ECR authorizes it, until the returned
// function restores fetch.
export function recordRegistryCalls(
  host: string,
  scope: Scope,
  log: Pick<AuthorizationLog, 'caller'>,
): () => void {
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    if (new URL(url).host === host) {
      const authorization = registryAuthorization(method, url, scope);
      if (authorization !== undefined) {
        log.caller.push({ call: `registry:${method} ${new URL(url).pathname}`, authorization });
      }
    }
    return realFetch(input, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = realFetch;
  };
}
