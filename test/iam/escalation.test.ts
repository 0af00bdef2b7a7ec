import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Context, Scope } from '../support/iam/actions.ts';
import { isAllowed, type PolicyDocument, type Principal } from '../support/iam/evaluate.ts';
import {
  boundaryDocument,
  deployer,
  operator,
  rolePrincipal,
  stackScope,
} from '../support/iam/principals.ts';

// What the policies forbid, decided by the IAM policy evaluator: the deployer
// cannot escalate beyond the stack or reach another stack's resources, and a
// role the deployer writes can never exceed the permissions boundary, whatever
// its own policy says. The "nothing needed is denied" half is in
// deployer.test.ts, function.test.ts and generator.test.ts.

const scope: Scope = { partition: 'aws', region: 'us-east-1', accountId: '000000000000' };
const stack = stackScope(scope, 'dev');
const { region, accountId } = scope;
const boundary = `arn:aws:iam::${accountId}:policy/ada-linecount-boundary`;
const role = (name: string) => `arn:aws:iam::${accountId}:role/${name}`;
const ours = { 'aws:ResourceTag/app': 'ada-linecount', 'aws:ResourceTag/stage': 'dev' };
const theirs = { 'aws:ResourceTag/app': 'payroll', 'aws:ResourceTag/stage': 'prod' };
const anotherStage = { 'aws:ResourceTag/app': 'ada-linecount', 'aws:ResourceTag/stage': 'prod' };

async function allowed(principal: Principal, action: string, resource: string, context: Context = {}) {
  return isAllowed(principal, action, resource, context);
}

