import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { createClients } from '../../lib/clients.ts';
import { loadDeployConfig } from '../../lib/config.ts';
import { stackNames } from '../../lib/names.ts';
import { Action, type Change, type Ctx } from '../../lib/reconcile.ts';
import { callNames, mutatingCalls, resetCalls } from '../../test/fakes/calls.ts';
import { installEc2Fake } from '../../test/fakes/ec2.ts';
import { installStsFake } from '../../test/fakes/sts.ts';
import { rejectsWithoutAction } from '../../test/support/iam/deny.ts';
import { networkWaits } from './ec2.ts';
import { endpointDrift, modifyEndpointInput } from './endpoint.ts';
import { parsePartition, resolveIdentity } from './identity.ts';
import { deleteNetwork, ensureEndpoints, ensureNetwork, ensureNetworkBase } from './network.ts';
import { routeTableDrift } from './route-table.ts';
import { type ActualRule, desiredRules, ruleDrift, ruleKey } from './security-group.ts';
import { carveSubnetCidr } from './subnet.ts';
import { ensureVpc, vpcDrift } from './vpc.ts';

const config = loadDeployConfig({ AWS_REGION: 'us-east-1', STAGE: 'test' });
const waits = {
  minDelaySeconds: 0.01,
  maxDelaySeconds: 0.02,
  maxWaitSeconds: 5,
  dependencyTimeoutSeconds: 5,
};

