import type { AlbCloud } from '../alb/cloud.js';
import { AwsApiError } from '../alb/errors.js';
import type { LabClock } from '../timing.js';
import { getMetricData } from './cloudwatch.js';
import type { Ec2Model, Ec2Params } from './ec2.js';
import { elbv2Settings, type Elbv2Settings } from './elbv2-settings.js';

/**
 * The lab's AWS account front door: every ELBv2 and CloudWatch call — from the awsQuery/JSON servers that the
 * AWS SDK reaches, and from the in-process LBC — goes through `AwsAccount`, which counts calls and applies the
 * configured faults (throttling, 500s, added latency).
 *
 * Documented choice: the LBC emulation calls the ALB model through this same gateway, not around it, because on
 * AWS the controller and the deploy tool share the account's API rate limits: throttling injected "on the AWS API"
 * slows the controller's registrations and deregistrations as well, which is what happens in a real account.
 * (`callers` in a FaultConfig narrows a fault to one caller when a test wants only one side affected.)
 */

export interface FaultConfig {
  /** Fraction [0, 1] of calls answered with HTTP 400 `Throttling` "Rate exceeded". */
  throttleRate?: number;
  /** The next N calls are throttled (deterministic; counts down). */
  throttleNext?: number;
  /** Fraction [0, 1] of calls answered with HTTP 500 (`InternalFailure` / `InternalServiceError`). */
  errorRate?: number;
  /** The next N calls fail with HTTP 500 (deterministic; counts down). */
  errorNext?: number;
  /** Latency added to every call, in simulated seconds. */
  latencySeconds?: number;
  /** Only these actions are affected (default: all). */
  actions?: string[];
  /** Only these callers are affected: 'http' (SDK clients through the servers), 'lbc', or any name a caller passes. */
  callers?: string[];
}

export interface AwsFaults {
  elbv2?: FaultConfig;
  cloudwatch?: FaultConfig;
  ec2?: FaultConfig;
}

export type AwsService = 'elbv2' | 'cloudwatch' | 'ec2';

/** Call counts; live objects (read them at any time). Keys of `byCaller`/`throttled`/`failed` are `<service>:<Action>`. */
export interface ApiCalls {
  elbv2: Record<string, number>;
  cloudwatch: Record<string, number>;
  ec2: Record<string, number>;
  throttled: Record<string, number>;
  failed: Record<string, number>;
  byCaller: Record<string, Record<string, number>>;
}

