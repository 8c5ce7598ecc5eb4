/**
 * The lab's EC2: the part of a VPC that the AWS Load Balancer Controller reads and writes — one VPC, one public
 * subnet per availability zone (tagged for load balancer discovery), the main route table with an internet
 * gateway, security groups with their ingress/egress rules, tags, and one instance + ENI per lab node whose
 * secondary private IPs are the node's pod IPs (what the VPC CNI does), so that pod IPs resolve to ENIs.
 *
 * Inputs are the EC2 query protocol's form, parsed with flat lists (`Filter.1.Value.1`), and outputs use the
 * protocol's element names (`subnetSet`, `groupDescription`, `privateIpAddressesSet`): the server renders them
 * as they are. The pod network is read through `network` at each call, never copied, so it is never stale.
 */
import { createHash } from 'node:crypto';
import { AwsApiError } from '../alb/errors.js';
import { wildcardMatch } from '../alb/cloud.js';
import type { FormValue } from './wire.js';

export type Ec2Params = Record<string, FormValue>;

/** One lab node as EC2 sees it: an instance with one ENI holding the node IP and its pods' IPs. */
export interface Ec2NodeView {
  name: string;
  /** Zone suffix index: 0 → `<region>a`. */
  zoneIndex: number;
  nodeIp: string;
  podIps: string[];
}

export interface Ec2Options {
  region: string;
  vpcId: string;
  clusterName: string;
  /** The lab's nodes and pod IPs, read at every call. */
  network?: () => Ec2NodeView[];
  /** Whether a security group is still used by a load balancer (DeleteSecurityGroup then answers DependencyViolation). */
  groupInUse?: (groupId: string) => boolean;
  /** Number of availability zones (and subnets), default 2 (as the ALB model reports). */
  zones?: number;
}

export const OWNER_ID = '123456789012';
const VPC_CIDR = '127.0.0.0/8';
/** The pod range of the real control plane tier (RFC 2544 benchmark addresses, mapped to loopback by the lab). */
const POD_CIDR = '198.18.0.0/15';
/** The group the ALB model reports on load balancers created without security groups. */
export const DEFAULT_GROUP_ID = 'sg-0lab00000000000001';
export const NODE_GROUP_ID = 'sg-0lab00000000000002';

interface Permission {
  protocol: string;
  from?: number;
  to?: number;
  /** `cidr:<v4>`, `cidr6:<v6>`, `pl:<id>` or `sg:<id>` */
  peer: string;
  description?: string;
}

interface GroupRec {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  ingress: Permission[];
  egress: Permission[];
}

type Tags = Map<string, string>;

export function instanceIdForNode(name: string): string {
  return `i-${createHash('sha256').update(`instance:${name}`).digest('hex').slice(0, 17)}`;
}

export function eniIdForNode(name: string): string {
  return `eni-${createHash('sha256').update(`eni:${name}`).digest('hex').slice(0, 17)}`;
}

export function subnetId(zoneIndex: number): string {
  return `subnet-0lab0000000000${zoneIndex}`;
}

/** The providerID the kubelet puts on a lab node so the controller can find its instance. */
export function providerIdForNode(region: string, node: Pick<Ec2NodeView, 'name' | 'zoneIndex'>): string {
  return `aws:///${region}${zoneLetter(node.zoneIndex)}/${instanceIdForNode(node.name)}`;
}

function zoneLetter(i: number): string {
  return String.fromCharCode(97 + i);
}

export class Ec2Model {
  readonly region: string;
  readonly vpcId: string;
  readonly clusterName: string;
  private readonly zones: number;
  private readonly groups = new Map<string, GroupRec>();
  private readonly tags = new Map<string, Tags>();
  private groupSeq = 0;

