import {
  ConflictException,
  CreateScheduleCommand,
  DeleteScheduleCommand,
  FlexibleTimeWindowMode,
  GetScheduleCommand,
  type GetScheduleCommandOutput,
  ResourceNotFoundException,
  ScheduleState,
  UpdateScheduleCommand,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { arn } from '../../lib/names.ts';
import { retryWhile } from '../../lib/poll.ts';
import {
  type Ctx,
  destroy,
  diffFields,
  type FieldChange,
  type Resource,
  reconcile,
} from '../../lib/reconcile.ts';
import { reportElapsed } from '../progress.ts';

// Schedules live in the account's default group. EventBridge Scheduler
// schedules take no tags (CreateSchedule has no Tags parameter); the stack's
// name prefix and the scheduler role's tags identify it.
const groupName = 'default';

// IAM's propagation delay for a new role (see whileRoleNotReady)
const roleReadyTimeoutMs = 120_000;

export interface ScheduleInputs {
  functionArn: string;
  roleArn: string;
}

export type DesiredSchedule = ReturnType<typeof desiredSchedule>;

export type LiveSchedule = ReturnType<typeof toLive>;

export function desiredSchedule(ctx: Pick<Ctx, 'names'>, inputs: ScheduleInputs) {
  return {
    name: ctx.names.schedule,
    description: `${ctx.names.base}: drain the count buffer into PostgreSQL`,
    // the buffer drains even when uploads stop: at most a minute of delay
    scheduleExpression: 'rate(1 minute)',
    state: ScheduleState.ENABLED,
    // OFF: fire on the minute; a window would only add latency to a tiny job
    flexibleTimeWindow: FlexibleTimeWindowMode.OFF,
    targetArn: inputs.functionArn,
    roleArn: inputs.roleArn,
    // a missed flush is not worth retrying: the next one runs a minute later
    maximumRetryAttempts: 0,
    maximumEventAgeInSeconds: 60,
  };
}

function toLive(name: string, s: GetScheduleCommandOutput) {
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

// Like Lambda, Scheduler checks that it can assume the role, which IAM may
// not allow yet right after the role was created: retry while it says so.
function whileRoleNotReady<T>(ctx: Ctx, desired: DesiredSchedule, send: () => Promise<T>): Promise<T> {
  const what = `IAM role ${desired.roleArn} to become assumable by EventBridge Scheduler`;
  return retryWhile(send, (error) => error instanceof ValidationException && /assume/i.test(error.message), {
    what,
    timeoutMs: roleReadyTimeoutMs,
    onProgress: reportElapsed(ctx.log, what),
  });
}

const scheduleArn = (ctx: Ctx, name: string) =>
  arn(ctx.identity, 'scheduler', `schedule/${groupName}/${name}`);

const schedule: Resource<DesiredSchedule, LiveSchedule, { name: string; arn: string }> = {
  kind: 'schedule',
  permissions: {
    find: 'scheduler:GetSchedule',
    create: 'scheduler:CreateSchedule and iam:PassRole',
    update: 'scheduler:UpdateSchedule and iam:PassRole',
    delete: 'scheduler:DeleteSchedule',
  },
  find: async (ctx, name) =>
    toLive(
      name,
      await ctx.clients.scheduler.send(new GetScheduleCommand({ Name: name, GroupName: groupName })),
    ),
  drift: scheduleDrift,
  async create(ctx, desired) {
    const created = await whileRoleNotReady(ctx, desired, () =>
      ctx.clients.scheduler.send(new CreateScheduleCommand(scheduleRequest(desired))),
    );
    return { ...desired, arn: created.ScheduleArn };
  },
  // a concurrent run's schedule: found and made to match
  alreadyExists: (error) => error instanceof ConflictException,
  async update(ctx, desired) {
    await whileRoleNotReady(ctx, desired, () =>
      ctx.clients.scheduler.send(new UpdateScheduleCommand(scheduleRequest(desired))),
    );
  },
  outputs: (ctx, desired, actual) => ({
    name: desired.name,
    arn: actual?.arn ?? scheduleArn(ctx, desired.name),
  }),
  remove: (ctx, name) =>
    ctx.clients.scheduler.send(new DeleteScheduleCommand({ Name: name, GroupName: groupName })),
  isNotFound: (error) => error instanceof ResourceNotFoundException,
};

export const ensureSchedule = (ctx: Ctx, inputs: ScheduleInputs) =>
  reconcile(ctx, schedule, desiredSchedule(ctx, inputs));

export const deleteSchedule = (ctx: Ctx) => destroy(ctx, schedule, ctx.names.schedule);