const ELBV2_OPERATIONS = {
  DescribeTargetHealth: (alb: AlbCloud, i: Parameters<AlbCloud['describeTargetHealth']>[0]) => alb.describeTargetHealth(i),
  RegisterTargets: (alb: AlbCloud, i: Parameters<AlbCloud['registerTargets']>[0]) => alb.registerTargets(i),
  DeregisterTargets: (alb: AlbCloud, i: Parameters<AlbCloud['deregisterTargets']>[0]) => alb.deregisterTargets(i),
  DescribeTargetGroups: (alb: AlbCloud, i: Parameters<AlbCloud['describeTargetGroups']>[0]) => alb.describeTargetGroups(i),
  DescribeTargetGroupAttributes: (alb: AlbCloud, i: Parameters<AlbCloud['describeTargetGroupAttributes']>[0]) => alb.describeTargetGroupAttributes(i),
  ModifyTargetGroupAttributes: (alb: AlbCloud, i: Parameters<AlbCloud['modifyTargetGroupAttributes']>[0]) => alb.modifyTargetGroupAttributes(i),
  CreateTargetGroup: (alb: AlbCloud, i: Parameters<AlbCloud['createTargetGroup']>[0]) => alb.createTargetGroup(i),
  ModifyTargetGroup: (alb: AlbCloud, i: Parameters<AlbCloud['modifyTargetGroup']>[0]) => alb.modifyTargetGroup(i),
  DeleteTargetGroup: (alb: AlbCloud, i: Parameters<AlbCloud['deleteTargetGroup']>[0]) => alb.deleteTargetGroup(i),
  DescribeLoadBalancers: (alb: AlbCloud, i: Parameters<Elbv2Settings['describeLoadBalancers']>[0]) => elbv2Settings(alb).describeLoadBalancers(i),
  CreateLoadBalancer: (alb: AlbCloud, i: Parameters<Elbv2Settings['createLoadBalancer']>[0]) => elbv2Settings(alb).createLoadBalancer(i),
  DescribeLoadBalancerAttributes: (alb: AlbCloud, i: Parameters<Elbv2Settings['describeLoadBalancerAttributes']>[0]) => elbv2Settings(alb).describeLoadBalancerAttributes(i),
  ModifyLoadBalancerAttributes: (alb: AlbCloud, i: Parameters<Elbv2Settings['modifyLoadBalancerAttributes']>[0]) => elbv2Settings(alb).modifyLoadBalancerAttributes(i),
  SetSecurityGroups: (alb: AlbCloud, i: Parameters<Elbv2Settings['setSecurityGroups']>[0]) => elbv2Settings(alb).setSecurityGroups(i),
  SetSubnets: (alb: AlbCloud, i: Parameters<Elbv2Settings['setSubnets']>[0]) => elbv2Settings(alb).setSubnets(i),
  SetIpAddressType: (alb: AlbCloud, i: Parameters<Elbv2Settings['setIpAddressType']>[0]) => elbv2Settings(alb).setIpAddressType(i),
  DescribeListenerAttributes: (alb: AlbCloud, i: Parameters<Elbv2Settings['describeListenerAttributes']>[0]) => elbv2Settings(alb).describeListenerAttributes(i),
  ModifyListenerAttributes: (alb: AlbCloud, i: Parameters<Elbv2Settings['modifyListenerAttributes']>[0]) => elbv2Settings(alb).modifyListenerAttributes(i),
  DescribeListenerCertificates: (alb: AlbCloud, i: Parameters<Elbv2Settings['describeListenerCertificates']>[0]) => elbv2Settings(alb).describeListenerCertificates(i),
  DeleteLoadBalancer: (alb: AlbCloud, i: Parameters<AlbCloud['deleteLoadBalancer']>[0]) => alb.deleteLoadBalancer(i),
  DescribeListeners: (alb: AlbCloud, i: Parameters<AlbCloud['describeListeners']>[0]) => alb.describeListeners(i),
  CreateListener: (alb: AlbCloud, i: Parameters<AlbCloud['createListener']>[0]) => alb.createListener(i),
  ModifyListener: (alb: AlbCloud, i: Parameters<AlbCloud['modifyListener']>[0]) => alb.modifyListener(i),
  DeleteListener: (alb: AlbCloud, i: Parameters<AlbCloud['deleteListener']>[0]) => alb.deleteListener(i),
  DescribeRules: (alb: AlbCloud, i: Parameters<AlbCloud['describeRules']>[0]) => alb.describeRules(i),
  CreateRule: (alb: AlbCloud, i: Parameters<AlbCloud['createRule']>[0]) => alb.createRule(i),
  ModifyRule: (alb: AlbCloud, i: Parameters<AlbCloud['modifyRule']>[0]) => alb.modifyRule(i),
  SetRulePriorities: (alb: AlbCloud, i: Parameters<AlbCloud['setRulePriorities']>[0]) => alb.setRulePriorities(i),
  DeleteRule: (alb: AlbCloud, i: Parameters<AlbCloud['deleteRule']>[0]) => alb.deleteRule(i),
  DescribeTags: (alb: AlbCloud, i: Parameters<AlbCloud['describeTags']>[0]) => alb.describeTags(i),
  AddTags: (alb: AlbCloud, i: Parameters<AlbCloud['addTags']>[0]) => alb.addTags(i),
  RemoveTags: (alb: AlbCloud, i: Parameters<AlbCloud['removeTags']>[0]) => alb.removeTags(i),
} as const;

export type Elbv2Action = keyof typeof ELBV2_OPERATIONS;
export type Elbv2Input<A extends Elbv2Action> = Parameters<(typeof ELBV2_OPERATIONS)[A]>[1];
export type Elbv2Output<A extends Elbv2Action> = Awaited<ReturnType<(typeof ELBV2_OPERATIONS)[A]>>;

export function isElbv2Action(a: string): a is Elbv2Action {
  return Object.prototype.hasOwnProperty.call(ELBV2_OPERATIONS, a);
}

const CLOUDWATCH_OPERATIONS = {
  GetMetricData: (alb: AlbCloud, i: Parameters<typeof getMetricData>[1]) => Promise.resolve(getMetricData(alb, i)),
} as const;

export type CloudWatchAction = keyof typeof CLOUDWATCH_OPERATIONS;
export type CloudWatchInput<A extends CloudWatchAction> = Parameters<(typeof CLOUDWATCH_OPERATIONS)[A]>[1];
export type CloudWatchOutput<A extends CloudWatchAction> = Awaited<ReturnType<(typeof CLOUDWATCH_OPERATIONS)[A]>>;

export function isCloudWatchAction(a: string): a is CloudWatchAction {
  return Object.prototype.hasOwnProperty.call(CLOUDWATCH_OPERATIONS, a);
}

/** EC2 action → the Ec2Model method that answers it (each takes the parsed query form). */
const EC2_OPERATIONS = {
  DescribeVpcs: 'describeVpcs',
  DescribeAvailabilityZones: 'describeAvailabilityZones',
  DescribeSubnets: 'describeSubnets',
  DescribeRouteTables: 'describeRouteTables',
  DescribeInstances: 'describeInstances',
  DescribeNetworkInterfaces: 'describeNetworkInterfaces',
  DescribeSecurityGroups: 'describeSecurityGroups',
  CreateSecurityGroup: 'createSecurityGroup',
  DeleteSecurityGroup: 'deleteSecurityGroup',
  AuthorizeSecurityGroupIngress: 'authorizeSecurityGroupIngress',
  RevokeSecurityGroupIngress: 'revokeSecurityGroupIngress',
  CreateTags: 'createTags',
  DeleteTags: 'deleteTags',
} as const satisfies Record<string, keyof Ec2Model>;