  constructor(private readonly options: Ec2Options) {
    this.region = options.region;
    this.vpcId = options.vpcId;
    this.clusterName = options.clusterName;
    this.zones = options.zones ?? 2;
    const allEgress: Permission[] = [{ protocol: '-1', peer: 'cidr:0.0.0.0/0' }];
    this.groups.set(DEFAULT_GROUP_ID, { id: DEFAULT_GROUP_ID, name: 'default', description: 'default VPC security group', vpcId: this.vpcId, ingress: [{ protocol: '-1', peer: `sg:${DEFAULT_GROUP_ID}` }], egress: [...allEgress] });
    this.groups.set(NODE_GROUP_ID, {
      id: NODE_GROUP_ID,
      name: `eks-cluster-sg-${this.clusterName}`,
      description: 'EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.',
      vpcId: this.vpcId,
      ingress: [{ protocol: '-1', peer: `sg:${NODE_GROUP_ID}` }],
      egress: [...allEgress],
    });
    this.tags.set(NODE_GROUP_ID, new Map([[`kubernetes.io/cluster/${this.clusterName}`, 'owned'], ['Name', `eks-cluster-sg-${this.clusterName}`]]));
    this.tags.set(this.vpcId, new Map([['Name', `${this.clusterName}-vpc`]]));
    for (let i = 0; i < this.zones; i++) {
      this.tags.set(
        subnetId(i),
        new Map([
          ['Name', `${this.clusterName}-public-${this.region}${zoneLetter(i)}`],
          ['kubernetes.io/role/elb', '1'],
          [`kubernetes.io/cluster/${this.clusterName}`, 'shared'],
        ]),
      );
    }
  }

  private nodes(): Ec2NodeView[] {
    return this.options.network?.() ?? [];
  }

  // ------------------------------------------------------------------ VPC, zones, subnets, route tables