describe('network drift functions', () => {
  test('the partition comes from the caller ARN', () => {
    const cases = [
      { arn: 'arn:aws:sts::123456789012:assumed-role/r/s', want: 'aws' },
      { arn: 'arn:aws-cn:iam::123456789012:user/u', want: 'aws-cn' },
      { arn: 'arn:aws-us-gov:sts::123456789012:assumed-role/r/s', want: 'aws-us-gov' },
      { arn: 'not-an-arn', want: undefined },
      { arn: undefined, want: undefined },
    ];
    for (const { arn, want } of cases) assert.equal(parsePartition(arn), want);
  });

  test('carves consecutive /20s from the VPC /16', () => {
    const cases = [
      { cidr: '10.42.0.0/16', index: 0, want: '10.42.0.0/20' },
      { cidr: '10.42.0.0/16', index: 1, want: '10.42.16.0/20' },
      { cidr: '172.16.0.0/16', index: 15, want: '172.16.240.0/20' },
    ];
    for (const { cidr, index, want } of cases) assert.equal(carveSubnetCidr(cidr, index), want);
    assert.throws(() => carveSubnetCidr('10.42.0.0/16', 16), RangeError);
  });

  test('vpcDrift reports only the DNS attributes that differ', () => {
    const desired = { name: 'v', cidr: '10.0.0.0/16', enableDnsSupport: true, enableDnsHostnames: true };
    const base = { id: 'vpc-1', cidr: '10.0.0.0/16', state: 'available' };
    const cases = [
      { actual: { enableDnsSupport: true, enableDnsHostnames: true }, fields: [] },
      { actual: { enableDnsSupport: true, enableDnsHostnames: false }, fields: ['enableDnsHostnames'] },
      {
        actual: { enableDnsSupport: false, enableDnsHostnames: false },
        fields: ['enableDnsSupport', 'enableDnsHostnames'],
      },
    ];
    for (const { actual, fields } of cases) {
      assert.deepEqual(
        vpcDrift(desired, { ...base, ...actual }).map((f) => f.field),
        fields,
      );
    }
  });

  test('routeTableDrift reports subnets that are not associated', () => {
    const cases = [
      { associations: { a: 'x', b: 'y' }, subnets: ['a', 'b'], want: [] },
      {
        associations: { a: 'x' },
        subnets: ['a', 'b'],
        want: [{ field: 'subnets', from: ['a'], to: ['a', 'b'] }],
      },
      { associations: {}, subnets: ['b', 'a'], want: [{ field: 'subnets', from: [], to: ['a', 'b'] }] },
    ];
    for (const { associations, subnets, want } of cases) {
      assert.deepEqual(
        routeTableDrift(subnets, { id: 'rtb', associations: associations as Record<string, string> }),
        want,
      );
    }
  });

  test('ruleDrift re-adds a missing rule, revokes an extra one, and ignores descriptions', () => {
    const desired = desiredRules('10.42.0.0/16', 'pl-1', 'sg-fn').function;
    const asActual = (rules: typeof desired): ActualRule[] =>
      rules.map((rule, i) => ({ ...rule, id: `sgr-${i}`, description: 'edited by hand' }));
    const allowAll: ActualRule = {
      id: 'sgr-default',
      direction: 'egress',
      protocol: '-1',
      fromPort: -1,
      toPort: -1,
      peer: { cidr: '0.0.0.0/0' },
    };
    const cases = [
      { name: 'in sync', actual: asActual(desired), add: [], remove: [] },
      { name: 'one removed', actual: asActual(desired.slice(1)), add: [ruleKey(desired[0]!)], remove: [] },
      {
        name: 'new group',
        actual: [allowAll],
        add: desired.map(ruleKey),
        remove: ['egress all -1 cidr 0.0.0.0/0'],
      },
    ];
    for (const { name, actual, add, remove } of cases) {
      const drift = ruleDrift(desired, actual);
      assert.deepEqual(drift.add.map(ruleKey), add, name);
      assert.deepEqual(drift.remove.map(ruleKey), remove, name);
    }
  });

  test('the function group has egress only; the others accept one port from it', () => {
    const rules = desiredRules('10.42.0.0/16', 'pl-1', 'sg-fn');
    assert.ok(rules.function.every((r) => r.direction === 'egress'));
    assert.deepEqual(rules.function.map(ruleKey).sort(), [
      'egress tcp 443 cidr 10.42.0.0/16',
      'egress tcp 443 prefix-list pl-1',
      'egress tcp 5432 cidr 10.42.0.0/16',
      'egress tcp 6379 cidr 10.42.0.0/16',
    ]);
    assert.deepEqual(rules.cache.map(ruleKey), ['ingress tcp 6379 group sg-fn']);
    assert.deepEqual(rules.database.map(ruleKey), ['ingress tcp 5432 group sg-fn']);
    assert.deepEqual(rules.endpoint.map(ruleKey), ['ingress tcp 443 group sg-fn']);
  });

  test('endpointDrift and modifyEndpointInput add what is missing and remove what is extra', () => {
    const desired = {
      name: 'e',
      serviceName: 's',
      type: 'Interface' as const,
      subnetIds: ['s-1', 's-2'],
      securityGroupIds: ['sg-e'],
      privateDnsEnabled: true,
    };
    const actual = {
      id: 'vpce-1',
      state: 'available',
      routeTableIds: [],
      subnetIds: ['s-2', 's-3'],
      securityGroupIds: ['sg-e'],
      privateDnsEnabled: false,
    };
    const drift = endpointDrift(desired, actual);
    assert.deepEqual(
      drift.map((f) => f.field),
      ['subnetIds', 'privateDnsEnabled'],
    );
    assert.deepEqual(modifyEndpointInput('vpce-1', drift), {
      VpcEndpointId: 'vpce-1',
      AddSubnetIds: ['s-1'],
      RemoveSubnetIds: ['s-3'],
      PrivateDnsEnabled: true,
    });
    assert.deepEqual(
      endpointDrift(desired, { ...actual, subnetIds: ['s-2', 's-1'], privateDnsEnabled: true }),
      [],
    );
  });
});