describe('the deployer cannot escalate', () => {
  const principal = deployer(stack);
  const withBoundary = { 'iam:PermissionsBoundary': boundary };

  test('it creates a role only with the boundary, and only with the stack’s name', async () => {
    const name = role('ada-linecount-dev-function');
    assert.equal(await allowed(principal, 'iam:CreateRole', name, withBoundary), true);
    assert.equal(await allowed(principal, 'iam:CreateRole', name), false, 'without a boundary');
    assert.equal(
      await allowed(principal, 'iam:CreateRole', name, {
        'iam:PermissionsBoundary': `arn:aws:iam::${accountId}:policy/wide-open`,
      }),
      false,
      'with another boundary',
    );
    assert.equal(await allowed(principal, 'iam:CreateRole', role('payroll-admin'), withBoundary), false);
    assert.equal(
      await allowed(principal, 'iam:CreateRole', role('ada-linecount-prod-function'), withBoundary),
      false,
    );
  });

  test('it may not remove or replace a role’s boundary, nor edit the boundary itself', async () => {
    const name = role('ada-linecount-dev-function');
    assert.equal(await allowed(principal, 'iam:DeleteRolePermissionsBoundary', name, withBoundary), false);
    assert.equal(
      await allowed(principal, 'iam:PutRolePermissionsBoundary', name, {
        'iam:PermissionsBoundary': `arn:aws:iam::${accountId}:policy/wide-open`,
      }),
      false,
    );
    assert.equal(await allowed(principal, 'iam:PutRolePermissionsBoundary', name, withBoundary), true);
    for (const action of [
      'iam:CreatePolicyVersion',
      'iam:SetDefaultPolicyVersion',
      'iam:DeletePolicyVersion',
      'iam:DeletePolicy',
      'iam:CreatePolicy',
    ]) {
      assert.equal(await allowed(principal, action, boundary), false, action);
    }
  });

  test('it changes a role’s policies and trust only on the stack’s roles that carry the boundary', async () => {
    for (const action of [
      'iam:PutRolePolicy',
      'iam:AttachRolePolicy',
      'iam:DeleteRolePolicy',
      'iam:UpdateAssumeRolePolicy',
    ]) {
      assert.equal(
        await allowed(principal, action, role('payroll-admin'), withBoundary),
        false,
        `${action} on a role outside the stack`,
      );
      assert.equal(
        await allowed(principal, action, role('ada-linecount-dev-function')),
        false,
        `${action} on a stack role without the boundary`,
      );
    }
    assert.equal(
      await allowed(principal, 'iam:PutRolePolicy', role('ada-linecount-dev-function'), withBoundary),
      true,
    );
    assert.equal(
      await allowed(principal, 'iam:AttachRolePolicy', role('ada-linecount-dev-function'), withBoundary),
      false,
      'up never attaches managed policies',
    );
  });

  test('it passes the stack’s roles only to their own service, and no other role', async () => {
    const pass = (name: string, service: string) =>
      allowed(principal, 'iam:PassRole', role(name), { 'iam:PassedToService': service });
    assert.equal(await pass('ada-linecount-dev-function', 'ec2.amazonaws.com'), false);
    assert.equal(await pass('ada-linecount-dev-function', 'ecs-tasks.amazonaws.com'), false);
    assert.equal(await pass('ada-linecount-dev-scheduler', 'lambda.amazonaws.com'), false);
    assert.equal(await pass('ada-linecount-dev-generator', 'lambda.amazonaws.com'), false);
    assert.equal(await pass('payroll-admin', 'lambda.amazonaws.com'), false);
    assert.equal(await pass('ada-linecount-prod-function', 'lambda.amazonaws.com'), false);
  });

  test('it reads no secret but its cache token: not another application’s, not the database’s', async () => {
    const secret = (name: string) => `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}`;
    assert.equal(
      await allowed(principal, 'secretsmanager:GetSecretValue', secret('payroll/db-AbCdEf')),
      false,
    );
    assert.equal(
      await allowed(
        principal,
        'secretsmanager:GetSecretValue',
        secret('ada-linecount-prod/cache-auth-AbCdEf'),
      ),
      false,
    );
    assert.equal(
      await allowed(principal, 'secretsmanager:GetSecretValue', secret('rds!db-0a1b2c3d-AbCdEf'), {
        'aws:ResourceTag/aws:rds:primaryDBInstanceArn': `arn:aws:rds:${region}:${accountId}:db:ada-linecount-dev-db`,
      }),
      false,
      'the RDS master secret of its own stack',
    );
    for (const action of ['secretsmanager:DeleteSecret', 'secretsmanager:PutSecretValue']) {
      assert.equal(await allowed(principal, action, secret('payroll/db-AbCdEf')), false, action);
    }
    assert.equal(
      await allowed(
        principal,
        'secretsmanager:GetSecretValue',
        secret('ada-linecount-dev/cache-auth-AbCdEf'),
      ),
      true,
    );
  });

  test('it deletes or modifies no other stack’s database, cache or network', async () => {
    const rds = (id: string) => `arn:aws:rds:${region}:${accountId}:db:${id}`;
    const cache = (id: string) => `arn:aws:elasticache:${region}:${accountId}:replicationgroup:${id}`;
    for (const action of ['rds:DeleteDBInstance', 'rds:ModifyDBInstance']) {
      assert.equal(await allowed(principal, action, rds('payroll-prod-db')), false, action);
      assert.equal(
        await allowed(principal, action, rds('ada-linecount-prod-db')),
        false,
        `${action} of another stage`,
      );
      assert.equal(
        await allowed(principal, action, rds('ada-linecount-dev-db')),
        true,
        `${action} of its own`,
      );
    }
    for (const action of ['elasticache:DeleteReplicationGroup', 'elasticache:ModifyReplicationGroup']) {
      assert.equal(await allowed(principal, action, cache('payroll-cache')), false, action);
      assert.equal(await allowed(principal, action, cache('ada-linecount-prod-cache')), false, action);
    }
    const ec2 = (type: string) =>
      `arn:aws:ec2:${region}:${accountId}:${type}/${type.slice(0, 3)}-0123456789abcdef0`;
    for (const [action, type] of [
      ['ec2:DeleteVpc', 'vpc'],
      ['ec2:ModifyVpcAttribute', 'vpc'],
      ['ec2:DeleteSubnet', 'subnet'],
      ['ec2:DeleteSecurityGroup', 'security-group'],
      ['ec2:AuthorizeSecurityGroupIngress', 'security-group'],
      ['ec2:RevokeSecurityGroupIngress', 'security-group'],
      ['ec2:RevokeSecurityGroupEgress', 'security-group'],
      ['ec2:DeleteRouteTable', 'route-table'],
      ['ec2:DeleteVpcEndpoints', 'vpc-endpoint'],
    ] as const) {
      assert.equal(await allowed(principal, action, ec2(type), theirs), false, `${action}, another app`);
      assert.equal(
        await allowed(principal, action, ec2(type), anotherStage),
        false,
        `${action}, another stage`,
      );
      assert.equal(await allowed(principal, action, ec2(type)), false, `${action}, untagged`);
      assert.equal(await allowed(principal, action, ec2(type), ours), true, `${action}, its own`);
    }
  });

  test('it creates network resources only tagged as the stack’s, and tags nothing afterwards', async () => {
    const created = `arn:aws:ec2:${region}:${accountId}:vpc/*`;
    const tags = { 'aws:RequestTag/app': 'ada-linecount', 'aws:RequestTag/stage': 'dev' };
    assert.equal(await allowed(principal, 'ec2:CreateVpc', created, tags), true);
    assert.equal(await allowed(principal, 'ec2:CreateVpc', created), false, 'untagged');
    assert.equal(
      await allowed(principal, 'ec2:CreateTags', created, { ...tags, 'ec2:CreateAction': 'CreateVpc' }),
      true,
    );
    // tagging someone else's VPC as the stack's would hand it to the deployer
    assert.equal(
      await allowed(
        principal,
        'ec2:CreateTags',
        `arn:aws:ec2:${region}:${accountId}:vpc/vpc-0123456789abcdef0`,
        {
          ...tags,
          ...theirs,
        },
      ),
      false,
    );
  });

  test('it deletes the GitHub OIDC provider only when up.ts created it, and tags it only with its own usage', async () => {
    const provider = `arn:aws:iam::${accountId}:oidc-provider/token.actions.githubusercontent.com`;
    assert.equal(await allowed(principal, 'iam:DeleteOpenIDConnectProvider', provider), false, 'not ours');
    assert.equal(
      await allowed(principal, 'iam:DeleteOpenIDConnectProvider', provider, {
        'aws:ResourceTag/managed-by': 'ada-linecount',
      }),
      true,
    );
    assert.equal(
      await allowed(principal, 'iam:UntagOpenIDConnectProvider', provider, {
        'aws:ResourceTag/managed-by': 'ada-linecount',
        'aws:TagKeys': ['used-by:ada-linecount-prod'],
      }),
      false,
      'another stack’s usage',
    );
    assert.equal(await allowed(principal, 'iam:UpdateOpenIDConnectProviderThumbprint', provider), false);
    assert.equal(await allowed(principal, 'iam:AddClientIDToOpenIDConnectProvider', provider), false);
  });

  test('it may simulate its own permissions only', async () => {
    assert.equal(await allowed(principal, 'iam:SimulatePrincipalPolicy', role('deployer')), true);
    assert.equal(await allowed(principal, 'iam:SimulatePrincipalPolicy', role('payroll-admin')), false);
  });

  test('the operator reads its own stack’s secrets and nothing of another', async () => {
    const ops = operator(stack);
    const secret = (name: string) => `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}`;
    const db = (id: string) => ({
      'aws:ResourceTag/aws:rds:primaryDBInstanceArn': `arn:aws:rds:${region}:${accountId}:db:${id}`,
    });
    assert.equal(
      await allowed(
        ops,
        'secretsmanager:GetSecretValue',
        secret('rds!db-1-AbCdEf'),
        db('ada-linecount-dev-db'),
      ),
      true,
    );
    assert.equal(
      await allowed(ops, 'secretsmanager:GetSecretValue', secret('rds!db-2-AbCdEf'), db('payroll-db')),
      false,
    );
    assert.equal(await allowed(ops, 'secretsmanager:GetSecretValue', secret('payroll/db-AbCdEf')), false);
    assert.equal(
      await allowed(ops, 'secretsmanager:GetSecretValue', secret('ada-linecount-prod/cache-auth-AbCdEf')),
      false,
    );
  });
});