  describeVpcs(p: Ec2Params): Record<string, unknown> {
    const ids = strings(p.VpcId);
    for (const id of ids) if (id !== this.vpcId) throw new AwsApiError('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
    const vpc = {
      vpcId: this.vpcId,
      ownerId: OWNER_ID,
      state: 'available',
      cidrBlock: VPC_CIDR,
      cidrBlockAssociationSet: [
        { associationId: 'vpc-cidr-assoc-0lab000000000001', cidrBlock: VPC_CIDR, cidrBlockState: { state: 'associated' } },
        { associationId: 'vpc-cidr-assoc-0lab000000000002', cidrBlock: POD_CIDR, cidrBlockState: { state: 'associated' } },
      ],
      dhcpOptionsId: 'dopt-0lab000000000001',
      instanceTenancy: 'default',
      isDefault: false,
      tagSet: this.tagSet(this.vpcId),
    };
    const match = this.filter(p, { 'vpc-id': [this.vpcId], 'cidr': [VPC_CIDR], 'cidr-block-association.cidr-block': [VPC_CIDR, POD_CIDR], state: ['available'], 'owner-id': [OWNER_ID], 'is-default': ['false'] }, this.vpcId);
    return { vpcSet: match ? [vpc] : [] };
  }

  describeAvailabilityZones(p: Ec2Params): Record<string, unknown> {
    const names = strings(p.ZoneName);
    const ids = strings(p.ZoneId);
    const all = Array.from({ length: this.zones }, (_, i) => ({
      zoneName: `${this.region}${zoneLetter(i)}`,
      zoneId: `${regionCode(this.region)}-az${i + 1}`,
      zoneType: 'availability-zone',
      zoneState: 'available',
      regionName: this.region,
      groupName: this.region,
      networkBorderGroup: this.region,
      optInStatus: 'opt-in-not-required',
    }));
    for (const n of names) if (!all.some((z) => z.zoneName === n)) throw new AwsApiError('InvalidParameterValue', `Invalid availability zone: [${n}]`);
    for (const n of ids) if (!all.some((z) => z.zoneId === n)) throw new AwsApiError('InvalidParameterValue', `Invalid availability zone ID: [${n}]`);
    const picked = all.filter((z) => (!names.length || names.includes(z.zoneName)) && (!ids.length || ids.includes(z.zoneId)));
    return {
      availabilityZoneInfo: picked.filter((z) =>
        this.filter(p, { 'zone-name': [z.zoneName], 'zone-id': [z.zoneId], 'zone-type': [z.zoneType], state: [z.zoneState], 'region-name': [z.regionName], 'group-name': [z.groupName] }),
      ),
    };
  }

  describeSubnets(p: Ec2Params): Record<string, unknown> {
    const ids = strings(p.SubnetId);
    const all = Array.from({ length: this.zones }, (_, i) => i);
    for (const id of ids) if (!all.some((i) => subnetId(i) === id)) throw new AwsApiError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
    const out = [];
    for (const i of all) {
      const id = subnetId(i);
      if (ids.length && !ids.includes(id)) continue;
      const zone = `${this.region}${zoneLetter(i)}`;
      const cidr = subnetCidr(i, this.zones);
      const fields = { 'vpc-id': [this.vpcId], 'subnet-id': [id], 'availability-zone': [zone], 'availability-zone-id': [`${regionCode(this.region)}-az${i + 1}`], 'cidr-block': [cidr], 'cidr': [cidr], state: ['available'], 'default-for-az': ['false'], 'owner-id': [OWNER_ID] };
      if (!this.filter(p, fields, id)) continue;
      out.push({
        subnetId: id,
        subnetArn: `arn:aws:ec2:${this.region}:${OWNER_ID}:subnet/${id}`,
        vpcId: this.vpcId,
        ownerId: OWNER_ID,
        state: 'available',
        availabilityZone: zone,
        availabilityZoneId: `${regionCode(this.region)}-az${i + 1}`,
        cidrBlock: cidr,
        availableIpAddressCount: 8000000 - this.nodes().filter((n) => n.zoneIndex % this.zones === i).reduce((a, n) => a + 1 + n.podIps.length, 0),
        defaultForAz: false,
        mapPublicIpOnLaunch: true,
        assignIpv6AddressOnCreation: false,
        ipv6Native: false,
        tagSet: this.tagSet(id),
      });
    }
    return { subnetSet: out };
  }

  describeRouteTables(p: Ec2Params): Record<string, unknown> {
    const id = 'rtb-0lab000000000001';
    const ids = strings(p.RouteTableId);
    for (const x of ids) if (x !== id) throw new AwsApiError('InvalidRouteTableID.NotFound', `The routeTable ID '${x}' does not exist`);
    const fields = { 'vpc-id': [this.vpcId], 'route-table-id': [id], 'association.main': ['true'], 'route.gateway-id': ['local', 'igw-0lab000000000001'] };
    if (!this.filter(p, fields, id)) return { routeTableSet: [] };
    return {
      routeTableSet: [
        {
          routeTableId: id,
          vpcId: this.vpcId,
          ownerId: OWNER_ID,
          associationSet: [{ routeTableAssociationId: 'rtbassoc-0lab000000000001', routeTableId: id, main: true, associationState: { state: 'associated' } }],
          routeSet: [
            { destinationCidrBlock: VPC_CIDR, gatewayId: 'local', state: 'active', origin: 'CreateRouteTable' },
            { destinationCidrBlock: '0.0.0.0/0', gatewayId: 'igw-0lab000000000001', state: 'active', origin: 'CreateRoute' },
          ],
          tagSet: this.tagSet(id),
        },
      ],
    };
  }

  // ------------------------------------------------------------------ instances and network interfaces

  describeInstances(p: Ec2Params): Record<string, unknown> {
    const ids = strings(p.InstanceId);
    const nodes = this.nodes();
    for (const id of ids) {
      if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw new AwsApiError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    }
    const missing = ids.filter((id) => !nodes.some((n) => instanceIdForNode(n.name) === id));
    if (missing.length) throw new AwsApiError('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
    const reservations = [];
    for (const n of nodes) {
      const id = instanceIdForNode(n.name);
      if (ids.length && !ids.includes(id)) continue;
      const zi = n.zoneIndex % this.zones;
      const fields = { 'instance-id': [id], 'vpc-id': [this.vpcId], 'subnet-id': [subnetId(zi)], 'availability-zone': [`${this.region}${zoneLetter(zi)}`], 'private-ip-address': [n.nodeIp], 'instance-state-name': ['running'], 'network-interface.addresses.private-ip-address': [n.nodeIp, ...n.podIps] };
      if (!this.filter(p, fields, id)) continue;
      const eni = this.eniView(n);
      reservations.push({
        reservationId: `r-${id.slice(2)}`,
        ownerId: OWNER_ID,
        instancesSet: [
          {
            instanceId: id,
            instanceType: 'm5.large',
            imageId: 'ami-0lab000000000001',
            instanceState: { code: 16, name: 'running' },
            placement: { availabilityZone: `${this.region}${zoneLetter(zi)}`, tenancy: 'default' },
            privateIpAddress: n.nodeIp,
            privateDnsName: `ip-${n.nodeIp.replace(/\./g, '-')}.${this.region}.compute.internal`,
            subnetId: subnetId(zi),
            vpcId: this.vpcId,
            groupSet: [{ groupId: NODE_GROUP_ID, groupName: this.groups.get(NODE_GROUP_ID)?.name }],
            networkInterfaceSet: [
              {
                networkInterfaceId: eni.networkInterfaceId,
                subnetId: eni.subnetId,
                vpcId: this.vpcId,
                ownerId: OWNER_ID,
                status: 'in-use',
                interfaceType: 'interface',
                privateIpAddress: n.nodeIp,
                privateIpAddressesSet: eni.privateIpAddressesSet,
                groupSet: eni.groupSet,
                attachment: { attachmentId: `eni-attach-${id.slice(2)}`, deviceIndex: 0, status: 'attached', deleteOnTermination: true },
                sourceDestCheck: true,
              },
            ],
            tagSet: [{ key: 'Name', value: n.name }, { key: `kubernetes.io/cluster/${this.clusterName}`, value: 'owned' }],
          },
        ],
      });
    }
    return { reservationSet: reservations };
  }

  describeNetworkInterfaces(p: Ec2Params): Record<string, unknown> {
    const ids = strings(p.NetworkInterfaceId);
    const nodes = this.nodes();
    const missing = ids.filter((id) => !nodes.some((n) => eniIdForNode(n.name) === id));
    if (missing.length) throw new AwsApiError('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${missing[0]}' does not exist`);
    const out = [];
    for (const n of nodes) {
      const eni = this.eniView(n);
      if (ids.length && !ids.includes(eni.networkInterfaceId)) continue;
      const addresses = [n.nodeIp, ...n.podIps];
      const fields = {
        'network-interface-id': [eni.networkInterfaceId],
        'vpc-id': [this.vpcId],
        'subnet-id': [eni.subnetId],
        'availability-zone': [eni.availabilityZone],
        'addresses.private-ip-address': addresses,
        'private-ip-address': [n.nodeIp],
        'attachment.instance-id': [instanceIdForNode(n.name)],
        'group-id': [NODE_GROUP_ID],
        status: ['in-use'],
      };
      if (!this.filter(p, fields, eni.networkInterfaceId)) continue;
      out.push(eni);
    }
    return { networkInterfaceSet: out };
  }

  private eniView(n: Ec2NodeView): { networkInterfaceId: string; subnetId: string; availabilityZone: string } & Record<string, unknown> {
    const zi = n.zoneIndex % this.zones;
    const id = eniIdForNode(n.name);
    return {
      networkInterfaceId: id,
      subnetId: subnetId(zi),
      vpcId: this.vpcId,
      availabilityZone: `${this.region}${zoneLetter(zi)}`,
      ownerId: OWNER_ID,
      status: 'in-use',
      interfaceType: 'interface',
      description: '',
      privateIpAddress: n.nodeIp,
      privateIpAddressesSet: [{ privateIpAddress: n.nodeIp, primary: true }, ...n.podIps.map((ip) => ({ privateIpAddress: ip, primary: false }))],
      groupSet: [{ groupId: NODE_GROUP_ID, groupName: this.groups.get(NODE_GROUP_ID)?.name }],
      attachment: { attachmentId: `eni-attach-${id.slice(4)}`, instanceId: instanceIdForNode(n.name), instanceOwnerId: OWNER_ID, deviceIndex: 0, status: 'attached' },
      tagSet: this.tagSet(id),
      sourceDestCheck: true,
    };
  }

  // ------------------------------------------------------------------ security groups

  describeSecurityGroups(p: Ec2Params): Record<string, unknown> {
    const ids = strings(p.GroupId);
    const names = strings(p.GroupName);
    for (const id of ids) if (!this.groups.has(id)) throw new AwsApiError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    for (const n of names) if (![...this.groups.values()].some((g) => g.name === n)) throw new AwsApiError('InvalidGroup.NotFound', `The security group '${n}' does not exist in default VPC '${this.vpcId}'`);
    const out = [];
    for (const g of this.groups.values()) {
      if (ids.length && !ids.includes(g.id)) continue;
      if (names.length && !names.includes(g.name)) continue;
      const fields = {
        'group-id': [g.id],
        'group-name': [g.name],
        description: [g.description],
        'vpc-id': [g.vpcId],
        'owner-id': [OWNER_ID],
        'ip-permission.protocol': g.ingress.map((x) => x.protocol),
        'ip-permission.group-id': g.ingress.filter((x) => x.peer.startsWith('sg:')).map((x) => x.peer.slice(3)),
        'ip-permission.cidr': g.ingress.filter((x) => x.peer.startsWith('cidr:')).map((x) => x.peer.slice(5)),
      };
      if (!this.filter(p, fields, g.id)) continue;
      out.push(this.groupView(g));
    }
    return { securityGroupInfo: out };
  }

  createSecurityGroup(p: Ec2Params): Record<string, unknown> {
    const name = str(p.GroupName);
    const description = str(p.GroupDescription);
    const vpcId = str(p.VpcId) || this.vpcId;
    if (!name) throw new AwsApiError('MissingParameter', 'The request must contain the parameter groupName');
    if (!description) throw new AwsApiError('MissingParameter', 'The request must contain the parameter groupDescription');
    if (name.length > 255 || name.startsWith('sg-')) throw new AwsApiError('InvalidParameterValue', `Invalid value '${name}' for groupName. It must be at most 255 characters and must not start with sg-`);
    if (vpcId !== this.vpcId) throw new AwsApiError('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
    if ([...this.groups.values()].some((g) => g.name === name && g.vpcId === vpcId)) throw new AwsApiError('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
    const id = `sg-${createHash('sha256').update(`sg:${this.vpcId}:${++this.groupSeq}`).digest('hex').slice(0, 17)}`;
    this.groups.set(id, { id, name, description, vpcId, ingress: [], egress: [{ protocol: '-1', peer: 'cidr:0.0.0.0/0' }] });
    const tags = new Map<string, string>();
    for (const spec of objects(p.TagSpecification)) {
      const type = str(spec.ResourceType);
      if (type && type !== 'security-group') throw new AwsApiError('InvalidParameterValue', `'${type}' is not a valid taggable resource type for this operation.`);
      for (const t of objects(spec.Tag)) tags.set(str(t.Key), str(t.Value));
    }
    this.tags.set(id, tags);
    return { groupId: id, tagSet: this.tagSet(id) };
  }

  deleteSecurityGroup(p: Ec2Params): Record<string, unknown> {
    const g = this.group(p);
    if (g.id === DEFAULT_GROUP_ID || g.id === NODE_GROUP_ID) throw new AwsApiError('CannotDelete', `the specified group: "${g.id}" name: "${g.name}" cannot be deleted by a user`);
    const referencedBy = [...this.groups.values()].find((o) => o.id !== g.id && [...o.ingress, ...o.egress].some((x) => x.peer === `sg:${g.id}`));
    if (referencedBy || this.options.groupInUse?.(g.id)) throw new AwsApiError('DependencyViolation', `resource ${g.id} has a dependent object`);
    this.groups.delete(g.id);
    this.tags.delete(g.id);
    return { return: true, groupId: g.id };
  }

  authorizeSecurityGroupIngress(p: Ec2Params): Record<string, unknown> {
    const g = this.group(p);
    const perms = this.permissions(p);
    for (const x of perms) {
      if (g.ingress.some((y) => samePermission(x, y))) throw new AwsApiError('InvalidPermission.Duplicate', `the specified rule "${describePermission(x)}" already exists`);
    }
    g.ingress.push(...perms);
    return {
      return: true,
      securityGroupRuleSet: perms.map((x, i) => ({
        securityGroupRuleId: `sgr-${createHash('sha256').update(`${g.id}:${g.ingress.length}:${i}`).digest('hex').slice(0, 17)}`,
        groupId: g.id,
        groupOwnerId: OWNER_ID,
        isEgress: false,
        ipProtocol: x.protocol,
        fromPort: x.from ?? -1,
        toPort: x.to ?? -1,
        ...peerView(x),
        ...(x.description ? { description: x.description } : {}),
      })),
    };
  }

  revokeSecurityGroupIngress(p: Ec2Params): Record<string, unknown> {
    const g = this.group(p);
    const perms = this.permissions(p);
    for (const x of perms) {
      if (!g.ingress.some((y) => samePermission(x, y))) throw new AwsApiError('InvalidPermission.NotFound', 'The specified rule does not exist in this security group.');
    }
    g.ingress = g.ingress.filter((y) => !perms.some((x) => samePermission(x, y)));
    return { return: true };
  }

  // ------------------------------------------------------------------ tags

  createTags(p: Ec2Params): Record<string, unknown> {
    const resources = strings(p.ResourceId);
    if (!resources.length) throw new AwsApiError('MissingParameter', 'The request must contain the parameter resourceIdSet');
    for (const r of resources) this.requireResource(r);
    for (const r of resources) {
      const tags = this.tags.get(r) ?? new Map<string, string>();
      for (const t of objects(p.Tag)) {
        const k = str(t.Key);
        if (!k || k.toLowerCase().startsWith('aws:')) throw new AwsApiError('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use`);
        tags.set(k, str(t.Value));
      }
      this.tags.set(r, tags);
    }
    return { return: true };
  }

