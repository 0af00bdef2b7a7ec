import {
  CloudWatchClient,
  DashboardInvalidInputError,
  DashboardNotFoundError,
  type DeleteAlarmsInput,
  type DeleteDashboardsInput,
  type DescribeAlarmsInput,
  type DescribeAlarmsOutput,
  type GetDashboardInput,
  InvalidParameterCombinationException,
  InvalidParameterValueException,
  type ListTagsForResourceInput,
  type MetricAlarm,
  MissingRequiredParameterException,
  type PutDashboardInput,
  type PutMetricAlarmInput,
  ResourceNotFoundException,
  type TagResourceInput,
} from '@aws-sdk/client-cloudwatch';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful CloudWatch control plane for the alarm and dashboard resources:
// what is put can be described, a second put replaces the definition, tags are
// applied on create only (as PutMetricAlarm documents), and deletes behave like
// the service (DeleteAlarms skips unknown names; DeleteDashboards does not).

export interface CloudWatchFakeOptions {
  accountId?: string;
  region?: string;
}

export interface CloudWatchFake extends InstalledFake {
  alarms: Map<string, MetricAlarm>;
  // by resource ARN
  tags: Map<string, Map<string, string>>;
  dashboards: Map<string, string>;
}

const metadata = { $metadata: {} };

// DescribeAlarms pages: MaxRecords 1-100, default 50 (DescribeAlarms API reference)
const defaultPage = 50;

