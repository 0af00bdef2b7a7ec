import {
  type CreateRepositoryRequest,
  type DeleteRepositoryRequest,
  type DescribeImagesRequest,
  type DescribeRepositoriesRequest,
  ECRClient,
  type GetLifecyclePolicyRequest,
  type GetRepositoryPolicyRequest,
  type ImageIdentifier,
  ImageNotFoundException,
  InvalidParameterException,
  LifecyclePolicyNotFoundException,
  type ListTagsForResourceRequest,
  type PutImageScanningConfigurationRequest,
  type PutImageTagMutabilityRequest,
  type PutLifecyclePolicyRequest,
  RepositoryAlreadyExistsException,
  RepositoryNotEmptyException,
  RepositoryNotFoundException,
  RepositoryPolicyNotFoundException,
  type SetRepositoryPolicyRequest,
  type TagResourceRequest,
} from '@aws-sdk/client-ecr';
import { type InstalledFake, installHandlers } from './calls.ts';

// A stateful ECR control plane: repositories with their settings, lifecycle
// and repository policies, tags and images (seeded with `pushImage`, as a
// push goes through the registry API, not the SDK). `useRegistry` points it at
// a real local registry: repository URIs then name that registry, and
// GetAuthorizationToken hands out its Basic credentials, so a daemonless
// publish pushes there.

export interface FakeRegistry {
  // 127.0.0.1:PORT, plain HTTP
  host: string;
  username: string;
  password: string;
}

export interface FakeImage {
  digest: string;
  tags: string[];
}

export interface FakeRepository {
  name: string;
  arn: string;
  uri: string;
  imageTagMutability: string;
  scanOnPush: boolean;
  encryptionType: string;
  lifecyclePolicyText: string | undefined;
  policyText: string | undefined;
  tags: Map<string, string>;
  images: FakeImage[];
}

export interface EcrFake extends InstalledFake {
  repositories: Map<string, FakeRepository>;
  pushImage(repository: string, digest: string, tag?: string): void;
  useRegistry(registry: FakeRegistry): void;
  taggedResources(): { arn: string; tags: Record<string, string> }[];
}

const metadata = { $metadata: {} };