  deleteTags(p: Ec2Params): Record<string, unknown> {
    const resources = strings(p.ResourceId);
    for (const r of resources) this.requireResource(r);
    const wanted = objects(p.Tag);
    for (const r of resources) {
      const tags = this.tags.get(r);
      if (!tags) continue;
      if (!wanted.length) {
        tags.clear();
        continue;
      }
      for (const t of wanted) {
        const k = str(t.Key);
        // A value given must match; no value deletes the key whatever its value.
        if (t.Value === undefined || tags.get(k) === str(t.Value)) tags.delete(k);
      }
    }
    return { return: true };
  }

  /** The tag map of a security group (for the ELBv2 side and tests). */
  groupTags(id: string): Record<string, string> {
    return Object.fromEntries(this.tags.get(id) ?? []);
  }

  hasGroup(id: string): boolean {
    return this.groups.has(id);
  }

  // ------------------------------------------------------------------ helpers

  private requireResource(id: string): void {
    if (id.startsWith('sg-')) {
      if (!this.groups.has(id)) throw new AwsApiError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
      return;
    }
    if (id.startsWith('subnet-')) {
      if (!Array.from({ length: this.zones }, (_, i) => subnetId(i)).includes(id)) throw new AwsApiError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
      return;
    }
    if (id === this.vpcId || id === 'rtb-0lab000000000001') return;
    if (id.startsWith('i-') || id.startsWith('eni-')) {
      if (this.nodes().some((n) => instanceIdForNode(n.name) === id || eniIdForNode(n.name) === id)) return;
      throw new AwsApiError(id.startsWith('i-') ? 'InvalidInstanceID.NotFound' : 'InvalidNetworkInterfaceID.NotFound', `The ID '${id}' does not exist`);
    }
    throw new AwsApiError('InvalidID', `The ID '${id}' is not valid`);
  }

