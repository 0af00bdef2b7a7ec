import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  FlexibleTimeWindowMode,
  GetScheduleCommand,
  ResourceNotFoundException,
  ScheduleState,
  UpdateScheduleCommand,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { stepError } from '../../lib/errors.ts';
import { arn } from '../../lib/names.ts';
import { retryWhile } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  deleteFound,
  diffFields,
  type FieldChange,
  isPlan,
  record,
} from '../../lib/reconcile.ts';
import { reportElapsed } from '../progress.ts';

const kind = 'schedule';

// Schedules live in the account's default group. EventBridge Scheduler
// schedules take no tags (CreateSchedule has no Tags parameter); the stack's
// name prefix and the scheduler role's tags identify it.
const groupName = 'default';

// Like Lambda, Scheduler checks at create time that it can assume the role,
// which IAM may not allow yet right after the role was created.
const roleReadyTimeoutMs = 120_000;

export interface ScheduleInputs {
  functionArn: string;
  roleArn: string;
}

export interface DesiredSchedule {
  name: string;
  description: string;
  // the buffer drains even when uploads stop: at most a minute of delay
  scheduleExpression: string;
  state: ScheduleState;
  // OFF: fire on the minute; a window would only add latency to a tiny job
  flexibleTimeWindow: FlexibleTimeWindowMode;
  targetArn: string;
  roleArn: string;
  // a missed flush is not worth retrying: the next one runs a minute later
  maximumRetryAttempts: number;
  maximumEventAgeInSeconds: number;
}

export interface LiveSchedule {
  name: string;
  arn: string | undefined;
  description: string | undefined;
  scheduleExpression: string | undefined;
  state: string | undefined;
  flexibleTimeWindow: string | undefined;
  targetArn: string | undefined;
  roleArn: string | undefined;
  maximumRetryAttempts: number | undefined;
  maximumEventAgeInSeconds: number | undefined;
}

export function desiredSchedule(ctx: Pick<Ctx, 'names'>, inputs: ScheduleInputs): DesiredSchedule {
  return {
    name: ctx.names.schedule,
    description: `${ctx.names.base}: drain the count buffer into PostgreSQL`,
    scheduleExpression: 'rate(1 minute)',
    state: ScheduleState.ENABLED,
    flexibleTimeWindow: FlexibleTimeWindowMode.OFF,
    targetArn: inputs.functionArn,
    roleArn: inputs.roleArn,
    maximumRetryAttempts: 0,
    maximumEventAgeInSeconds: 60,
  };
}

export async function findSchedule(ctx: Ctx): Promise<LiveSchedule | undefined> {
  const name = ctx.names.schedule;
  try {
    const s = await ctx.clients.scheduler.send(new GetScheduleCommand({ Name: name, GroupName: groupName }));
    return {
      name,
      arn: s.Arn,
      description: s.Description,
      scheduleExpression: s.ScheduleExpression,
      state: s.State,
      flexibleTimeWindow: s.FlexibleTimeWindow?.Mode,
      targetArn: s.Target?.Arn,
      roleArn: s.Target?.RoleArn,
      maximumRetryAttempts: s.Target?.RetryPolicy?.MaximumRetryAttempts,
      maximumEventAgeInSeconds: s.Target?.RetryPolicy?.MaximumEventAgeInSeconds,
    };
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw stepError(`read ${kind} ${name}`, error, 'check scheduler:GetSchedule permission');
  }
}

export function scheduleDrift(desired: DesiredSchedule, actual: LiveSchedule): FieldChange[] {
  const { name: _name, ...managed } = desired;
  return diffFields(managed, actual as unknown as Record<string, unknown>);
}

// UpdateSchedule replaces the whole definition, so create and update send the same body.
function scheduleRequest(desired: DesiredSchedule) {
  return {
    Name: desired.name,
    GroupName: groupName,
    Description: desired.description,
    ScheduleExpression: desired.scheduleExpression,
    State: desired.state,
    FlexibleTimeWindow: { Mode: desired.flexibleTimeWindow },
    Target: {
      Arn: desired.targetArn,
      RoleArn: desired.roleArn,
      RetryPolicy: {
        MaximumRetryAttempts: desired.maximumRetryAttempts,
        MaximumEventAgeInSeconds: desired.maximumEventAgeInSeconds,
      },
    },
  };
}

function isRoleNotReady(error: unknown): boolean {
  return error instanceof ValidationException && /assume/i.test(error.message);
}

export async function ensureSchedule(
  ctx: Ctx,
  inputs: ScheduleInputs,
): Promise<{ name: string; arn: string }> {
  const desired = desiredSchedule(ctx, inputs);
  const scheduleArn = arn(ctx.identity, 'scheduler', `schedule/${groupName}/${desired.name}`);
  const actual = await findSchedule(ctx);
  const what = `IAM role ${desired.roleArn} to become assumable by EventBridge Scheduler`;
  const retry = { what, timeoutMs: roleReadyTimeoutMs, onProgress: reportElapsed(ctx.log, what) };
  if (actual === undefined) {
    record(ctx, { kind, name: desired.name, action: Action.create });
    if (isPlan(ctx)) return { name: desired.name, arn: scheduleArn };
    try {
      await retryWhile(
        () => ctx.clients.scheduler.send(new CreateScheduleCommand(scheduleRequest(desired))),
        isRoleNotReady,
        retry,
      );
    } catch (error) {
      // ConflictException: it exists (a concurrent run); make it match
      if (!(error instanceof ConflictException)) {
        throw stepError(
          `create ${kind} ${desired.name}`,
          error,
          'check scheduler:CreateSchedule and iam:PassRole permissions',
        );
      }
      await ctx.clients.scheduler.send(new UpdateScheduleCommand(scheduleRequest(desired)));
    }
    return { name: desired.name, arn: scheduleArn };
  }
  const changes = scheduleDrift(desired, actual);
  record(ctx, {
    kind,
    name: desired.name,
    action: changes.length ? Action.update : Action.unchanged,
    fields: changes,
  });
  if (!isPlan(ctx) && changes.length > 0) {
    try {
      await retryWhile(
        () => ctx.clients.scheduler.send(new UpdateScheduleCommand(scheduleRequest(desired))),
        isRoleNotReady,
        retry,
      );
    } catch (error) {
      throw stepError(
        `update ${kind} ${desired.name}`,
        error,
        'check scheduler:UpdateSchedule and iam:PassRole permissions',
      );
    }
  }
  return { name: desired.name, arn: actual.arn ?? scheduleArn };
}

export async function deleteSchedule(ctx: Ctx): Promise<void> {
  const name = ctx.names.schedule;
  await deleteFound(ctx, {
    kind,
    name,
    found: (await findSchedule(ctx)) !== undefined,
    remove: () => ctx.clients.scheduler.send(new DeleteScheduleCommand({ Name: name, GroupName: groupName })),
    isNotFound: (error) => error instanceof ResourceNotFoundException,
    what: `${kind} ${name}`,
    hint: 'check scheduler:DeleteSchedule permission',
  });
}
