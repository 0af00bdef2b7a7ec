import {
  CloudWatchLogsClient,
  type CreateLogGroupRequest,
  type DeleteLogGroupRequest,
  type DescribeLogGroupsRequest,
  InvalidParameterException,
  type ListTagsForResourceRequest,
  type PutRetentionPolicyRequest,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  type TagResourceRequest,
} from '@aws-sdk/client-cloudwatch-logs';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful CloudWatch Logs control plane for log groups: creation with tags,
// prefix listing, retention (only the values the service accepts) and tags by
// ARN (the group ARN without the trailing `:*`).

export interface FakeLogGroup {
  name: string;
  arn: string;
  retentionInDays: number | undefined;
  tags: Map<string, string>;
}

export interface LogsFake extends InstalledFake {
  groups: Map<string, FakeLogGroup>;
  taggedResources(): { arn: string; tags: Record<string, string> }[];
}

const metadata = { $metadata: {} };

// PutRetentionPolicy accepts only these values (API reference)
const retentionValues = new Set([
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
]);

export function installLogsFake(options: { accountId?: string; region?: string } = {}): LogsFake {
  const accountId = options.accountId ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const groups = new Map<string, FakeLogGroup>();

  function group(name: string | undefined): FakeLogGroup {
    const found = groups.get(name ?? '');
    if (found === undefined) {
      throw new ResourceNotFoundException({
        message: 'The specified log group does not exist.',
        ...metadata,
      });
    }
    return found;
  }

  function byArn(resourceArn: string | undefined): FakeLogGroup {
    const found = [...groups.values()].find((g) => g.arn === resourceArn);
    if (found === undefined) {
      throw new ResourceNotFoundException({ message: 'The specified resource does not exist.', ...metadata });
    }
    return found;
  }

  const installed = installHandlers(CloudWatchLogsClient, 'logs', {
    CreateLogGroup(input: CreateLogGroupRequest) {
      const name = input.logGroupName ?? '';
      if (groups.has(name)) {
        throw new ResourceAlreadyExistsException({
          message: 'The specified log group already exists',
          ...metadata,
        });
      }
      groups.set(name, {
        name,
        arn: `arn:aws:logs:${region}:${accountId}:log-group:${name}`,
        retentionInDays: undefined,
        tags: new Map(Object.entries(input.tags ?? {})),
      });
      return {};
    },
    DescribeLogGroups(input: DescribeLogGroupsRequest) {
      const prefix = input.logGroupNamePrefix ?? '';
      return {
        logGroups: [...groups.values()]
          .filter((g) => g.name.startsWith(prefix))
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .slice(0, input.limit ?? 50)
          .map((g) => ({
            logGroupName: g.name,
            arn: `${g.arn}:*`,
            logGroupArn: g.arn,
            retentionInDays: g.retentionInDays,
            creationTime: 0,
            storedBytes: 0,
          })),
      };
    },
    PutRetentionPolicy(input: PutRetentionPolicyRequest) {
      const found = group(input.logGroupName);
      if (!retentionValues.has(input.retentionInDays ?? 0)) {
        throw new InvalidParameterException({
          message: `1 validation error detected: Value '${input.retentionInDays}' at 'retentionInDays' failed to satisfy constraint`,
          ...metadata,
        });
      }
      found.retentionInDays = input.retentionInDays;
      return {};
    },
    ListTagsForResource(input: ListTagsForResourceRequest) {
      return { tags: Object.fromEntries(byArn(input.resourceArn).tags) };
    },
    TagResource(input: TagResourceRequest) {
      const found = byArn(input.resourceArn);
      for (const [key, value] of Object.entries(input.tags ?? {})) found.tags.set(key, value);
      return {};
    },
    DeleteLogGroup(input: DeleteLogGroupRequest) {
      groups.delete(group(input.logGroupName).name);
      return {};
    },
  });

  return {
    ...installed,
    groups,
    taggedResources: () =>
      [...groups.values()].map((g) => ({ arn: g.arn, tags: Object.fromEntries(g.tags) })),
  };
}
