import {
  CreateEventSourceMappingCommand,
  DeleteEventSourceMappingCommand,
  type EventSourceMappingConfiguration,
  FunctionResponseType,
  GetEventSourceMappingCommand,
  ListEventSourceMappingsCommand,
  ListTagsCommand,
  ResourceConflictException,
  ResourceInUseException,
  ResourceNotFoundException,
  TagResourceCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { stepError } from '../../lib/errors.ts';
import { pollUntil, retryWhile } from '../../lib/poll.ts';
import {
  Action,
  type Ctx,
  diffFields,
  type FieldChange,
  isPlan,
  missingTags,
  pending,
  record,
} from '../../lib/reconcile.ts';
import { reportElapsed } from '../progress.ts';
import { type Tags, tagDrift } from '../tags.ts';

const kind = 'event source mapping';

// Lambda moves a mapping through Creating/Enabling/Updating before Enabled;
// there is no SDK waiter for it. A minute or two is typical.
const enabledTimeoutMs = 5 * 60_000;
// Updating or deleting a mapping that is still in a transitional state fails
// with ResourceInUseException (UpdateEventSourceMapping API); it clears quickly.
const busyTimeoutMs = 2 * 60_000;

export interface EventSourceInputs {
  functionName: string;
  queueArn: string;
}

export interface DesiredEventSource {
  functionName: string;
  queueArn: string;
  batchSize: number;
  maximumBatchingWindowInSeconds: number;
  // without it Lambda ignores the handler's batchItemFailures and retries the whole batch
  functionResponseTypes: FunctionResponseType[];
  maximumConcurrency: number;
  enabled: boolean;
  tags: Tags;
}

export interface LiveEventSource {
  uuid: string;
  arn: string | undefined;
  batchSize: number | undefined;
  maximumBatchingWindowInSeconds: number | undefined;
  functionResponseTypes: string[];
  maximumConcurrency: number | undefined;
  enabled: boolean;
  state: string | undefined;
  tags: Tags;
}

export function desiredEventSource(
  ctx: Pick<Ctx, 'config' | 'names'>,
  inputs: EventSourceInputs,
): DesiredEventSource {
  const { fn } = ctx.config;
  return {
    functionName: inputs.functionName,
    queueArn: inputs.queueArn,
    batchSize: fn.batchSize,
    maximumBatchingWindowInSeconds: fn.batchingWindowSeconds,
    functionResponseTypes: [FunctionResponseType.ReportBatchItemFailures],
    maximumConcurrency: fn.maxConcurrency,
    enabled: true,
    tags: ctx.names.tags,
  };
}

// the queue's name is the ARN's last part (arn:aws:sqs:region:account:name); a
// pending ARN in plan mode has none, and the name is the same either way
function mappingName(ctx: Ctx, inputs: EventSourceInputs): string {
  const queue = inputs.queueArn.startsWith('arn:') ? inputs.queueArn.split(':').pop() : ctx.names.queue;
  return `${inputs.functionName} ← ${queue}`;
}

function isEnabled(state: string | undefined): boolean {
  return state !== 'Disabled' && state !== 'Disabling';
}

async function listMapping(
  ctx: Ctx,
  inputs: EventSourceInputs,
): Promise<EventSourceMappingConfiguration | undefined> {
  try {
    const answer = await ctx.clients.lambda.send(
      new ListEventSourceMappingsCommand({
        FunctionName: inputs.functionName,
        EventSourceArn: inputs.queueArn,
      }),
    );
    return answer.EventSourceMappings?.find((m) => m.State !== 'Deleting');
  } catch (error) {
    // the function itself is absent: so is its mapping
    if (error instanceof ResourceNotFoundException) return undefined;
    throw stepError(
      `list the ${kind}s of ${inputs.functionName}`,
      error,
      'check lambda:ListEventSourceMappings permission',
    );
  }
}

export async function findEventSource(
  ctx: Ctx,
  inputs: EventSourceInputs,
): Promise<LiveEventSource | undefined> {
  const found = await listMapping(ctx, inputs);
  if (found?.UUID === undefined) return undefined;
  let tags: Tags = {};
  if (found.EventSourceMappingArn !== undefined) {
    try {
      const answer = await ctx.clients.lambda.send(
        new ListTagsCommand({ Resource: found.EventSourceMappingArn }),
      );
      tags = answer.Tags ?? {};
    } catch (error) {
      throw stepError(
        `read the tags of ${kind} ${found.UUID}`,
        error,
        'check lambda:ListTags permission on the mapping',
      );
    }
  }
  return {
    uuid: found.UUID,
    arn: found.EventSourceMappingArn,
    batchSize: found.BatchSize,
    maximumBatchingWindowInSeconds: found.MaximumBatchingWindowInSeconds,
    functionResponseTypes: found.FunctionResponseTypes ?? [],
    maximumConcurrency: found.ScalingConfig?.MaximumConcurrency,
    enabled: isEnabled(found.State),
    state: found.State,
    tags,
  };
}

export function eventSourceDrift(desired: DesiredEventSource, actual: LiveEventSource): FieldChange[] {
  const { functionName: _f, queueArn: _q, tags, ...managed } = desired;
  return [
    ...diffFields(managed, actual as unknown as Record<string, unknown>),
    // ListTags answers only once the mapping has an ARN (mappings created before tagging existed have none)
    ...(actual.arn === undefined ? [] : tagDrift(tags, actual.tags)),
  ];
}

export async function ensureEventSource(ctx: Ctx, inputs: EventSourceInputs): Promise<{ uuid: string }> {
  const desired = desiredEventSource(ctx, inputs);
  const name = mappingName(ctx, inputs);
  const actual = await findEventSource(ctx, inputs);
  if (actual === undefined) {
    record(ctx, { kind, name, action: Action.create });
    if (isPlan(ctx)) return { uuid: pending('event source mapping id') };
    const uuid = await createEventSource(ctx, desired);
    await waitEnabled(ctx, uuid);
    return { uuid };
  }
  const changes = eventSourceDrift(desired, actual);
  record(ctx, { kind, name, action: changes.length ? Action.update : Action.unchanged, fields: changes });
  if (isPlan(ctx)) return { uuid: actual.uuid };
  if (changes.some((c) => c.field !== 'tags')) {
    await retryWhile(
      () =>
        ctx.clients.lambda.send(
          new UpdateEventSourceMappingCommand({
            UUID: actual.uuid,
            BatchSize: desired.batchSize,
            MaximumBatchingWindowInSeconds: desired.maximumBatchingWindowInSeconds,
            FunctionResponseTypes: desired.functionResponseTypes,
            ScalingConfig: { MaximumConcurrency: desired.maximumConcurrency },
            Enabled: desired.enabled,
          }),
        ),
      (error) => error instanceof ResourceInUseException,
      { what: `${kind} ${actual.uuid} to settle`, timeoutMs: busyTimeoutMs },
    ).catch((error: unknown) => {
      throw stepError(
        `update ${kind} ${actual.uuid}`,
        error,
        'check lambda:UpdateEventSourceMapping permission',
      );
    });
  }
  const missing = missingTags(desired.tags, actual.tags);
  if (actual.arn !== undefined && Object.keys(missing).length > 0) {
    await ctx.clients.lambda
      .send(new TagResourceCommand({ Resource: actual.arn, Tags: missing }))
      .catch((error: unknown) => {
        throw stepError(
          `tag ${kind} ${actual.uuid}`,
          error,
          'check lambda:TagResource permission on the mapping',
        );
      });
  }
  if (changes.length > 0 || actual.state !== 'Enabled') await waitEnabled(ctx, actual.uuid);
  return { uuid: actual.uuid };
}

async function createEventSource(ctx: Ctx, desired: DesiredEventSource): Promise<string> {
  try {
    const created = await ctx.clients.lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: desired.functionName,
        EventSourceArn: desired.queueArn,
        BatchSize: desired.batchSize,
        MaximumBatchingWindowInSeconds: desired.maximumBatchingWindowInSeconds,
        FunctionResponseTypes: desired.functionResponseTypes,
        ScalingConfig: { MaximumConcurrency: desired.maximumConcurrency },
        Enabled: desired.enabled,
        Tags: desired.tags,
      }),
    );
    if (created.UUID === undefined) throw new Error('CreateEventSourceMapping returned no UUID');
    return created.UUID;
  } catch (error) {
    // ResourceConflictException: a mapping for this pair already exists (a concurrent run)
    if (error instanceof ResourceConflictException) {
      const existing = await listMapping(ctx, desired);
      if (existing?.UUID !== undefined) return existing.UUID;
    }
    throw stepError(
      `create ${kind} for ${desired.functionName}`,
      error,
      'check lambda:CreateEventSourceMapping and lambda:TagResource permissions and that the function role can read the queue',
    );
  }
}

