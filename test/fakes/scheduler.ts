import {
  ConflictException,
  type CreateScheduleInput,
  type DeleteScheduleInput,
  type GetScheduleInput,
  ResourceNotFoundException,
  SchedulerClient,
  type UpdateScheduleInput,
  ValidationException,
} from '@aws-sdk/client-scheduler';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful EventBridge Scheduler for schedules in groups. UpdateSchedule
// replaces the whole definition, as the service does. When given a way to
// check roles, it refuses a target role that does not exist (the service
// checks it can assume the role at create time).

export type FakeSchedule = CreateScheduleInput & { Arn: string };

export interface SchedulerFake extends InstalledFake {
  schedules: Map<string, FakeSchedule>;
}

const metadata = { $metadata: {} };

// Scheduler's errors carry the text in `Message`; the SDK also sets `message`
function failure(message: string) {
  return { message, Message: message, ...metadata };
}

export function installSchedulerFake(
  options: { accountId?: string; region?: string; roleExists?: (roleArn: string) => boolean } = {},
): SchedulerFake {
  const accountId = options.accountId ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const schedules = new Map<string, FakeSchedule>();
  const key = (group: string | undefined, name: string | undefined) => `${group ?? 'default'}/${name ?? ''}`;

  function schedule(input: { GroupName?: string | undefined; Name?: string | undefined }): FakeSchedule {
    const found = schedules.get(key(input.GroupName, input.Name));
    if (found === undefined) {
      throw new ResourceNotFoundException(failure(`Schedule ${input.Name} does not exist.`));
    }
    return found;
  }

  function validate(input: CreateScheduleInput): void {
    if (
      !input.ScheduleExpression ||
      !input.FlexibleTimeWindow?.Mode ||
      !input.Target?.Arn ||
      !input.Target.RoleArn
    ) {
      throw new ValidationException(
        failure('ScheduleExpression, FlexibleTimeWindow and Target are required'),
      );
    }
    if (options.roleExists !== undefined && !options.roleExists(input.Target.RoleArn)) {
      throw new ValidationException(
        failure('The execution role you provide must allow AWS EventBridge Scheduler to assume the role.'),
      );
    }
  }

  const installed = installHandlers(SchedulerClient, 'scheduler', {
    CreateSchedule(input: CreateScheduleInput) {
      const k = key(input.GroupName, input.Name);
      if (schedules.has(k)) {
        throw new ConflictException(failure(`Schedule ${input.Name} already exists.`));
      }
      validate(input);
      const Arn = `arn:aws:scheduler:${region}:${accountId}:schedule/${k}`;
      schedules.set(k, { ...input, GroupName: input.GroupName ?? 'default', Arn });
      return { ScheduleArn: Arn };
    },
    GetSchedule(input: GetScheduleInput) {
      const { ClientToken: _token, ...found } = schedule(input);
      return {
        ...found,
        State: found.State ?? 'ENABLED',
        CreationDate: new Date(0),
        LastModificationDate: new Date(0),
      };
    },
    UpdateSchedule(input: UpdateScheduleInput) {
      const existing = schedule(input);
      validate(input);
      schedules.set(key(input.GroupName, input.Name), {
        ...input,
        GroupName: existing.GroupName,
        Arn: existing.Arn,
      });
      return { ScheduleArn: existing.Arn };
    },
    DeleteSchedule(input: DeleteScheduleInput) {
      schedule(input);
      schedules.delete(key(input.GroupName, input.Name));
      return {};
    },
  });

  return { ...installed, schedules };
}
