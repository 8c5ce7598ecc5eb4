import type { AlbCloud } from '../alb/cloud.js';
import type { LabClock } from '../timing.js';
import { awsAccount, type ApiCalls, type AwsAccount, type AwsFaults } from './account.js';
import { CloudWatchServer } from './cloudwatch-server.js';
import { Ec2Model, type Ec2NodeView } from './ec2.js';
import { Ec2Server } from './ec2-server.js';
import { Elbv2Server } from './elbv2-server.js';

export {
  AwsAccount,
  awsAccount,
  isCloudWatchAction,
  isEc2Action,
  isElbv2Action,
  type ApiCalls,
  type AwsFaults,
  type AwsService,
  type CloudWatchAction,
  type Ec2Action,
  type Elbv2Action,
  type Elbv2Input,
  type Elbv2Output,
  type FaultConfig,
} from './account.js';
export { getMetricData, type LabGetMetricDataInput } from './cloudwatch.js';
export { Ec2Model, ec2NetworkOf, instanceIdForNode, providerIdForNode, type Ec2NodeView, type Ec2Options } from './ec2.js';
export { parseQueryForm, toXml } from './wire.js';

export interface AwsApis {
  /** Point the SDK here: `AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2` or `endpoint`. */
  elbv2Url: string;
  /** Point the SDK here: `AWS_ENDPOINT_URL_CLOUDWATCH` or `endpoint`. */
  cloudwatchUrl: string;
  /** Point the SDK here: `AWS_ENDPOINT_URL_EC2` or `endpoint`. */
  ec2Url: string;
  /** The VPC, subnets, security groups and node ENIs the EC2 API answers from. */
  ec2: Ec2Model;
  /** Live call counts per action (SDK clients and the in-process LBC alike). */
  calls: ApiCalls;
  /** The account gateway shared with the LBC. */
  account: AwsAccount;
  /** Replaces the fault configuration (affects every caller of the account, including the LBC). */
  setFaults(faults: AwsFaults): void;
  /** Environment variables that point an unmodified SDK at these servers. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Starts the ELBv2 (awsQuery) and CloudWatch (awsJson1_0) servers on 127.0.0.1 for one ALB model.
 * Faults given here are set on the model's account gateway, which the LBC emulation uses too.
 */
export async function startAwsApis(options: {
  alb: AlbCloud;
  clock?: LabClock;
  faults?: AwsFaults;
  random?: () => number;
  /** The cluster name in the subnets' and node security group's `kubernetes.io/cluster/<name>` tags (default `lab`). */
  clusterName?: string;
  /** The lab's nodes and their pod IPs, read at every EC2 call (instances and ENIs). */
  network?: () => Ec2NodeView[];
}): Promise<AwsApis> {
  const account = awsAccount(options.alb, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  if (options.faults) account.setFaults(options.faults);
  const ec2Model = new Ec2Model({
    region: options.alb.region,
    vpcId: options.alb.vpcId,
    clusterName: options.clusterName ?? 'lab',
    ...(options.network ? { network: options.network } : {}),
  });
  account.ec2Model = ec2Model;
  const elbv2 = new Elbv2Server(account);
  const cloudwatch = new CloudWatchServer(account);
  const ec2 = new Ec2Server(account);
  const [elbv2Url, cloudwatchUrl, ec2Url] = await Promise.all([elbv2.listen(), cloudwatch.listen(), ec2.listen()]);
  return {
    elbv2Url,
    cloudwatchUrl,
    ec2Url,
    ec2: ec2Model,
    calls: account.calls,
    account,
    setFaults: (f) => account.setFaults(f),
    env: {
      AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: elbv2Url,
      AWS_ENDPOINT_URL_CLOUDWATCH: cloudwatchUrl,
      AWS_ENDPOINT_URL_EC2: ec2Url,
      AWS_REGION: options.alb.region,
      AWS_ACCESS_KEY_ID: 'lab',
      AWS_SECRET_ACCESS_KEY: 'lab',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    stop: async () => {
      await Promise.all([elbv2.close(), cloudwatch.close(), ec2.close()]);
    },
  };
}