describe('ensureNetwork and deleteNetwork against the EC2 fake', () => {
  const sts = installStsFake();
  // each new resource shows `pending` on its first describe, so the waiters really wait
  const ec2 = installEc2Fake({ transitionAfter: 1 });
  after(() => {
    ec2.restore();
    sts.restore();
  });
  const clients = createClients(config.aws);
  const progress: string[] = [];
  const identity = resolveIdentity(clients.sts, 'us-east-1');
  const makeCtx = async (mode: Ctx['mode'] = 'apply', stack = config): Promise<Ctx> => ({
    config: stack,
    clients,
    log: { info: () => {}, warn: () => {}, progress: (message: string) => progress.push(message) },
    mode,
    identity: await identity,
    names: stackNames(stack.stack, await identity),
    changes: [],
  });
  const summary = (changes: Change[]) => changes.map((c) => `${c.action} ${c.kind} ${c.name}`);
  const group = (role: string) =>
    [...ec2.state.securityGroups.values()].find((g) => g.GroupName === `ada-linecount-test-${role}`);
  // the cache group's one rule, removed out of band
  const removeCacheRule = () => {
    const cache = group('cache');
    const [ruleId] = [...ec2.state.rules].find(([, r]) => r.GroupId === cache?.GroupId) ?? [];
    ec2.state.rules.delete(ruleId ?? '');
  };
  // a whole run in a new context, whose changes the test then reads
  const run = async (network: typeof ensureNetwork | typeof deleteNetwork, mode?: Ctx['mode']) => {
    const ctx = await makeCtx(mode);
    await network(ctx, { waits });
    return ctx;
  };
  beforeEach(() => resetCalls());

  test('plan mode on an empty account makes no mutating call and lists what a real run creates', async () => {
    const plan = await makeCtx('plan');
    const planned = await ensureNetwork(plan, { waits });
    assert.deepEqual(mutatingCalls(), []);
    assert.match(planned.vpcId, /known after apply/);
    assert.ok(plan.changes.every((c) => c.action === Action.create));

    const apply = await makeCtx();
    const out = await ensureNetwork(apply, { waits });
    assert.deepEqual(summary(apply.changes), summary(plan.changes));
    assert.match(out.vpcId, /^vpc-/);
    assert.equal(out.subnetIds.length, 2);
    assert.deepEqual(Object.keys(out.securityGroups).sort(), ['cache', 'database', 'endpoint', 'function']);
  });

  test('a fresh network is private, spread over two zones, tagged, with least-privilege groups', () => {
    const [vpc] = [...ec2.state.vpcs.values()];
    assert.ok(vpc?.enableDnsSupport && vpc.enableDnsHostnames);
    assert.deepEqual(
      vpc.Tags.filter((t) => t.Key !== 'Name').sort((a, b) => (a.Key ?? '').localeCompare(b.Key ?? '')),
      [
        { Key: 'app', Value: 'ada-linecount' },
        { Key: 'managed-by', Value: 'ada-linecount' },
        { Key: 'stage', Value: 'test' },
      ],
    );
    const subnets = [...ec2.state.subnets.values()];
    // zones sorted by name: a and b, whatever order the API lists them in
    assert.deepEqual(subnets.map((s) => [s.AvailabilityZone, s.CidrBlock]).sort(), [
      ['us-east-1a', '10.42.0.0/20'],
      ['us-east-1b', '10.42.16.0/20'],
    ]);
    const table = [...ec2.state.routeTables.values()].find((t) => t.Tags.length > 0);
    assert.deepEqual(
      table?.Associations.map((a) => a.SubnetId).sort(),
      subnets.map((s) => s.SubnetId).sort(),
    );
    const rules = [...ec2.state.rules.values()];
    assert.ok(!rules.some((r) => r.CidrIpv4 === '0.0.0.0/0'), 'no allow-all rule is left on any group');
    const endpoints = [...ec2.state.endpoints.values()];
    assert.deepEqual(endpoints.map((e) => [e.VpcEndpointType, e.ServiceName, e.State]).sort(), [
      ['Gateway', 'com.amazonaws.us-east-1.s3', 'available'],
      ['Interface', 'com.amazonaws.us-east-1.secretsmanager', 'available'],
    ]);
    const iface = endpoints.find((e) => e.VpcEndpointType === 'Interface');
    assert.equal(iface?.PrivateDnsEnabled, true);
    assert.equal(iface?.SubnetIds.length, 2);
  });

  test('a second run makes zero mutating calls and reports everything unchanged', async () => {
    const ctx = await run(ensureNetwork);
    assert.deepEqual(mutatingCalls(), []);
    assert.ok(ctx.changes.length >= 10);
    assert.ok(
      ctx.changes.every((c) => c.action === Action.unchanged),
      JSON.stringify(ctx.changes),
    );
  });

  test('a rule removed out of band is re-added, and only that; plan reports the same change', async () => {
    removeCacheRule();

    const plan = await run(ensureNetwork, 'plan');
    assert.deepEqual(mutatingCalls(), []);
    const updates = plan.changes.filter((c) => c.action !== Action.unchanged);
    assert.equal(updates.length, 1);
    assert.equal(updates[0]?.name, 'ada-linecount-test-cache');
    assert.match(updates[0]?.fields?.[0]?.field ?? '', /^ingress tcp 6379 group sg-/);

    const apply = await run(ensureNetwork);
    assert.deepEqual(apply.changes, plan.changes);
    assert.deepEqual(callNames(mutatingCalls()), ['ec2:AuthorizeSecurityGroupIngress']);
  });

  test('an extra rule added out of band is revoked', async () => {
    const fn = group('function');
    ec2.state.rules.set('sgr-extra', {
      SecurityGroupRuleId: 'sgr-extra',
      GroupId: fn?.GroupId,
      IsEgress: true,
      IpProtocol: '-1',
      FromPort: -1,
      ToPort: -1,
      CidrIpv4: '0.0.0.0/0',
    });
    const ctx = await run(ensureNetwork);
    assert.deepEqual(callNames(mutatingCalls()), ['ec2:RevokeSecurityGroupEgress']);
    assert.equal(ec2.state.rules.has('sgr-extra'), false);
  });

  test('DNS hostnames switched off out of band are switched back on', async () => {
    const [vpc] = [...ec2.state.vpcs.values()];
    if (vpc) vpc.enableDnsHostnames = false;
    const ctx = await run(ensureNetwork);
    assert.deepEqual(callNames(mutatingCalls()), ['ec2:ModifyVpcAttribute']);
    assert.deepEqual(ctx.changes.find((c) => c.kind === 'vpc')?.fields, [
      { field: 'enableDnsHostnames', from: false, to: true },
    ]);
  });

  test('the base network and the endpoints are two phases whose composition is ensureNetwork', async () => {
    const ctx = await makeCtx();
    const base = await ensureNetworkBase(ctx, { waits });
    assert.ok(!ctx.changes.some((c) => c.kind === 'vpc-endpoint'));
    assert.match(base.routeTableId, /^rtb-/);
    await ensureEndpoints(ctx, base, { waits });
    assert.deepEqual(
      ctx.changes.filter((c) => c.kind === 'vpc-endpoint').map((c) => c.name),
      ['ada-linecount-test-s3', 'ada-linecount-test-secretsmanager'],
    );
    const whole = await makeCtx();
    const out = await ensureNetwork(whole, { waits });
    assert.deepEqual(summary(whole.changes), summary(ctx.changes));
    assert.deepEqual(out, {
      vpcId: base.vpcId,
      subnetIds: base.subnetIds,
      securityGroups: base.securityGroups,
    });
    assert.deepEqual(mutatingCalls(), []);
  });

  test('a call EC2 refuses stops the run with the step and the permission to check', async () => {
    const scope = { partition: 'aws', region: 'us-east-1', accountId: (await identity).accountId };
    const refused = (action: string, run: () => Promise<unknown>, message: RegExp) =>
      rejectsWithoutAction(scope, action, run, message);
    const up = async () => ensureNetwork(await makeCtx(), { waits });
    const reads = [
      [
        'ec2:DescribeVpcs',
        /^cannot read vpc ada-linecount-test-vpc: UnauthorizedOperation: .*\(check ec2:DescribeVpcs and ec2:DescribeVpcAttribute permissions\)$/,
      ],
      [
        'ec2:DescribeSubnets',
        /^cannot read subnet ada-linecount-test-private-1: UnauthorizedOperation: .*\(check ec2:DescribeSubnets and ec2:DescribeAvailabilityZones permissions\)$/,
      ],
      [
        'ec2:DescribeRouteTables',
        /^cannot read route-table ada-linecount-test-private: UnauthorizedOperation: .*\(check ec2:DescribeRouteTables permission\)$/,
      ],
      [
        'ec2:DescribePrefixLists',
        /^cannot find the S3 prefix list: UnauthorizedOperation: .*\(check ec2:DescribePrefixLists permission\)$/,
      ],
      [
        'ec2:DescribeSecurityGroupRules',
        /^cannot read security-group ada-linecount-test-function: UnauthorizedOperation: .*\(check ec2:DescribeSecurityGroups and ec2:DescribeSecurityGroupRules permissions\)$/,
      ],
      [
        'ec2:DescribeVpcEndpoints',
        /^cannot read vpc-endpoint ada-linecount-test-s3: UnauthorizedOperation: .*\(check ec2:DescribeVpcEndpoints permission\)$/,
      ],
    ] as const;
    for (const [action, message] of reads) await refused(action, up, message);

    removeCacheRule();
    await refused(
      'ec2:AuthorizeSecurityGroupIngress',
      up,
      /^cannot update security-group ada-linecount-test-cache: UnauthorizedOperation: .*\(check ec2:AuthorizeSecurityGroupIngress, ec2:AuthorizeSecurityGroupEgress, ec2:RevokeSecurityGroupIngress and ec2:RevokeSecurityGroupEgress permissions\)$/,
    );
    await up();

    await refused(
      'ec2:DeleteVpcEndpoints',
      async () => deleteNetwork(await makeCtx(), { waits }),
      /^cannot delete VPC endpoints vpce-\w+, vpce-\w+: UnauthorizedOperation: .*\(check ec2:DeleteVpcEndpoints permission\)$/,
    );
    assert.equal(ec2.state.endpoints.size, 2);
  });

  test('a subnet that is not ours in the way of a new one is reported, not taken', async () => {
    const other = loadDeployConfig({ AWS_REGION: 'us-east-1', STAGE: 'other' });
    const { vpcId } = await ensureNetworkBase(await makeCtx('plan', other), { waits });
    assert.match(vpcId, /known after apply/);
    const ctx = await makeCtx('apply', other);
    const vpc = await ensureVpc(ctx, { ...networkWaits, ...waits });
    ec2.state.subnets.set('subnet-foreign', {
      SubnetId: 'subnet-foreign',
      VpcId: vpc.vpcId,
      CidrBlock: '10.42.0.0/20',
      AvailabilityZone: 'us-east-1a',
      State: 'available',
      Tags: [],
      pendingDescribes: 0,
    });
    await assert.rejects(
      ensureNetwork(ctx, { waits }),
      /^AwsStepError: cannot create subnet ada-linecount-other-private-1: InvalidSubnet.Conflict: .*\(check ec2:CreateSubnet and ec2:CreateTags permissions\)$/,
    );
    ec2.state.subnets.delete('subnet-foreign');
    await deleteNetwork(await makeCtx('apply', other), { waits });
    assert.equal([...ec2.state.vpcs.values()].filter((v) => v.VpcId === vpc.vpcId).length, 0);
  });

  test('delete retries DependencyViolation while Lambda ENIs linger, then removes everything; a second delete is a no-op', async () => {
    const fn = group('function');
    ec2.state.lingeringEnis.set(fn?.GroupId ?? '', 3);
    progress.length = 0;
    const ctx = await run(deleteNetwork);
    assert.equal(ec2.state.vpcs.size, 0);
    assert.equal(ec2.state.subnets.size, 0);
    assert.equal(ec2.state.endpoints.size, 0);
    assert.equal(ec2.state.securityGroups.size, 0);
    const deletes = callNames(mutatingCalls()).filter((c) => c === 'ec2:DeleteSecurityGroup');
    // four groups, and the function's failed three times before its ENIs were gone
    assert.equal(deletes.length, 4 + 3);
    assert.ok(progress.some((line) => /still in use by network interfaces/.test(line)));
    assert.ok(ctx.changes.every((c) => c.action === Action.delete));

    resetCalls();
    const again = await run(deleteNetwork);
    assert.deepEqual(mutatingCalls(), []);
    assert.ok(again.changes.every((c) => c.action === Action.absent));
  });
});