export type Ec2Action = keyof typeof EC2_OPERATIONS;

export function isEc2Action(a: string): a is Ec2Action {
  return Object.prototype.hasOwnProperty.call(EC2_OPERATIONS, a);
}

export class AwsAccount {
  readonly calls: ApiCalls = { elbv2: {}, cloudwatch: {}, ec2: {}, throttled: {}, failed: {}, byCaller: {} };
  /** The account's EC2 (VPC, subnets, security groups, node ENIs); set by `startAwsApis` when EC2 is served. */
  ec2Model: Ec2Model | undefined;
  private faults: AwsFaults = {};
  readonly clock: LabClock;

  constructor(
    readonly alb: AlbCloud,
    options: { clock?: LabClock; random?: () => number } = {},
  ) {
    this.clock = options.clock ?? alb.clock;
    this.random = options.random ?? this.clock.stream('aws/faults').fn();
  }

  private readonly random: () => number;

  /** Replaces the fault configuration (a copy is kept; `throttleNext`/`errorNext` count down). */
  setFaults(faults: AwsFaults): void {
    this.faults = structuredClone(faults);
  }

  getFaults(): AwsFaults {
    return structuredClone(this.faults);
  }

  async elbv2<A extends Elbv2Action>(action: A, input: Elbv2Input<A>, caller = 'lbc'): Promise<Elbv2Output<A>> {
    await this.gate('elbv2', action, caller);
    const op = ELBV2_OPERATIONS[action] as (alb: AlbCloud, i: Elbv2Input<A>) => Promise<Elbv2Output<A>>;
    return op(this.alb, input);
  }

  async cloudwatch<A extends CloudWatchAction>(action: A, input: CloudWatchInput<A>, caller = 'lbc'): Promise<CloudWatchOutput<A>> {
    await this.gate('cloudwatch', action, caller);
    const op = CLOUDWATCH_OPERATIONS[action] as (alb: AlbCloud, i: CloudWatchInput<A>) => Promise<CloudWatchOutput<A>>;
    return op(this.alb, input);
  }

  async ec2(action: Ec2Action, input: Ec2Params, caller = 'lbc'): Promise<Record<string, unknown>> {
    const model = this.ec2Model;
    if (!model) throw new AwsApiError('UnsupportedOperation', `EC2 ${action}: this lab was started without the EC2 API (start it with the real controller, or call startAwsApis with ec2 options)`);
    await this.gate('ec2', action, caller);
    const method = EC2_OPERATIONS[action];
    return model[method](input);
  }

  /** Counts the call, then applies latency and the throttling/error faults that match it. */
  private async gate(service: AwsService, action: string, caller: string): Promise<void> {
    const k = `${service}:${action}`;
    this.calls[service][action] = (this.calls[service][action] ?? 0) + 1;
    const byCaller = (this.calls.byCaller[caller] ??= {});
    byCaller[k] = (byCaller[k] ?? 0) + 1;
    const serviceTime = this.clock.delay('awsApiLatencySeconds');
    if (serviceTime > 0) await this.clock.sleep(serviceTime);
    const f = this.faults[service];
    if (!f) return;
    if (f.actions && !f.actions.includes(action)) return;
    if (f.callers && !f.callers.includes(caller)) return;
    if (f.latencySeconds && f.latencySeconds > 0) await this.clock.sleep(f.latencySeconds);
    let throttle = false;
    if ((f.throttleNext ?? 0) > 0) {
      f.throttleNext = (f.throttleNext ?? 0) - 1;
      throttle = true;
    } else if ((f.throttleRate ?? 0) > 0 && this.random() < (f.throttleRate ?? 0)) {
      throttle = true;
    }
    if (throttle) {
      this.calls.throttled[k] = (this.calls.throttled[k] ?? 0) + 1;
      throw new AwsApiError('Throttling', 'Rate exceeded', 400);
    }
    let fail = false;
    if ((f.errorNext ?? 0) > 0) {
      f.errorNext = (f.errorNext ?? 0) - 1;
      fail = true;
    } else if ((f.errorRate ?? 0) > 0 && this.random() < (f.errorRate ?? 0)) {
      fail = true;
    }
    if (fail) {
      this.calls.failed[k] = (this.calls.failed[k] ?? 0) + 1;
      if (service === 'elbv2') throw new AwsApiError('InternalFailure', 'An internal error has occurred. Try again later.', 500);
      if (service === 'ec2') throw new AwsApiError('InternalError', 'An internal error has occurred (injected by the lab).', 500);
      throw new AwsApiError('InternalServiceError', 'Internal service error (injected by the lab).', 500);
    }
  }
}

const accounts = new WeakMap<AlbCloud, AwsAccount>();

/**
 * The one account gateway of an ALB model (created on first use). The API servers and the LBC both take it
 * from here, so faults set through either apply to both.
 */
export function awsAccount(alb: AlbCloud, options: { clock?: LabClock; random?: () => number } = {}): AwsAccount {
  let a = accounts.get(alb);
  if (!a) {
    a = new AwsAccount(alb, options);
    accounts.set(alb, a);
  }
  return a;
}