describe('the permissions boundary caps every role the deployer writes', () => {
  // what a deployer bent on escalation would give a stack role
  const everything: PolicyDocument = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
  };
  const capped = (name: string) =>
    rolePrincipal(
      `a stack role with *:*`,
      role(`ada-linecount-dev-${name}`),
      'everything',
      everything,
      boundaryDocument(stack),
    );

  test('a role given *:* still cannot touch IAM, another application’s data, or anything outside the app', async () => {
    const principal = capped('function');
    for (const [action, resource] of [
      ['iam:CreateUser', `arn:aws:iam::${accountId}:user/intruder`],
      ['iam:PutRolePolicy', role('ada-linecount-dev-function')],
      ['iam:AttachRolePolicy', role('payroll-admin')],
      ['sts:AssumeRole', role('payroll-admin')],
      ['s3:GetObject', 'arn:aws:s3:::payroll-prod/ledger.csv'],
      ['s3:PutBucketPolicy', 'arn:aws:s3:::ada-linecount-dev-000000000000-us-east-1'],
      ['s3:DeleteObject', 'arn:aws:s3:::ada-linecount-dev-000000000000-us-east-1/uploads/a.csv'],
      [
        'secretsmanager:GetSecretValue',
        `arn:aws:secretsmanager:${region}:${accountId}:secret:payroll/db-AbCdEf`,
      ],
      ['rds:DeleteDBInstance', `arn:aws:rds:${region}:${accountId}:db:ada-linecount-dev-db`],
      ['ec2:RunInstances', `arn:aws:ec2:${region}:${accountId}:instance/*`],
      ['lambda:InvokeFunction', `arn:aws:lambda:${region}:${accountId}:function:payroll-run`],
      ['sqs:SendMessage', `arn:aws:sqs:${region}:${accountId}:payroll-jobs`],
    ] as const) {
      assert.equal(await allowed(principal, action, resource), false, `${action} on ${resource}`);
    }
    // within the boundary, the role's own policy decides
    assert.equal(
      await allowed(
        principal,
        's3:GetObject',
        'arn:aws:s3:::ada-linecount-dev-000000000000-us-east-1/uploads/a.csv',
      ),
      true,
    );
  });

  test('only the migration role may read an app database’s master secret', async () => {
    const secret = `arn:aws:secretsmanager:${region}:${accountId}:secret:rds!db-0a1b2c3d-AbCdEf`;
    const tag = {
      'aws:ResourceTag/aws:rds:primaryDBInstanceArn': `arn:aws:rds:${region}:${accountId}:db:ada-linecount-dev-db`,
    };
    assert.equal(await allowed(capped('migrate'), 'secretsmanager:GetSecretValue', secret, tag), true);
    for (const name of ['function', 'scheduler', 'generator']) {
      assert.equal(await allowed(capped(name), 'secretsmanager:GetSecretValue', secret, tag), false, name);
    }
    assert.equal(
      await allowed(capped('migrate'), 'secretsmanager:GetSecretValue', secret, {
        'aws:ResourceTag/aws:rds:primaryDBInstanceArn': `arn:aws:rds:${region}:${accountId}:db:payroll-db`,
      }),
      false,
      'another application’s database',
    );
  });

  test('only the function role may sign in to a database with IAM, and only as linecount_app', async () => {
    const user = (name: string) =>
      `arn:aws:rds-db:${region}:${accountId}:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/${name}`;
    assert.equal(await allowed(capped('function'), 'rds-db:connect', user('linecount_app')), true);
    for (const name of ['migrate', 'scheduler', 'generator']) {
      assert.equal(await allowed(capped(name), 'rds-db:connect', user('linecount_app')), false, name);
    }
    for (const name of ['linecount', 'postgres', 'rdsadmin', 'payroll_app']) {
      assert.equal(await allowed(capped('function'), 'rds-db:connect', user(name)), false, name);
    }
    assert.equal(
      await allowed(
        capped('function'),
        'rds-db:connect',
        `arn:aws:rds-db:${region}:999999999999:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/linecount_app`,
      ),
      false,
      'another account’s database',
    );
  });
});
