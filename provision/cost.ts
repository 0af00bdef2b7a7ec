import type { DeployConfig } from '../lib/config.ts';

// An estimate of what the stack costs per month while idle (no uploads):
// everything billed by the hour or by the month whether used or not. Usage
// (S3 requests and storage, Lambda time, SQS/SNS requests, log ingestion,
// data processed by the interface endpoint) comes on top and is small for a
// trickle of files.
//
// Prices: US East (N. Virginia) on-demand list prices in USD, taken from the
// public AWS pricing pages (ElastiCache, RDS for PostgreSQL, VPC PrivateLink,
// Secrets Manager, CloudWatch, ECR) as of `pricesAsOf`. They are estimates:
// other regions cost more, prices change, and the free tier is not counted.
// Check https://calculator.aws/ before relying on them.
export const pricesAsOf = '2025-06';
const priceRegion = 'us-east-1';

const hoursPerMonth = 730;

// USD per hour for node/instance types this project defaults to; others are reported as unknown
const hourlyPrices = {
  cache: {
    // Valkey nodes are priced 20% below Redis OSS nodes of the same type
    valkey: { 'cache.t4g.micro': 0.0128, 'cache.t4g.small': 0.0256, 'cache.t4g.medium': 0.052 },
    redis: { 'cache.t4g.micro': 0.016, 'cache.t4g.small': 0.032, 'cache.t4g.medium': 0.065 },
  },
  // RDS for PostgreSQL, Single-AZ
  db: { 'db.t4g.micro': 0.016, 'db.t4g.small': 0.032, 'db.t4g.medium': 0.065 },
  // an interface VPC endpoint, per availability zone it is in
  interfaceEndpointPerZone: 0.01,
} as const;

const monthlyPrices = {
  // gp3 (and gp2) RDS storage, per GB-month
  dbStoragePerGb: 0.115,
  secretPerMonth: 0.4,
  // standard-resolution metric alarm
  alarmPerMonth: 0.1,
  // beyond the first three dashboards of the account
  dashboardPerMonth: 3,
  ecrStoragePerGb: 0.1,
} as const;

interface CostLine {
  item: string;
  basis: string;
  monthlyUsd: number | undefined;
}

export interface CostEstimate {
  region: string;
  pricesAsOf: string;
  lines: CostLine[];
  totalUsd: number;
  note: string;
}

export interface CostShape {
  cacheNodes: number;
  interfaceEndpointZones: number;
  secrets: number;
  alarms: number;
  dashboards: number;
  imageGb: number;
}

// The stack as provisioned: a primary and a replica cache node, the Secrets
// Manager endpoint in both private subnets' zones, the cache AUTH secret and
// the RDS-managed master secret.
export const defaultShape: CostShape = {
  cacheNodes: 2,
  interfaceEndpointZones: 2,
  secrets: 2,
  // provision/resources/alarms.ts: 15 for the stack plus 2 per cache node
  alarms: 19,
  dashboards: 1,
  imageGb: 0.15,
};

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

export function estimateIdleCost(config: DeployConfig, shape: CostShape = defaultShape): CostEstimate {
  const { provision } = config;
  const cacheRate = (hourlyPrices.cache[provision.cacheEngine] as Record<string, number>)[
    provision.cacheNodeType
  ];
  const dbRate = (hourlyPrices.db as Record<string, number>)[provision.dbInstanceClass];
  const lines: CostLine[] = [
    {
      item: `ElastiCache ${provision.cacheEngine} ${provision.cacheNodeType} × ${shape.cacheNodes}`,
      basis: cacheRate === undefined ? 'price not in the table' : `$${cacheRate}/h per node`,
      monthlyUsd: cacheRate === undefined ? undefined : round(cacheRate * hoursPerMonth * shape.cacheNodes),
    },
    {
      item: `RDS PostgreSQL ${provision.dbInstanceClass} (Single-AZ)`,
      basis: dbRate === undefined ? 'price not in the table' : `$${dbRate}/h`,
      monthlyUsd: dbRate === undefined ? undefined : round(dbRate * hoursPerMonth),
    },
    {
      item: `RDS storage ${provision.dbAllocatedStorageGb} GB`,
      basis: `$${monthlyPrices.dbStoragePerGb}/GB-month`,
      monthlyUsd: round(provision.dbAllocatedStorageGb * monthlyPrices.dbStoragePerGb),
    },
    {
      item: `Secrets Manager interface endpoint × ${shape.interfaceEndpointZones} zones`,
      basis: `$${hourlyPrices.interfaceEndpointPerZone}/h per zone`,
      monthlyUsd: round(hourlyPrices.interfaceEndpointPerZone * hoursPerMonth * shape.interfaceEndpointZones),
    },
    {
      item: `Secrets Manager secrets × ${shape.secrets}`,
      basis: `$${monthlyPrices.secretPerMonth}/secret-month`,
      monthlyUsd: round(monthlyPrices.secretPerMonth * shape.secrets),
    },
    {
      item: `CloudWatch alarms × ${shape.alarms}, dashboard × ${shape.dashboards}`,
      basis: `$${monthlyPrices.alarmPerMonth}/alarm-month, $${monthlyPrices.dashboardPerMonth}/dashboard-month`,
      monthlyUsd: round(
        monthlyPrices.alarmPerMonth * shape.alarms + monthlyPrices.dashboardPerMonth * shape.dashboards,
      ),
    },
    {
      item: `ECR image storage (~${shape.imageGb} GB)`,
      basis: `$${monthlyPrices.ecrStoragePerGb}/GB-month`,
      monthlyUsd: round(monthlyPrices.ecrStoragePerGb * shape.imageGb),
    },
    {
      item: 'VPC, subnets, S3 gateway endpoint, security groups, SNS, SQS, Lambda, Scheduler at rest',
      basis: 'no hourly charge',
      monthlyUsd: 0,
    },
  ];
  const totalUsd = round(lines.reduce((sum, line) => sum + (line.monthlyUsd ?? 0), 0));
  return {
    region: priceRegion,
    pricesAsOf,
    lines,
    totalUsd,
    note: `estimate from ${priceRegion} on-demand list prices as of ${pricesAsOf}; other regions differ, usage and taxes are extra, the free tier is not counted`,
  };
}