  private group(p: Ec2Params): GroupRec {
    const id = str(p.GroupId);
    const name = str(p.GroupName);
    if (!id && !name) throw new AwsApiError('MissingParameter', 'The request must contain the parameter groupId or groupName');
    const g = id ? this.groups.get(id) : [...this.groups.values()].find((x) => x.name === name);
    if (!g) throw new AwsApiError('InvalidGroup.NotFound', `The security group '${id || name}' does not exist`);
    return g;
  }

  /** `IpPermissions.N` (or the legacy top-level CidrIp/IpProtocol/FromPort/ToPort) as one permission per peer. */
  private permissions(p: Ec2Params): Permission[] {
    const out: Permission[] = [];
    const perms = objects(p.IpPermissions);
    if (!perms.length && p.IpProtocol !== undefined) {
      perms.push({ IpProtocol: str(p.IpProtocol), FromPort: str(p.FromPort), ToPort: str(p.ToPort), IpRanges: [{ CidrIp: str(p.CidrIp) }] });
    }
    for (const perm of perms) {
      const protocol = normaliseProtocol(str(perm.IpProtocol));
      const ports = protocol === '-1' ? {} : { from: Number(str(perm.FromPort)), to: Number(str(perm.ToPort)) };
      if (protocol !== '-1' && (!Number.isInteger(ports.from) || !Number.isInteger(ports.to))) {
        throw new AwsApiError('InvalidParameterValue', `Invalid value for portRange. Must specify both from and to ports with TCP/UDP.`);
      }
      const peers: Array<{ peer: string; description?: string }> = [];
      for (const r of objects(perm.IpRanges)) peers.push(withDescription(`cidr:${str(r.CidrIp)}`, r));
      for (const r of objects(perm.Ipv6Ranges)) peers.push(withDescription(`cidr6:${str(r.CidrIpv6)}`, r));
      for (const r of objects(perm.PrefixListIds)) peers.push(withDescription(`pl:${str(r.PrefixListId)}`, r));
      for (const r of objects(perm.Groups)) {
        const gid = str(r.GroupId);
        if (!this.groups.has(gid)) throw new AwsApiError('InvalidGroup.NotFound', `The security group '${gid}' does not exist`);
        peers.push(withDescription(`sg:${gid}`, r));
      }
      if (!peers.length) throw new AwsApiError('InvalidParameterValue', 'The request must contain at least one IP range, IPv6 range, prefix list or security group as the rule source.');
      for (const x of peers) {
        if (x.peer.startsWith('cidr:') && !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(x.peer.slice(5))) throw new AwsApiError('InvalidParameterValue', `CIDR block ${x.peer.slice(5)} is malformed`);
        out.push({ protocol, ...ports, peer: x.peer, ...(x.description ? { description: x.description } : {}) });
      }
    }
    return out;
  }

