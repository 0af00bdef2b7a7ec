import {
  type GetResourcesInput,
  InvalidParameterException,
  ResourceGroupsTaggingAPIClient,
} from '@aws-sdk/client-resource-groups-tagging-api';
import { type InstalledFake, installHandlers } from './calls.ts';

// The Resource Groups Tagging API over the other fakes' state: each source
// lists the live resources of one fake with their tags, and GetResources
// answers the ones matching every tag filter (a filter's values are ORed, the
// filters ANDed, as the API documents).

export type TaggedSource = () => { arn: string; tags: Record<string, string> }[];

export interface TaggingFake extends InstalledFake {
  sources: TaggedSource[];
}

const metadata = { $metadata: {} };

export function installTaggingFake(sources: TaggedSource[] = []): TaggingFake {
  const installed = installHandlers(ResourceGroupsTaggingAPIClient, 'tagging', {
    GetResources(input: GetResourcesInput) {
      if ((input.TagFilters?.length ?? 0) > 50) {
        throw new InvalidParameterException({ message: 'at most 50 tag filters', ...metadata });
      }
      const matches = sources
        .flatMap((source) => source())
        .filter((resource) =>
          (input.TagFilters ?? []).every((filter) => {
            const value = resource.tags[filter.Key ?? ''];
            return (
              value !== undefined &&
              (filter.Values === undefined || filter.Values.length === 0 || filter.Values.includes(value))
            );
          }),
        );
      return {
        ResourceTagMappingList: matches.map((m) => ({
          ResourceARN: m.arn,
          Tags: Object.entries(m.tags).map(([Key, Value]) => ({ Key, Value })),
        })),
        PaginationToken: '',
      };
    },
  });
  return { ...installed, sources };
}
