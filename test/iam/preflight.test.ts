import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createClients, destroyClients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import { PolicyFile } from '../../lib/policy-files.ts';
import { type Emulator, emulatorCredentials, startEmulator } from '../../local/emulator.ts';
import { runUp } from '../../provision/up.ts';
import { callNames, mutatingCalls, recordEmulatorCalls, resetCalls } from '../fakes/calls.ts';
import { type FakeAws, installFakeAws } from '../fakes/index.ts';
import { collectingLog } from '../provision/context.ts';
import type { Scope } from '../support/iam/actions.ts';
import { denyActions } from '../support/iam/deny.ts';
import type { PolicyDocument } from '../support/iam/evaluate.ts';
import { addDeployerRole, policyFile, stackScope } from '../support/iam/principals.ts';

// up and up --plan ask IAM first (iam:SimulatePrincipalPolicy, provision/preflight.ts)
// whether the caller may make every request of docs/deployer-policy.json on
// this stack: on the fakes, whose IAM answers the simulation from the deploy
// role's own policy with the same evaluator as the other IAM tests.

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const stage = `pre${process.pid % 1000}`;
const stack = stackScope(scope, stage);
const fast = { minDelaySeconds: 0.01, maxDelaySeconds: 0.02, maxWaitSeconds: 5, progressEveryMs: 5 };

// the deployer policy without one action of one statement
function without(sid: string, action: string): PolicyDocument {
  const document = policyFile(PolicyFile.deployer, stack);
  return {
    ...document,
    Statement: document.Statement.flatMap((statement) => {
      if (statement.Sid !== sid) return [statement];
      const actions = [statement.Action ?? []].flat().filter((a) => a !== action);
      assert.ok(actions.length < [statement.Action ?? []].flat().length, `${sid} grants ${action}`);
      return actions.length === 0 ? [] : [{ ...statement, Action: actions }];
    }),
  };
}

