import {
  CreateLogGroupCommand,
  DeleteLogGroupCommand,
  DescribeLogGroupsCommand,
  ListTagsForResourceCommand,
  PutRetentionPolicyCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  TagResourceCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { arn } from '../../lib/names.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  missingTags,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import { type Tags, tagDrift } from '../tags.ts';

// Created before the function so it carries a retention and tags; a group that
// Lambda creates on first invocation keeps logs forever.
export interface DesiredLogGroup {
  name: string;
  retentionInDays: number;
  tags: Tags;
}

type LiveLogGroup = NonNullable<Awaited<ReturnType<typeof findLogGroup>>>;

export function desiredLogGroup(ctx: Pick<Ctx, 'config' | 'names'>, name: string): DesiredLogGroup {
  return { name, retentionInDays: ctx.config.fn.logRetentionDays, tags: ctx.names.tags };
}

// The ARN IAM policies use for the group's streams (CreateLogStream, PutLogEvents).
export function logGroupStreamsArn(ctx: Pick<Ctx, 'identity'>, name: string): string {
  return arn(ctx.identity, 'logs', `log-group:${name}:*`);
}

function logGroupArn(ctx: Pick<Ctx, 'identity'>, name: string): string {
  return arn(ctx.identity, 'logs', `log-group:${name}`);
}

async function describeLogGroup(ctx: Ctx, name: string) {
  // a prefix search: several groups can share the prefix, so match exactly
  const answer = await ctx.clients.logs.send(
    new DescribeLogGroupsCommand({ logGroupNamePrefix: name, limit: 50 }),
  );
  return answer.logGroups?.find((g) => g.logGroupName === name);
}

async function findLogGroup(ctx: Ctx, name: string) {
  const found = await describeLogGroup(ctx, name);
  if (found === undefined) return undefined;
  const groupArn = found.logGroupArn ?? logGroupArn(ctx, name);
  // a group deleted between the two calls is not found (isNotFound)
  const { tags = {} } = await ctx.clients.logs.send(
    new ListTagsForResourceCommand({ resourceArn: groupArn }),
  );
  return { name, arn: groupArn, retentionInDays: found.retentionInDays, tags };
}

const isNotFound = (error: unknown) => error instanceof ResourceNotFoundException;

export function logGroupDrift(desired: DesiredLogGroup, actual: LiveLogGroup): FieldChange[] {
  return [
    ...diffFields({ retentionInDays: desired.retentionInDays }, { retentionInDays: actual.retentionInDays }),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

const logGroup: Resource<DesiredLogGroup, LiveLogGroup, { name: string; arn: string }> = {
  kind: 'log group',
  permissions: {
    find: 'logs:DescribeLogGroups and logs:ListTagsForResource',
    create: 'logs:CreateLogGroup and logs:TagResource',
  },
  find: findLogGroup,
  isNotFound,
  drift: logGroupDrift,
  // CreateLogGroup takes no retention: the loop finds the group again and sets it
  async create(ctx, desired) {
    await ctx.clients.logs.send(
      new CreateLogGroupCommand({ logGroupName: desired.name, tags: desired.tags }),
    );
    return undefined;
  },
  alreadyExists: (error) => error instanceof ResourceAlreadyExistsException,
  writers: {
    retentionInDays: {
      action: 'logs:PutRetentionPolicy',
      write: (ctx, { name, retentionInDays }) =>
        ctx.clients.logs.send(new PutRetentionPolicyCommand({ logGroupName: name, retentionInDays })),
    },
    tags: {
      action: 'logs:TagResource',
      write: (ctx, desired, actual) =>
        ctx.clients.logs.send(
          new TagResourceCommand({ resourceArn: actual.arn, tags: missingTags(desired.tags, actual.tags) }),
        ),
    },
  },
  outputs: (ctx, desired, actual) => ({
    name: desired.name,
    arn: actual?.arn ?? logGroupArn(ctx, desired.name),
  }),
};

export const ensureLogGroup = (ctx: Ctx, name: string) =>
  reconcile(ctx, logGroup, desiredLogGroup(ctx, name));

// Deleting needs only to know the group is there: no tags are read.
export const deleteLogGroup = (ctx: Ctx, name: string) =>
  destroy(
    ctx,
    {
      kind: logGroup.kind,
      permissions: { find: 'logs:DescribeLogGroups', delete: 'logs:DeleteLogGroup' },
      find: describeLogGroup,
      remove: (ctx, name) => ctx.clients.logs.send(new DeleteLogGroupCommand({ logGroupName: name })),
      isNotFound,
    },
    name,
  );
