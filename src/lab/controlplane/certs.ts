/**
 * X.509 certificates for the real control plane, made with node:crypto alone: ECDSA P-256 keys, a small DER
 * encoder for the certificate structure (RFC 5280), and `crypto.sign` for the signature. Only what the lab needs:
 * one CA, server certificates with DNS/IP subject alternative names, client certificates with CN and O.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export interface KeyPair {
  keyPem: string;
  certPem: string;
  key: KeyObject;
}

export interface CertRequest {
  commonName: string;
  organizations?: string[];
  /** DNS names and IP addresses for a server certificate. */
  hosts?: string[];
  usage: 'server' | 'client' | 'both';
  validDays?: number;
}

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export function newCa(commonName: string, validDays = 365): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = encodeName(commonName, []);
  const tbs = tbsCertificate({
    issuer: name,
    subject: name,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    validDays,
    extensions: [
      extension(OID.basicConstraints, true, seq(bool(true))),
      // digitalSignature, keyCertSign, cRLSign
      extension(OID.keyUsage, true, bitString(Buffer.from([0x86]), 1)),
    ],
  });
  return finish(tbs, privateKey, privateKey);
}

export function issueCert(ca: KeyPair, req: CertRequest): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caCert = new X509Certificate(ca.certPem);
  const issuer = encodeName(cnOf(caCert.subject), []);
  const eku: Buffer[] = [];
  if (req.usage !== 'client') eku.push(oid(OID.serverAuth));
  if (req.usage !== 'server') eku.push(oid(OID.clientAuth));
  const extensions = [
    extension(OID.basicConstraints, true, seq()),
    // digitalSignature, keyEncipherment
    extension(OID.keyUsage, true, bitString(Buffer.from([0xa0]), 5)),
    extension(OID.extKeyUsage, false, seq(...eku)),
  ];
  if (req.hosts && req.hosts.length > 0) {
    const names = req.hosts.map((h) => {
      if (isIP(h) === 4) return tlv(0x87, Buffer.from(h.split('.').map(Number)));
      if (isIP(h) === 6) throw new Error(`IPv6 subject alternative names are not supported: ${h}`);
      return tlv(0x82, Buffer.from(h, 'ascii'));
    });
    extensions.push(extension(OID.subjectAltName, false, seq(...names)));
  }
  const tbs = tbsCertificate({
    issuer,
    subject: encodeName(req.commonName, req.organizations ?? []),
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    validDays: req.validDays ?? 365,
    extensions,
  });
  return finish(tbs, ca.key, privateKey);
}

/** A key for signing service-account tokens (the API server's issuer key and the controller manager's). */
export function newSigningKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function finish(tbs: Buffer, signer: KeyObject, subjectKey: KeyObject): KeyPair {
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(signature, 0));
  const certPem = pem('CERTIFICATE', der);
  // Parse back: a malformed encoding fails here, not later inside a Go TLS handshake.
  new X509Certificate(certPem);
  const keyPem = subjectKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, certPem, key: createPrivateKey(keyPem) };
}

function tbsCertificate(p: { issuer: Buffer; subject: Buffer; spki: Buffer; validDays: number; extensions: Buffer[] }): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // positive
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + p.validDays * 24 * 60 * 60 * 1000);
  return seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    seq(oid(OID.ecdsaWithSha256)),
    p.issuer,
    seq(time(notBefore), time(notAfter)),
    p.subject,
    p.spki,
    tlv(0xa3, seq(...p.extensions)),
  );
}

function encodeName(commonName: string, organizations: string[]): Buffer {
  const rdn = (type: string, value: string): Buffer => tlv(0x31, seq(oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
  return seq(...organizations.map((o) => rdn(OID.organization, o)), rdn(OID.commonName, commonName));
}

function cnOf(subject: string): string {
  const line = subject.split('\n').find((l) => l.startsWith('CN='));
  return line ? line.slice(3) : subject;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), tlv(0x04, value)) : seq(oid(id), tlv(0x04, value));
}

function tlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let header: Buffer;
  if (len < 0x80) header = Buffer.from([tag, len]);
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
    header = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([header, content]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function bool(v: boolean): Buffer {
  return tlv(0x01, Buffer.from([v ? 0xff : 0]));
}

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && ((b[1] ?? 0) & 0x80) === 0) b = b.subarray(1);
  if (((b[0] ?? 0) & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function bitString(bytes: Buffer, unusedBits: number): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let n = Math.floor(p / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const compact = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  // UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(compact.slice(2), 'ascii')) : tlv(0x18, Buffer.from(compact, 'ascii'));
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
