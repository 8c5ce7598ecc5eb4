import { createSecureContext, type SecureContext } from 'node:tls';
import { issueCert, newCa, type KeyPair } from '../controlplane/certs.js';
import { DataPlaneServer, type DataPlaneHost } from './dataplane.js';

/**
 * The certificates of the lab ALB's HTTPS listeners. A listener names ACM certificate ARNs the lab cannot fetch,
 * so the lab stands in for them: one lab CA (its PEM is what a user trusts, e.g. NODE_EXTRA_CA_CERTS), and per
 * listener a certificate for the names the real one would be bought for — every host its rules match
 * (host-header conditions, wildcards included) and the load balancer's DNS name. As an ALB does with SNI, a
 * client naming one of them gets a certificate for it; any other name (or none) gets the listener's default
 * certificate, which the client then rejects as not matching — the failure a user sees on AWS.
 */
export class AlbCertificates {
  private ca?: KeyPair;
  /** Sorted name list → certificate and its secure context (issued once per set of names). */
  private readonly issued = new Map<string, { pair: KeyPair; context: SecureContext }>();

  /** The lab CA's certificate (PEM), made on first use. */
  caPem(): string {
    return this.authority().certPem;
  }

  /** A secure context whose certificate covers exactly `names` (DNS names, `*.` wildcards allowed). */
  contextFor(names: readonly string[]): SecureContext {
    return this.issue(names).context;
  }

  /** The PEM key and certificate covering `names`. */
  pemFor(names: readonly string[]): { key: string; cert: string } {
    const { pair } = this.issue(names);
    return { key: pair.keyPem, cert: pair.certPem };
  }

  private issue(names: readonly string[]): { pair: KeyPair; context: SecureContext } {
    const sorted = [...new Set(names.map((n) => n.toLowerCase()))].sort();
    const key = sorted.join(',');
    let hit = this.issued.get(key);
    if (!hit) {
      const pair = issueCert(this.authority(), { commonName: sorted[0] ?? 'lab-alb', hosts: sorted, usage: 'server' });
      hit = { pair, context: createSecureContext({ key: pair.keyPem, cert: pair.certPem }) };
      this.issued.set(key, hit);
    }
    return hit;
  }

  private authority(): KeyPair {
    if (!this.ca) this.ca = newCa('alb-rollout lab ALB CA');
    return this.ca;
  }
}

/** Whether a TLS server name is covered by a certificate name (`*.example.com` covers one label). */
export function nameMatches(certName: string, serverName: string): boolean {
  const c = certName.toLowerCase();
  const s = serverName.toLowerCase();
  if (c === s) return true;
  if (!c.startsWith('*.')) return false;
  const rest = s.indexOf('.');
  return rest > 0 && s.slice(rest + 1) === c.slice(2);
}

/**
 * The certificate an HTTPS listener presents for a server name: one for that name when the listener's names
 * cover it, else the default one (all the names, never the asked one).
 */
export function listenerContext(certs: AlbCertificates, names: readonly string[], serverName: string): SecureContext {
  const hit = names.find((n) => nameMatches(n, serverName));
  return certs.contextFor(hit ? [hit] : names);
}

/**
 * The TLS server of one HTTPS listener: the ALB's data plane for that listener (its rules), on its own loopback
 * port, presenting for each SNI name the certificate `names()` (read at each handshake: rules change) covers.
 */
export async function httpsListenerServer(
  host: DataPlaneHost,
  lbArn: string,
  listener: { readonly arn: string; readonly port: number },
  certs: AlbCertificates,
  names: () => string[],
): Promise<DataPlaneServer> {
  const server = new DataPlaneServer(host, lbArn, {
    arn: listener.arn,
    get port() {
      return listener.port;
    },
    certificate: (serverName) => listenerContext(certs, names(), serverName),
    defaultCertificate: certs.pemFor(names()),
  });
  await server.listen();
  return server;
}
