/**
 * The lab's Application Load Balancer (one AWS account's ELBv2 state + HTTP data planes).
 * `new AlbCloud({clock, region})`; `dataPlaneUrl(lbArn)`; `stop()`.
 */
export { AlbCloud, DEFAULT_TARGET_GROUP_ATTRIBUTES, DEFAULT_TCP_TARGET_GROUP_ATTRIBUTES, wildcardMatch, type AlbCloudOptions, type LoadBalancerSummary, type TargetEvent, type TargetStatus } from './cloud.js';
export { AwsApiError, awsErrorCode, isAwsApiError, THROTTLING_CODES } from './errors.js';
export { AWS_API_HEALTH_CHECK_DEFAULTS, parseMatcher, type HealthCheckConfig } from './healthcheck.js';
export { AlbMetrics, SimulatedEpoch, type RequestOutcome, type TrafficCounters } from './metrics.js';
export { elbErrorBody, type DpTarget } from './dataplane.js';
export * from './names.js';
