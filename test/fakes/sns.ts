import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundException, ResourceNotFoundException, type SNSClient } from '@aws-sdk/client-sns';
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  MetadataBearer,
} from '@smithy/types';

// The emulator answers every SNS call on a missing topic with NotFound. SNS
// does not: ListTagsForResource answers ResourceNotFoundException
// (ResourceNotFound), GetTopicAttributes NotFoundException (NotFound), each
// as its API reference lists under Errors. This makes an SNS client that
// talks to the emulator get SNS's own answers.
//
// SNS answers two calls made at once in no fixed order (against moto, 7 of 11
// fresh ups that read attributes and tags together met the tags call's error
// first); here the attributes call's not-found comes last, the order that broke up.
const attributesNotFoundDelayMs = 50;

export function answerSnsErrorsAsDocumented(client: SNSClient): void {
  const documented =
    (next: InitializeHandler<object, MetadataBearer>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<object>) => {
      try {
        return await next(args);
      } catch (error) {
        if (!(error instanceof NotFoundException)) throw error;
        if (context.commandName === 'ListTagsForResourceCommand') {
          throw new ResourceNotFoundException({ message: error.message, $metadata: error.$metadata });
        }
        if (context.commandName === 'GetTopicAttributesCommand') await sleep(attributesNotFoundDelayMs);
        throw error;
      }
    };
  // low priority: inside the call recorder, which so sees SNS's answer
  client.middlewareStack.add(documented, {
    step: 'initialize',
    name: 'answerSnsErrorsAsDocumented',
    priority: 'low',
    override: true,
  });
}