  private groupView(g: GroupRec): Record<string, unknown> {
    return {
      groupId: g.id,
      groupName: g.name,
      groupDescription: g.description,
      vpcId: g.vpcId,
      ownerId: OWNER_ID,
      ipPermissions: groupPermissions(g.ingress),
      ipPermissionsEgress: groupPermissions(g.egress),
      tagSet: this.tagSet(g.id),
    };
  }

  private tagSet(id: string): Array<{ key: string; value: string }> {
    return [...(this.tags.get(id) ?? new Map<string, string>())].map(([key, value]) => ({ key, value }));
  }

  /**
   * EC2 filters: every filter must match (AND); within a filter any value matches (OR), with `*` and `?`
   * wildcards. `tag:<key>` matches the tag's value, `tag-key` a key. An unknown filter name is an error, as on AWS.
   */
  private filter(p: Ec2Params, fields: Record<string, string[]>, resourceId?: string): boolean {
    const tags = resourceId ? (this.tags.get(resourceId) ?? new Map<string, string>()) : new Map<string, string>();
    for (const f of objects(p.Filter)) {
      const name = str(f.Name);
      const values = strings(f.Value);
      let have: string[];
      if (name.startsWith('tag:')) {
        const v = tags.get(name.slice(4));
        have = v === undefined ? [] : [v];
      } else if (name === 'tag-key') {
        have = [...tags.keys()];
      } else if (name === 'tag-value') {
        have = [...tags.values()];
      } else if (Object.prototype.hasOwnProperty.call(fields, name)) {
        have = fields[name] ?? [];
      } else {
        throw new AwsApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
      }
      if (!values.some((v) => have.some((h) => wildcardMatch(v, h)))) return false;
    }
    return true;
  }
}

