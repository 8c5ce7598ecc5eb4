import type { KubeObject } from '../../manifests/types.js';
import { ANN, BuildModelError } from './annotations.js';
import { a, o } from './util.js';

/**
 * The listeners of an IngressGroup as LBC builds them: per member, `listen-ports` (a JSON list of {"HTTP"|"HTTPS":
 * port}; default HTTP:80, or HTTPS:443 when the member has a certificate or a TLS section), merged over the group
 * (one protocol per port); an HTTPS listener's certificates from `certificate-arn` (comma separated, the first the
 * default); `ssl-redirect: <https port>` (one per group, naming an HTTPS listener) turns every HTTP listener into a
 * 301 to that port with no rules. Which member listens on which port decides which rules go on which listener.
 *
 * Not emulated: certificate discovery through ACM (an HTTPS listener needs `certificate-arn`), ssl-policy,
 * IngressClassParams, inbound CIDRs, mutual TLS.
 */

export type ListenProtocol = 'HTTP' | 'HTTPS';

export interface ListenerModel {
  port: number;
  protocol: ListenProtocol;
  /** HTTPS: the certificate ARNs (default first). */
  certificates: string[];
  /** The members (`ns/name`) whose rules go on this listener; none when it redirects. */
  members: string[];
  /** ssl-redirect: the HTTPS port every request is redirected to (301). */
  redirectTo?: number;
}

function memberKey(ing: KubeObject): string {
  return `${ing.metadata.namespace ?? 'default'}/${ing.metadata.name}`;
}

function certificatesOf(ing: KubeObject): string[] {
  const raw = ing.metadata.annotations?.[`${ANN}certificate-arn`];
  return raw ? raw.split(',').map((c) => c.trim()).filter((c) => c !== '') : [];
}

/** One member's ports and protocols (LBC's computeIngressListenPorts). */
export function memberListenPorts(ing: KubeObject): Map<number, ListenProtocol> {
  const raw = ing.metadata.annotations?.[`${ANN}listen-ports`];
  if (raw === undefined) {
    const preferTls = certificatesOf(ing).length > 0 || a(o(ing.spec).tls).length > 0;
    return new Map([preferTls ? [443, 'HTTPS'] : [80, 'HTTP']]);
  }
  let entries: unknown;
  try {
    entries = JSON.parse(raw);
  } catch (e) {
    throw new BuildModelError(`failed to parse listen-ports configuration: \`${raw}\`: ${(e as Error).message}`);
  }
  if (!Array.isArray(entries)) throw new BuildModelError(`failed to parse listen-ports configuration: \`${raw}\`: not a list`);
  if (entries.length === 0) throw new BuildModelError(`empty listen-ports configuration: \`${raw}\``);
  const out = new Map<number, ListenProtocol>();
  for (const entry of entries) {
    for (const [protocol, port] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
      const p = Number(port);
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BuildModelError(`listen port must be within [1, 65535]: ${String(port)}`);
      if (protocol !== 'HTTP' && protocol !== 'HTTPS') throw new BuildModelError(`listen protocol must be within [HTTP, HTTPS]: ${protocol}`);
      out.set(p, protocol);
    }
  }
  return out;
}

export function groupListeners(members: KubeObject[]): ListenerModel[] {
  const byPort = new Map<number, ListenerModel>();
  for (const ing of members) {
    for (const [port, protocol] of memberListenPorts(ing)) {
      const cur = byPort.get(port);
      if (cur && cur.protocol !== protocol) throw new BuildModelError(`conflicting protocol, ${cur.members[0] ?? ''}: ${cur.protocol} | ${memberKey(ing)}: ${protocol}`);
      const l = cur ?? { port, protocol, certificates: [], members: [] };
      l.members.push(memberKey(ing));
      if (protocol === 'HTTPS') for (const c of certificatesOf(ing)) if (!l.certificates.includes(c)) l.certificates.push(c);
      byPort.set(port, l);
    }
  }
  const redirects = new Set<number>();
  for (const ing of members) {
    const raw = ing.metadata.annotations?.[`${ANN}ssl-redirect`];
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw.trim())) throw new BuildModelError(`failed to parse int32 annotation, ${ANN}ssl-redirect: ${raw}`);
    redirects.add(Number(raw.trim()));
  }
  if (redirects.size > 1) throw new BuildModelError(`conflicting sslRedirect port: [${[...redirects].sort((x, y) => x - y).join(' ')}]`);
  const [redirect] = redirects;
  if (redirect !== undefined) {
    const target = byPort.get(redirect);
    if (!target) throw new BuildModelError(`listener does not exist for SSLRedirect port: ${redirect}`);
    if (target.protocol !== 'HTTPS') throw new BuildModelError(`listener protocol non-SSL for SSLRedirect port: ${redirect}`);
    for (const l of byPort.values()) {
      if (l.protocol !== 'HTTP') continue;
      l.redirectTo = redirect;
      l.members = [];
    }
  }
  for (const l of byPort.values()) {
    if (l.protocol === 'HTTPS' && l.certificates.length === 0) {
      throw new BuildModelError(
        `no certificate for the HTTPS listener on port ${l.port}: the lab does not discover ACM certificates by host — set ${ANN}certificate-arn on ${l.members.join(', ')}`,
      );
    }
  }
  return [...byPort.values()].sort((x, y) => x.port - y.port);
}
