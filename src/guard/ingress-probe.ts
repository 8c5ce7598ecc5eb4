import type { JsonObject, KubeObject } from '../manifests/types.js';
import type { ProbeTarget } from './preflight.js';

/**
 * Where the probe goes for an Ingress, as the AWS Load Balancer Controller builds its listeners: scheme and port
 * from `alb.ingress.kubernetes.io/listen-ports` (default HTTP:80, or HTTPS:443 when a certificate is configured),
 * HTTPS preferred (with `ssl-redirect`, HTTP only redirects there — the probe goes where the redirect leads), the
 * first rule's host as Host header and TLS server name, and a path from that rule (its first concrete path).
 * The URL names the ALB itself; the Host header selects the rule.
 */

const LISTEN_PORTS = 'alb.ingress.kubernetes.io/listen-ports';
const SSL_REDIRECT = 'alb.ingress.kubernetes.io/ssl-redirect';
const CERTIFICATE = 'alb.ingress.kubernetes.io/certificate-arn';

export interface Listener {
  protocol: 'HTTP' | 'HTTPS';
  port: number;
}

/** The listeners an Ingress asks for; a value that does not parse is ignored like LBC's default. */
export function ingressListeners(annotations: Record<string, string>): Listener[] {
  const raw = annotations[LISTEN_PORTS];
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (Array.isArray(parsed)) {
        const out: Listener[] = [];
        for (const entry of parsed) {
          if (!entry || typeof entry !== 'object') continue;
          for (const [proto, port] of Object.entries(entry as Record<string, unknown>)) {
            const p = proto.toUpperCase();
            if ((p === 'HTTP' || p === 'HTTPS') && Number.isInteger(Number(port))) out.push({ protocol: p, port: Number(port) });
          }
        }
        if (out.length > 0) return out;
      }
    } catch {
      // fall through to the default
    }
  }
  return annotations[CERTIFICATE] ? [{ protocol: 'HTTPS', port: 443 }] : [{ protocol: 'HTTP', port: 80 }];
}

/** A path the rule matches literally: Exact/Prefix paths as they are; `/*`-style patterns cut at the wildcard. */
function concretePath(p: string | undefined): string {
  if (!p) return '/';
  const cut = p.split('*')[0] ?? '/';
  return cut.startsWith('/') ? cut : `/${cut}`;
}

export interface IngressProbe extends ProbeTarget {
  /** What was chosen and why, for the log. */
  chosen: string;
}

export function ingressProbeTarget(ingress: KubeObject, albHostname: string, path?: string): IngressProbe {
  const annotations = ingress.metadata.annotations ?? {};
  const listeners = ingressListeners(annotations);
  const https = listeners.find((l) => l.protocol === 'HTTPS');
  const http = listeners.find((l) => l.protocol === 'HTTP');
  const redirect = annotations[SSL_REDIRECT] !== undefined && https !== undefined;
  const listener = https ?? http ?? listeners[0]!;
  const rules = (((ingress.spec ?? {}) as JsonObject).rules ?? []) as JsonObject[];
  const rule = rules.find((r) => typeof r.host === 'string' && r.host !== '' && !String(r.host).startsWith('*')) ?? rules[0];
  const host = typeof rule?.host === 'string' && rule.host !== '' && !rule.host.startsWith('*') ? rule.host : undefined;
  const paths = (((rule?.http as JsonObject | undefined)?.paths ?? []) as JsonObject[]).map((p) => (typeof p.path === 'string' ? p.path : '/'));
  const probePath = path ?? concretePath(paths[0]);
  const scheme = listener.protocol === 'HTTPS' ? 'https' : 'http';
  const defaultPort = scheme === 'https' ? 443 : 80;
  const url = `${scheme}://${albHostname}${listener.port === defaultPort ? '' : `:${listener.port}`}${probePath}`;
  const why = [
    `${listener.protocol}:${listener.port} from ${annotations[LISTEN_PORTS] ? 'listen-ports' : annotations[CERTIFICATE] ? 'certificate-arn (default HTTPS:443)' : 'the default listener'}`,
    redirect && http ? `HTTP:${http.port} redirects to it (ssl-redirect)` : '',
    host ? `Host ${host} from the rule` : '',
    `path ${probePath}${path ? ' (given)' : ' from the rule'}`,
  ].filter(Boolean);
  return { url, ...(host ? { host, servername: host } : {}), chosen: why.join(', ') };
}
