/** The lab's kubelet: pods as real HTTP servers on loopback IPs. */
export { Kubelet, type KubeletOptions, type PodEvent, type PodEventType } from './kubelet.js';
export { BEHAVIOR_ENV, type Behavior, parseBehavior, preStopSeconds, imageVersion } from './behavior.js';
export { IpAllocator, defaultIpRange, type IpRange } from './ip.js';
