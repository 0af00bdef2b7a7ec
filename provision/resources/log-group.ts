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
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  isPlan,
  missingTags,
  record,
} from '../../lib/reconcile.ts';
import { type Tags, tagDrift } from '../tags.ts';

const kind = 'log group';

// Created before the function so it carries a retention and tags; a group that
// Lambda creates on first invocation keeps logs forever.
export interface DesiredLogGroup {
  name: string;
  retentionInDays: number;
  tags: Tags;
}

export interface LiveLogGroup {
  name: string;
  arn: string;
  retentionInDays: number | undefined;
  tags: Tags;
}

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
  try {
    // a prefix search: several groups can share the prefix, so match exactly
    const answer = await ctx.clients.logs.send(
      new DescribeLogGroupsCommand({ logGroupNamePrefix: name, limit: 50 }),
    );
    return answer.logGroups?.find((g) => g.logGroupName === name);
  } catch (error) {
    throw stepError(`describe ${kind} ${name}`, error, 'check logs:DescribeLogGroups permission');
  }
}

export async function findLogGroup(ctx: Ctx, name: string): Promise<LiveLogGroup | undefined> {
  const found = await describeLogGroup(ctx, name);
  if (found === undefined) return undefined;
  const groupArn = found.logGroupArn ?? logGroupArn(ctx, name);
  let tags: Tags = {};
  try {
    tags =
      (await ctx.clients.logs.send(new ListTagsForResourceCommand({ resourceArn: groupArn }))).tags ?? {};
  } catch (error) {
    // deleted between the two calls
    if (error instanceof ResourceNotFoundException) return undefined;
    throw stepError(`list the tags of ${kind} ${name}`, error, 'check logs:ListTagsForResource permission');
  }
  return { name, arn: groupArn, retentionInDays: found.retentionInDays, tags };
}

export function logGroupDrift(desired: DesiredLogGroup, actual: LiveLogGroup): FieldChange[] {
  return [
    ...diffFields({ retentionInDays: desired.retentionInDays }, { retentionInDays: actual.retentionInDays }),
    ...tagDrift(desired.tags, actual.tags),
  ];
}

export async function ensureLogGroup(ctx: Ctx, name: string): Promise<{ name: string; arn: string }> {
  const desired = desiredLogGroup(ctx, name);
  const { logs } = ctx.clients;
  let actual = await findLogGroup(ctx, name);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.create });
    if (isPlan(ctx)) return { name, arn: logGroupArn(ctx, name) };
    try {
      await logs.send(new CreateLogGroupCommand({ logGroupName: name, tags: desired.tags }));
    } catch (error) {
      if (!(error instanceof ResourceAlreadyExistsException)) {
        throw stepError(
          `create ${kind} ${name}`,
          error,
          'check logs:CreateLogGroup and logs:TagResource permissions',
        );
      }
    }
    actual = await findLogGroup(ctx, name);
    if (actual === undefined) throw stepError(`find ${kind} ${name} after creating it`, 'not found');
    await updateLogGroup(ctx, desired, actual, logGroupDrift(desired, actual));
    return { name, arn: actual.arn };
  }
  const changes = logGroupDrift(desired, actual);
  record(ctx, { kind, name, action: changes.length ? Action.update : Action.unchanged, fields: changes });
  if (!isPlan(ctx)) await updateLogGroup(ctx, desired, actual, changes);
  return { name, arn: actual.arn };
}

async function updateLogGroup(
  ctx: Ctx,
  desired: DesiredLogGroup,
  actual: LiveLogGroup,
  changes: FieldChange[],
): Promise<void> {
  const fields = new Set(changes.map((c) => c.field));
  try {
    if (fields.has('retentionInDays')) {
      await ctx.clients.logs.send(
        new PutRetentionPolicyCommand({
          logGroupName: desired.name,
          retentionInDays: desired.retentionInDays,
        }),
      );
    }
    if (fields.has('tags')) {
      await ctx.clients.logs.send(
        new TagResourceCommand({ resourceArn: actual.arn, tags: missingTags(desired.tags, actual.tags) }),
      );
    }
  } catch (error) {
    throw stepError(
      `update ${kind} ${desired.name}`,
      error,
      'check logs:PutRetentionPolicy and logs:TagResource permissions',
    );
  }
}

export async function deleteLogGroup(ctx: Ctx, name: string): Promise<void> {
  await deleteFound(ctx, {
    kind,
    name,
    found: (await describeLogGroup(ctx, name)) !== undefined,
    remove: () => ctx.clients.logs.send(new DeleteLogGroupCommand({ logGroupName: name })),
    isNotFound: (error) => error instanceof ResourceNotFoundException,
    what: `${kind} ${name}`,
    hint: 'check logs:DeleteLogGroup permission',
  });
}