function withDescription(peer: string, r: Record<string, FormValue>): { peer: string; description?: string } {
  const d = str(r.Description);
  return d ? { peer, description: d } : { peer };
}

function samePermission(a: Permission, b: Permission): boolean {
  return a.protocol === b.protocol && a.from === b.from && a.to === b.to && a.peer === b.peer;
}

function describePermission(x: Permission): string {
  const peer = x.peer.slice(x.peer.indexOf(':') + 1);
  const proto = x.protocol === '-1' ? 'ALL' : x.protocol.toUpperCase();
  return `peer: ${peer}, ${proto}, from port: ${x.from ?? -1}, to port: ${x.to ?? -1}, ALLOW`;
}

function normaliseProtocol(p: string): string {
  const l = p.toLowerCase();
  if (l === '6') return 'tcp';
  if (l === '17') return 'udp';
  if (l === '1') return 'icmp';
  if (l === 'all' || l === '-1' || l === '') return '-1';
  if (l === 'tcp' || l === 'udp' || l === 'icmp' || l === 'icmpv6' || /^\d+$/.test(l)) return l;
  throw new AwsApiError('InvalidParameterValue', `Invalid value '${p}' for IP protocol. Unknown protocol.`);
}

function peerView(x: Permission): Record<string, string> {
  const v = x.peer.slice(x.peer.indexOf(':') + 1);
  if (x.peer.startsWith('cidr:')) return { cidrIpv4: v };
  if (x.peer.startsWith('cidr6:')) return { cidrIpv6: v };
  if (x.peer.startsWith('pl:')) return { prefixListId: v };
  return { referencedGroupInfo: v };
}

