import { STSClient } from '@aws-sdk/client-sts';
import { type InstalledFake, installHandlers } from './calls.ts';

// STS as this project uses it: who is calling. The caller's ARN carries the
// partition (arn:<partition>:sts::<account>:assumed-role/...).

export interface StsFakeOptions {
  accountId?: string;
  partition?: string;
}

export interface StsFake extends InstalledFake {
  state: { accountId: string; arn: string };
}

export function installStsFake(options: StsFakeOptions = {}): StsFake {
  const accountId = options.accountId ?? '123456789012';
  const partition = options.partition ?? 'aws';
  const state = { accountId, arn: `arn:${partition}:sts::${accountId}:assumed-role/deployer/session` };
  const installed = installHandlers(STSClient, 'sts', {
    GetCallerIdentity: () => ({
      Account: state.accountId,
      Arn: state.arn,
      UserId: 'AROAEXAMPLE:session',
      $metadata: {},
    }),
  });
  return { state, restore: installed.restore };
}
