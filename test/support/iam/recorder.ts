import { observeCalls, type RecordedCall } from '../../fakes/calls.ts';
import type { FakeAws } from '../../fakes/index.ts';
import { type Authorization, authorizationsFor, type Live, type Scope } from './actions.ts';
import type { Request } from './evaluate.ts';

// Maps every call to its IAM requests at the moment it is made, while the
// resources it names still carry the tags their conditions read (a delete's
// resource is gone by the end of the test). Unlike the call log, which tests
// reset, it keeps every call of the test file, for one check at the end.

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
        if (table.Associations.some((a) => a.RouteTableAssociationId === associationId)) return table.RouteTableId;
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
  const log: Omit<AuthorizationLog, 'stop'> = { caller: [], byRole: new Map(), unmapped: [] };
  const stop = observeCalls((call) => {
    if (!include(call)) return;
    let authorizations: Authorization[];
    try {
      authorizations = authorizationsFor(call, scope, live);
    } catch (error) {
      log.unmapped.push(error instanceof Error ? error.message : String(error));
      return;
    }
    const name = `${call.service}:${call.command}`;
    for (const authorization of authorizations) {
      const request = { call: name, authorization };
      if (authorization.as === undefined) {
        log.caller.push(request);
      } else {
        const list = log.byRole.get(authorization.as) ?? [];
        list.push(request);
        log.byRole.set(authorization.as, list);
      }
    }
  });
  return { ...log, stop };
}
