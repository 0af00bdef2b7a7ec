import {
  type CreateSecretRequest,
  type DeleteSecretRequest,
  InvalidRequestException,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  type Tag,
} from '@aws-sdk/client-secrets-manager';
import { type InstalledFake, installHandlers } from './calls.ts';

// Secrets Manager as provisioning uses it: create, describe, read, schedule a
// deletion (with a recovery window, or at once with ForceDeleteWithoutRecovery),
// restore. A secret scheduled for deletion keeps its name and ARN, shows a
// DeletedDate, and refuses GetSecretValue, as the service does. Secrets can be
// added directly to `state.secrets` (e.g. the RDS-managed master secret).

export interface FakeSecret {
  ARN: string;
  Name: string;
  SecretString?: string | undefined;
  Description?: string | undefined;
  Tags: Tag[];
  DeletedDate?: Date | undefined;
}

export interface SecretsManagerFake extends InstalledFake {
  state: { secrets: Map<string, FakeSecret> };
}

const metadata = { $metadata: {} };

export function installSecretsManagerFake(
  options: { accountId?: string; region?: string } = {},
): SecretsManagerFake {
  const accountId = options.accountId ?? '123456789012';
  const region = options.region ?? 'us-east-1';
  const secrets = new Map<string, FakeSecret>();
  const find = (secretId: string | undefined) => {
    const secret = [...secrets.values()].find((s) => s.Name === secretId || s.ARN === secretId);
    if (secret === undefined) {
      throw new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        ...metadata,
      });
    }
    return secret;
  };
  const installed = installHandlers(SecretsManagerClient, 'secretsmanager', {
    CreateSecret(input: CreateSecretRequest) {
      if ([...secrets.values()].some((s) => s.Name === input.Name)) {
        const existing = find(input.Name);
        // a name scheduled for deletion cannot be reused until it is gone (CreateSecret)
        if (existing.DeletedDate) {
          throw new InvalidRequestException({
            message: `You can't create this secret because a secret with this name is already scheduled for deletion.`,
            ...metadata,
          });
        }
        throw new ResourceExistsException({
          message: `The operation failed because the secret ${input.Name} already exists.`,
          ...metadata,
        });
      }
      // secret ARNs end with a random 6-character suffix
      const arn = `arn:aws:secretsmanager:${region}:${accountId}:secret:${input.Name}-${Math.random().toString(36).slice(2, 8)}`;
      secrets.set(arn, {
        ARN: arn,
        Name: input.Name ?? '',
        SecretString: input.SecretString,
        Description: input.Description,
        Tags: input.Tags ?? [],
      });
      return { ARN: arn, Name: input.Name, VersionId: 'v1', ...metadata };
    },
    DescribeSecret(input: { SecretId?: string }) {
      const { SecretString: _value, ...described } = find(input.SecretId);
      return { ...described, ...metadata };
    },
    GetSecretValue(input: { SecretId?: string }) {
      const secret = find(input.SecretId);
      if (secret.DeletedDate) {
        throw new InvalidRequestException({
          message: "You can't perform this operation on the secret because it was marked for deletion.",
          ...metadata,
        });
      }
      return { ARN: secret.ARN, Name: secret.Name, SecretString: secret.SecretString, ...metadata };
    },
    DeleteSecret(input: DeleteSecretRequest) {
      const secret = find(input.SecretId);
      if (input.ForceDeleteWithoutRecovery && input.RecoveryWindowInDays !== undefined) {
        throw new InvalidParameterCombination();
      }
      if (input.ForceDeleteWithoutRecovery) secrets.delete(secret.ARN);
      else secret.DeletedDate = new Date(Date.now() + (input.RecoveryWindowInDays ?? 30) * 86_400_000);
      return {
        ARN: secret.ARN,
        Name: secret.Name,
        DeletionDate: secret.DeletedDate ?? new Date(),
        ...metadata,
      };
    },
    RestoreSecret(input: { SecretId?: string }) {
      const secret = find(input.SecretId);
      secret.DeletedDate = undefined;
      return { ARN: secret.ARN, Name: secret.Name, ...metadata };
    },
  });
  return { state: { secrets }, restore: installed.restore };
}

class InvalidParameterCombination extends InvalidRequestException {
  constructor() {
    super({
      message: 'You cannot use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.',
      ...metadata,
    });
  }
}
