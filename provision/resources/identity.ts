import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { stepError } from '../../lib/errors.ts';
import type { Identity } from '../../lib/names.ts';

// Who we are deploying as. The partition comes from the caller's ARN
// (arn:<partition>:sts::<account>:...), so names and policies built from it
// are right in aws-cn and aws-us-gov too, not only in `aws`.
export async function resolveIdentity(sts: STSClient, region: string): Promise<Identity> {
  let caller: { Account?: string | undefined; Arn?: string | undefined };
  try {
    caller = await sts.send(new GetCallerIdentityCommand({}));
  } catch (error) {
    throw stepError(
      'identify the AWS caller (sts:GetCallerIdentity)',
      error,
      'check that credentials are configured: AWS_PROFILE, aws sso login, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
    );
  }
  const partition = parsePartition(caller.Arn);
  if (caller.Account === undefined || partition === undefined) {
    throw stepError(
      'identify the AWS caller',
      new Error(`GetCallerIdentity returned account ${caller.Account} and ARN ${caller.Arn}`),
      'the STS endpoint answered without an account or ARN; check AWS_ENDPOINT_URL_STS',
    );
  }
  return { accountId: caller.Account, region, partition };
}

export function parsePartition(arn: string | undefined): string | undefined {
  const parts = arn?.split(':');
  if (parts === undefined || parts.length < 6 || parts[0] !== 'arn' || parts[1] === '') return undefined;
  return parts[1];
}