describe('the permission check before a run', () => {
  let emulator: Emulator;
  let aws: FakeAws;

  before(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  after(async () => {
    await emulator?.stop();
  });
  beforeEach(() => {
    aws?.restore();
    aws = installFakeAws({ accountId: scope.accountId, region: scope.region });
  });
  after(() => aws?.restore());

  async function up(run: { planOnly: boolean; yes: boolean; json?: boolean; err?: (text: string) => void }) {
    const loaded = loadDeployConfig({
      AWS_REGION: scope.region,
      AWS_ENDPOINT_URL_S3: emulator.endpoint,
      AWS_ENDPOINT_URL_SNS: emulator.endpoint,
      AWS_ENDPOINT_URL_SQS: emulator.endpoint,
      STAGE: stage,
    });
    const config = { ...loaded, aws: { ...loaded.aws, credentials: emulatorCredentials } };
    const clients = createClients(config.aws);
    recordEmulatorCalls(clients);
    const log = { ...collectingLog(), done: () => undefined };
    const out: string[] = [];
    resetCalls();
    try {
      const imageUri = `${scope.accountId}.dkr.ecr.${scope.region}.amazonaws.com/ada-linecount-${stage}@sha256:${'5'.repeat(64)}`;
      const code = await runUp(config, clients, log, {
        json: false,
        ...run,
        imageUri,
        provision: {
          network: { waits: { ...fast, dependencyTimeoutSeconds: 1 } },
          cache: { waits: fast },
          database: { waits: fast },
        },
        out: (text) => out.push(text),
      });
      // the simulation itself changes nothing
      const changed = callNames(mutatingCalls()).filter((call) => call !== 'iam:SimulatePrincipalPolicy');
      return { code, out: out.join(''), log: log.lines, changed };
    } finally {
      destroyClients(clients);
    }
  }

  test('a deployer missing exactly one permission is told which one, and up --plan stops there', async () => {
    addDeployerRole(aws.iam, stack, without('CreateVpc', 'ec2:CreateVpc'));
    const result = await up({ planOnly: true, yes: false });
    assert.equal(result.code, 1);
    const denials = result.out
      .split('\n')
      .filter((line) => / on arn:.*: (implicitDeny|explicitDeny)/.test(line));
    assert.deepEqual(denials.length, 1, result.out);
    assert.match(
      denials[0] ?? '',
      /^ {2}ec2:CreateVpc on arn:aws:ec2:us-east-1:000000000000:vpc\/\* with aws:RequestTag\/app=ada-linecount aws:RequestTag\/stage=pre\d+: implicitDeny$/,
    );
    assert.match(result.out, /add statement CreateVpc of docs\/deployer-policy\.json/);
    assert.match(
      result.out,
      /\{"Sid":"CreateVpc","Effect":"Allow","Action":"ec2:CreateVpc","Resource":"arn:aws:ec2:us-east-1:000000000000:vpc\/\*"/,
    );
    assert.deepEqual(result.changed, []);
    assert.ok(result.log.includes('nothing was created or changed'));
  });

  test('up --yes runs the same check first and stops before its first change', async () => {
    addDeployerRole(aws.iam, stack, without('RolesWithBoundary', 'iam:PutRolePermissionsBoundary'));
    const result = await up({ planOnly: false, yes: true });
    assert.equal(result.code, 1);
    assert.match(
      result.out,
      /iam:PutRolePermissionsBoundary on arn:aws:iam::000000000000:role\/ada-linecount-pre\d+-function with iam:PermissionsBoundary=arn:aws:iam::000000000000:policy\/ada-linecount-boundary: implicitDeny/,
    );
    assert.match(result.out, /add statement RolesWithBoundary/);
    assert.deepEqual(result.changed, []);
    assert.equal(aws.ec2.state.vpcs.size, 0, 'no VPC was created');
  });

  test('with --json, the report goes to stderr and stdout stays empty', async () => {
    addDeployerRole(aws.iam, stack, without('CreateVpc', 'ec2:CreateVpc'));
    const err: string[] = [];
    const result = await up({ planOnly: true, yes: false, json: true, err: (text) => err.push(text) });
    assert.equal(result.code, 1);
    assert.equal(result.out, '');
    assert.match(err.join(''), /ec2:CreateVpc on arn:aws:ec2:us-east-1:000000000000:vpc\/\*/);
  });

  test('with the whole deployer policy nothing is missing, and up goes on', async () => {
    addDeployerRole(aws.iam, stack, policyFile(PolicyFile.deployer, stack));
    const result = await up({ planOnly: true, yes: false });
    assert.equal(result.code, 0, result.out);
    assert.ok(
      result.log.some((line) =>
        /^permissions checked: arn:aws:iam::000000000000:role\/deployer may make the \d+ requests up needs$/.test(
          line,
        ),
      ),
      result.log.join('\n'),
    );
  });

  test('a caller that may not simulate its own policies is told so in one line, and up goes on', async () => {
    addDeployerRole(aws.iam, stack, policyFile(PolicyFile.deployer, stack));
    const allow = denyActions(scope, ['iam:SimulatePrincipalPolicy']);
    try {
      const result = await up({ planOnly: true, yes: false });
      assert.equal(result.code, 0, result.out);
      const warnings = result.log.filter((line) => line.startsWith('warning: permissions not checked'));
      assert.deepEqual(warnings, [
        'warning: permissions not checked before the run: arn:aws:iam::000000000000:role/deployer may not call iam:SimulatePrincipalPolicy on itself (statement CheckOwnPermissions of docs/deployer-policy.json)',
      ]);
    } finally {
      allow();
    }
  });

  test('a caller IAM does not know (a role with a path) is told so, and up goes on', async () => {
    const result = await up({ planOnly: true, yes: false });
    assert.equal(result.code, 0, result.out);
    assert.ok(
      result.log.some((line) =>
        /^warning: permissions not checked before the run: IAM does not know arn:aws:iam::000000000000:role\/deployer/.test(
          line,
        ),
      ),
      result.log.join('\n'),
    );
  });
});
