/** The lab's kubelet: pods as real HTTP servers behind virtual loopback IPs (see ../network.ts). */
export { Kubelet, type KubeletOptions, type PodEvent, type PodEventType } from './kubelet.js';
export { BEHAVIOR_ENV, type Behavior, parseBehavior, preStopSeconds, imageVersion } from './behavior.js';
export { IpAllocator, defaultIpRange, realTierIpRange, type IpAllocatorOptions, type IpRange } from './ip.js';