export function installEcrFake(options: { accountId?: string; region?: string } = {}): EcrFake {
  const accountId = options.accountId ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const repositories = new Map<string, FakeRepository>();
  let registry: FakeRegistry | undefined;

  function repository(name: string | undefined): FakeRepository {
    const found = repositories.get(name ?? '');
    if (found === undefined) {
      throw new RepositoryNotFoundException({
        message: `The repository with name '${name}' does not exist in the registry with id '${accountId}'`,
        ...metadata,
      });
    }
    return found;
  }

  function byArn(resourceArn: string | undefined): FakeRepository {
    const found = [...repositories.values()].find((r) => r.arn === resourceArn);
    if (found === undefined)
      throw new InvalidParameterException({ message: `Invalid resource ${resourceArn}`, ...metadata });
    return found;
  }

  function describe(r: FakeRepository) {
    return {
      repositoryArn: r.arn,
      registryId: accountId,
      repositoryName: r.name,
      repositoryUri: r.uri,
      createdAt: new Date(0),
      imageTagMutability: r.imageTagMutability,
      imageScanningConfiguration: { scanOnPush: r.scanOnPush },
      encryptionConfiguration: { encryptionType: r.encryptionType },
    };
  }

  function checkJson(text: string | undefined): string {
    try {
      JSON.parse(text ?? '');
    } catch {
      throw new InvalidParameterException({ message: 'Invalid parameter: policy is not JSON', ...metadata });
    }
    return text as string;
  }

  const installed = installHandlers(ECRClient, 'ecr', {
    CreateRepository(input: CreateRepositoryRequest) {
      const name = input.repositoryName ?? '';
      if (repositories.has(name)) {
        throw new RepositoryAlreadyExistsException({
          message: `The repository with name '${name}' already exists in the registry with id '${accountId}'`,
          ...metadata,
        });
      }
      const created: FakeRepository = {
        name,
        arn: `arn:aws:ecr:${region}:${accountId}:repository/${name}`,
        uri: `${registry?.host ?? `${accountId}.dkr.ecr.${region}.amazonaws.com`}/${name}`,
        imageTagMutability: input.imageTagMutability ?? 'MUTABLE',
        scanOnPush: input.imageScanningConfiguration?.scanOnPush ?? false,
        encryptionType: input.encryptionConfiguration?.encryptionType ?? 'AES256',
        lifecyclePolicyText: undefined,
        policyText: undefined,
        tags: new Map((input.tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
        images: [],
      };
      repositories.set(name, created);
      return { repository: describe(created) };
    },
    DescribeRepositories(input: DescribeRepositoriesRequest) {
      const names = input.repositoryNames ?? [...repositories.keys()];
      return { repositories: names.map((name) => describe(repository(name))) };
    },
    // the token is base64("AWS:<password>"), valid 12 hours, with the
    // registry's URL as proxyEndpoint (GetAuthorizationToken API reference)
    GetAuthorizationToken() {
      const pair = registry === undefined ? 'AWS:fake-password' : `${registry.username}:${registry.password}`;
      return {
        authorizationData: [
          {
            authorizationToken: Buffer.from(pair).toString('base64'),
            expiresAt: new Date(Date.now() + 12 * 3600 * 1000),
            proxyEndpoint:
              registry === undefined
                ? `https://${accountId}.dkr.ecr.${region}.amazonaws.com`
                : `http://${registry.host}`,
          },
        ],
      };
    },
    DescribeImages(input: DescribeImagesRequest) {
      const r = repository(input.repositoryName);
      const wanted: ImageIdentifier[] = input.imageIds ?? r.images.map((i) => ({ imageDigest: i.digest }));
      return {
        imageDetails: wanted.map((id) => {
          const image = r.images.find(
            (i) => i.digest === id.imageDigest || (id.imageTag !== undefined && i.tags.includes(id.imageTag)),
          );
          if (image === undefined) {
            throw new ImageNotFoundException({
              message: `The image with imageId {imageDigest:'${id.imageDigest}', imageTag:'${id.imageTag}'} does not exist within the repository with name '${r.name}'`,
              ...metadata,
            });
          }
          return {
            registryId: accountId,
            repositoryName: r.name,
            imageDigest: image.digest,
            imageTags: image.tags,
          };
        }),
      };
    },
    PutImageTagMutability(input: PutImageTagMutabilityRequest) {
      repository(input.repositoryName).imageTagMutability = input.imageTagMutability ?? 'MUTABLE';
      return {};
    },
    PutImageScanningConfiguration(input: PutImageScanningConfigurationRequest) {
      repository(input.repositoryName).scanOnPush = input.imageScanningConfiguration?.scanOnPush ?? false;
      return {};
    },
    GetLifecyclePolicy(input: GetLifecyclePolicyRequest) {
      const r = repository(input.repositoryName);
      if (r.lifecyclePolicyText === undefined) {
        throw new LifecyclePolicyNotFoundException({
          message: 'Lifecycle policy does not exist',
          ...metadata,
        });
      }
      return { repositoryName: r.name, registryId: accountId, lifecyclePolicyText: r.lifecyclePolicyText };
    },
    PutLifecyclePolicy(input: PutLifecyclePolicyRequest) {
      repository(input.repositoryName).lifecyclePolicyText = checkJson(input.lifecyclePolicyText);
      return {};
    },
    GetRepositoryPolicy(input: GetRepositoryPolicyRequest) {
      const r = repository(input.repositoryName);
      if (r.policyText === undefined) {
        throw new RepositoryPolicyNotFoundException({
          message: 'Repository policy does not exist',
          ...metadata,
        });
      }
      // ECR answers the policy pretty-printed, not as sent
      return {
        repositoryName: r.name,
        registryId: accountId,
        policyText: JSON.stringify(JSON.parse(r.policyText), null, 2),
      };
    },
    SetRepositoryPolicy(input: SetRepositoryPolicyRequest) {
      repository(input.repositoryName).policyText = checkJson(input.policyText);
      return {};
    },
    ListTagsForResource(input: ListTagsForResourceRequest) {
      return { tags: [...byArn(input.resourceArn).tags].map(([Key, Value]) => ({ Key, Value })) };
    },
    TagResource(input: TagResourceRequest) {
      const r = byArn(input.resourceArn);
      for (const tag of input.tags ?? []) r.tags.set(tag.Key ?? '', tag.Value ?? '');
      return {};
    },
    DeleteRepository(input: DeleteRepositoryRequest) {
      const r = repository(input.repositoryName);
      if (r.images.length > 0 && input.force !== true) {
        throw new RepositoryNotEmptyException({
          message: `The repository with name '${r.name}' cannot be deleted because it still contains images`,
          ...metadata,
        });
      }
      repositories.delete(r.name);
      return { repository: describe(r) };
    },
  });

  return {
    ...installed,
    repositories,
    pushImage(name, digest, tag) {
      const r = repository(name);
      r.images.push({ digest, tags: tag === undefined ? [] : [tag] });
    },
    useRegistry(target) {
      registry = target;
    },
    taggedResources: () =>
      [...repositories.values()].map((r) => ({ arn: r.arn, tags: Object.fromEntries(r.tags) })),
  };
}