/** Permissions as DescribeSecurityGroups shows them: one entry per (protocol, ports) with its peers listed. */
function groupPermissions(perms: Permission[]): Array<Record<string, unknown>> {
  const byKey = new Map<string, Permission[]>();
  for (const x of perms) {
    const k = `${x.protocol}|${x.from ?? ''}|${x.to ?? ''}`;
    byKey.set(k, [...(byKey.get(k) ?? []), x]);
  }
  return [...byKey.values()].map((xs) => {
    const first = xs[0]!;
    const d = (x: Permission) => (x.description ? { description: x.description } : {});
    const of = (prefix: string) => xs.filter((x) => x.peer.startsWith(prefix));
    return {
      ipProtocol: first.protocol,
      ...(first.from !== undefined ? { fromPort: first.from, toPort: first.to } : {}),
      ipRanges: of('cidr:').map((x) => ({ cidrIp: x.peer.slice(5), ...d(x) })),
      ipv6Ranges: of('cidr6:').map((x) => ({ cidrIpv6: x.peer.slice(6), ...d(x) })),
      prefixListIds: of('pl:').map((x) => ({ prefixListId: x.peer.slice(3), ...d(x) })),
      groups: of('sg:').map((x) => ({ groupId: x.peer.slice(3), userId: OWNER_ID, ...d(x) })),
    };
  });
}

/** `127.0.0.0/8` split evenly between the zones' subnets (/9 for two zones). */
function subnetCidr(i: number, zones: number): string {
  const bits = Math.ceil(Math.log2(Math.max(zones, 2)));
  const size = 1 << (24 - bits);
  const start = (127 << 24) + i * size;
  return `${start >>> 24}.${(start >>> 16) & 255}.${(start >>> 8) & 255}.${start & 255}/${8 + bits}`;
}

function regionCode(region: string): string {
  // us-east-1 → use1, eu-west-2 → euw2
  const [geo = '', dir = '', n = ''] = region.split('-');
  return `${geo}${dir.slice(0, 1)}${n}`;
}

function str(v: FormValue | undefined): string {
  return typeof v === 'string' ? v : '';
}

function strings(v: FormValue | undefined): string[] {
  if (v === undefined || v === '') return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function objects(v: FormValue | undefined): Array<Record<string, FormValue>> {
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is Record<string, FormValue> => typeof x === 'object' && x !== null && !Array.isArray(x));
}

/**
 * The EC2 view of a cluster's nodes: each Node (InternalIP) with the IPs of the running pods bound to it, in
 * zone order of the nodes' names. Read from the cluster at every call.
 */
export function ec2NetworkOf(cluster: { list(kind: string): { items: Array<{ metadata: { name: string }; spec?: unknown; status?: unknown }> } }): () => Ec2NodeView[] {
  return () => {
    const nodes = cluster
      .list('Node')
      .items.map((n) => n)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const pods = cluster.list('Pod').items;
    return nodes.map((n, i) => {
      const addresses = ((n.status as { addresses?: Array<{ type?: string; address?: string }> } | undefined)?.addresses ?? []);
      const nodeIp = addresses.find((a) => a.type === 'InternalIP')?.address ?? '127.0.0.1';
      const podIps = pods
        .filter((p) => (p.spec as { nodeName?: string } | undefined)?.nodeName === n.metadata.name)
        .map((p) => (p.status as { podIP?: string } | undefined)?.podIP)
        .filter((ip): ip is string => typeof ip === 'string' && ip !== nodeIp);
      return { name: n.metadata.name, zoneIndex: i, nodeIp, podIps };
    });
  };
}