async function waitEnabled(ctx: Ctx, uuid: string): Promise<void> {
  const what = `${kind} ${uuid} to become Enabled`;
  await pollUntil(
    async () => {
      const answer = await ctx.clients.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
      if (answer.State === 'Enabled') return true;
      if (answer.State === 'Disabled') {
        throw stepError(`enable ${kind} ${uuid}`, answer.StateTransitionReason ?? 'it is Disabled');
      }
      return undefined;
    },
    { what, timeoutMs: enabledTimeoutMs, intervalMs: 1_000, onProgress: reportElapsed(ctx.log, what) },
  );
}

export async function deleteEventSource(ctx: Ctx, inputs: EventSourceInputs): Promise<void> {
  const name = mappingName(ctx, inputs);
  const found = await listMapping(ctx, inputs);
  if (found?.UUID === undefined) {
    record(ctx, { kind, name, action: Action.absent });
    return;
  }
  const uuid = found.UUID;
  try {
    await retryWhile(
      () => ctx.clients.lambda.send(new DeleteEventSourceMappingCommand({ UUID: uuid })),
      (error) => error instanceof ResourceInUseException,
      { what: `${kind} ${uuid} to settle`, timeoutMs: busyTimeoutMs },
    );
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) {
      throw stepError(`delete ${kind} ${uuid}`, error, 'check lambda:DeleteEventSourceMapping permission');
    }
  }
  record(ctx, { kind, name, action: Action.delete });
  // the mapping keeps polling until it is gone: wait, so the queue is not deleted under it
  const what = `${kind} ${uuid} to be deleted`;
  await pollUntil(
    async () => {
      try {
        await ctx.clients.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
        return undefined;
      } catch (error) {
        if (error instanceof ResourceNotFoundException) return true;
        throw error;
      }
    },
    { what, timeoutMs: enabledTimeoutMs, intervalMs: 1_000, onProgress: reportElapsed(ctx.log, what) },
  );
}