export function installCloudWatchFake(options: CloudWatchFakeOptions = {}): CloudWatchFake {
  const accountId = options.accountId ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const alarms = new Map<string, MetricAlarm>();
  const tags = new Map<string, Map<string, string>>();
  const dashboards = new Map<string, string>();
  const alarmArn = (name: string) => `arn:aws:cloudwatch:${region}:${accountId}:alarm:${name}`;

  const installed = installHandlers(CloudWatchClient, 'cloudwatch', {
    PutMetricAlarm(input: PutMetricAlarmInput) {
      const name = input.AlarmName;
      if (!name)
        throw new MissingRequiredParameterException({ message: 'AlarmName is required', ...metadata });
      if (input.EvaluationPeriods === undefined || input.ComparisonOperator === undefined) {
        throw new MissingRequiredParameterException({
          message: 'EvaluationPeriods and ComparisonOperator are required',
          ...metadata,
        });
      }
      if (input.Statistic !== undefined && input.ExtendedStatistic !== undefined) {
        throw new InvalidParameterCombinationException({
          message: 'Statistic and ExtendedStatistic are mutually exclusive',
          ...metadata,
        });
      }
      if (
        input.Metrics === undefined &&
        input.Statistic === undefined &&
        input.ExtendedStatistic === undefined
      ) {
        throw new MissingRequiredParameterException({
          message: 'Statistic or ExtendedStatistic is required',
          ...metadata,
        });
      }
      if ((input.AlarmDescription?.length ?? 0) > 1024) {
        throw new InvalidParameterValueException({
          message: 'AlarmDescription exceeds 1024 characters',
          ...metadata,
        });
      }
      if ((input.DatapointsToAlarm ?? 1) > input.EvaluationPeriods) {
        throw new InvalidParameterValueException({
          message: 'DatapointsToAlarm must not exceed EvaluationPeriods',
          ...metadata,
        });
      }
      const existing = alarms.get(name);
      const { Tags, ...definition } = input;
      alarms.set(name, {
        ...definition,
        AlarmArn: alarmArn(name),
        ActionsEnabled: input.ActionsEnabled ?? true,
        AlarmActions: input.AlarmActions ?? [],
        OKActions: input.OKActions ?? [],
        InsufficientDataActions: input.InsufficientDataActions ?? [],
        AlarmConfigurationUpdatedTimestamp: new Date(),
        StateValue: existing?.StateValue ?? 'INSUFFICIENT_DATA',
        StateReason: existing?.StateReason ?? 'Unchecked: Initial alarm creation',
        StateUpdatedTimestamp: existing?.StateUpdatedTimestamp ?? new Date(),
      });
      // Tags given to PutMetricAlarm apply only when it creates the alarm
      if (existing === undefined) {
        tags.set(alarmArn(name), new Map((Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])));
      }
      return { ...metadata };
    },

    DescribeAlarms(input: DescribeAlarmsInput): DescribeAlarmsOutput {
      if (input.AlarmNames !== undefined && input.AlarmNamePrefix !== undefined) {
        throw new InvalidParameterCombinationException({
          message: 'AlarmNames and AlarmNamePrefix are mutually exclusive',
          ...metadata,
        });
      }
      const types = input.AlarmTypes ?? ['MetricAlarm'];
      const pageSize = input.MaxRecords ?? defaultPage;
      if (pageSize < 1 || pageSize > 100) {
        throw new InvalidParameterValueException({ message: 'MaxRecords must be 1-100', ...metadata });
      }
      const matching = types.includes('MetricAlarm')
        ? [...alarms.values()]
            .filter((a) => input.AlarmNames === undefined || input.AlarmNames.includes(a.AlarmName ?? ''))
            .filter(
              (a) => input.AlarmNamePrefix === undefined || a.AlarmName?.startsWith(input.AlarmNamePrefix),
            )
            .filter((a) => input.StateValue === undefined || a.StateValue === input.StateValue)
            .sort((a, b) => (a.AlarmName ?? '').localeCompare(b.AlarmName ?? ''))
        : [];
      const start = input.NextToken === undefined ? 0 : Number(input.NextToken);
      const page = matching.slice(start, start + pageSize);
      const next = start + pageSize < matching.length ? String(start + pageSize) : undefined;
      return { MetricAlarms: page, CompositeAlarms: [], ...(next === undefined ? {} : { NextToken: next }) };
    },

    DeleteAlarms(input: DeleteAlarmsInput) {
      if ((input.AlarmNames?.length ?? 0) > 100) {
        throw new InvalidParameterValueException({
          message: 'at most 100 alarm names per call',
          ...metadata,
        });
      }
      // unknown names are skipped and the others are still deleted (DeleteAlarms API reference)
      for (const name of input.AlarmNames ?? []) {
        if (alarms.delete(name)) tags.delete(alarmArn(name));
      }
      return { ...metadata };
    },

    ListTagsForResource(input: ListTagsForResourceInput) {
      const found = tags.get(input.ResourceARN ?? '');
      if (found === undefined) {
        throw new ResourceNotFoundException({ message: `${input.ResourceARN} does not exist`, ...metadata });
      }
      return { Tags: [...found].map(([Key, Value]) => ({ Key, Value })) };
    },

    TagResource(input: TagResourceInput) {
      const found = tags.get(input.ResourceARN ?? '');
      if (found === undefined) {
        throw new ResourceNotFoundException({ message: `${input.ResourceARN} does not exist`, ...metadata });
      }
      for (const tag of input.Tags ?? []) found.set(tag.Key ?? '', tag.Value ?? '');
      return { ...metadata };
    },

    PutDashboard(input: PutDashboardInput) {
      let body: unknown;
      try {
        body = JSON.parse(input.DashboardBody ?? '');
      } catch {
        throw new DashboardInvalidInputError({
          message: 'The dashboard body is not valid JSON',
          ...metadata,
        });
      }
      if (!Array.isArray((body as { widgets?: unknown }).widgets)) {
        throw new DashboardInvalidInputError({
          message: 'The dashboard body must have a widgets array',
          ...metadata,
        });
      }
      dashboards.set(input.DashboardName ?? '', input.DashboardBody ?? '');
      return { DashboardValidationMessages: [] };
    },

    GetDashboard(input: GetDashboardInput) {
      const body = dashboards.get(input.DashboardName ?? '');
      if (body === undefined) {
        throw new DashboardNotFoundError({ message: 'Dashboard does not exist', ...metadata });
      }
      return {
        DashboardName: input.DashboardName,
        DashboardArn: `arn:aws:cloudwatch::${accountId}:dashboard/${input.DashboardName}`,
        DashboardBody: body,
      };
    },

    DeleteDashboards(input: DeleteDashboardsInput) {
      const missing = (input.DashboardNames ?? []).filter((name) => !dashboards.has(name));
      for (const name of input.DashboardNames ?? []) dashboards.delete(name);
      if (missing.length > 0) {
        throw new DashboardNotFoundError({
          message: `Dashboards do not exist: ${missing.join(', ')}`,
          ...metadata,
        });
      }
      return { ...metadata };
    },
  });

  return { alarms, tags, dashboards, restore: installed.restore };
}
