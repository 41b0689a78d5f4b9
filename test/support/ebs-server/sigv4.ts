// Signature Version 4 verification for the test EBS/EC2 server, written from AWS's description of
// the signing process: the server rebuilds the canonical request from what arrived on the wire
// (raw header lines, raw path and query) and recomputes the signature with the configured secret,
// so a client that signs anything differently from AWS is refused here as it would be there.
// The payload hash is the x-amz-content-sha256 header when the client sent one (it must then be
// the body's SHA-256, or UNSIGNED-PAYLOAD where the operation allows an unsigned body, as
// PutSnapshotBlock does), otherwise the SHA-256 of the body.
import crypto from 'node:crypto';
import type http from 'node:http';

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

export type SigV4Failure =
  | { kind: 'missing'; message: string }
  | { kind: 'unknown-key'; message: string }
  | { kind: 'bad-signature'; message: string }
  | { kind: 'expired'; message: string }
  | { kind: 'incomplete'; message: string };

export interface SigV4Check {
  readonly service: string;
  /** Whether the operation may send UNSIGNED-PAYLOAD instead of the body's hash. */
  readonly unsignedPayloadAllowed: boolean;
  /** How far the request's x-amz-date may be from the server's clock. */
  readonly maxSkewMs: number;
}

/** RFC 3986 encoding, as SigV4 wants it: everything but unreserved characters is %XX (upper case). */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

function hmac(key: Buffer | string, data: string): Buffer {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: Buffer | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Non-S3 services encode the already-encoded path once more, segment by segment. */
function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '.') continue;
    if (seg === '..') {
      segments.pop();
      continue;
    }
    segments.push(seg);
  }
  let p = segments.map((s) => uriEncode(s)).join('/');
  if (!p.startsWith('/')) p = `/${p}`;
  return p;
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      const value = eq < 0 ? '' : p.slice(eq + 1);
      return [uriEncode(decode(name)), uriEncode(decode(value))] as const;
    });
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Header values as sent (raw lines), several lines of one name joined with commas. */
function rawHeaderValues(req: http.IncomingMessage): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    const value = (req.rawHeaders[i + 1] ?? '').trim().replace(/\s+/g, ' ');
    const list = out.get(name) ?? [];
    list.push(value);
    out.set(name, list);
  }
  return out;
}

function parseAuthorization(
  value: string,
): { credential: string; signedHeaders: string; signature: string } | undefined {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(value);
  if (!m?.[1]) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[1].split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) return undefined;
  return { credential, signedHeaders, signature };
}

function amzDateToMs(d: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(d);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/** The SigV4 signing key and signature over a string to sign. */
export function signature(
  secret: string,
  date: string,
  region: string,
  service: string,
  toSign: string,
): string {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const kSigning = hmac(kService, 'aws4_request');
  return hmac(kSigning, toSign).toString('hex');
}

/** undefined when the request is signed correctly, otherwise why not. */
export function verifySigV4(
  req: http.IncomingMessage,
  body: Buffer,
  creds: Credentials,
  check: SigV4Check,
  now = Date.now(),
): SigV4Failure | undefined {
  const headers = rawHeaderValues(req);
  const auth = headers.get('authorization')?.[0];
  if (auth === undefined) return { kind: 'missing', message: 'Missing Authentication Token' };
  const parsed = parseAuthorization(auth);
  if (!parsed)
    return {
      kind: 'incomplete',
      message: `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters with AWS4-HMAC-SHA256.`,
    };
  const scope = parsed.credential.split('/');
  if (scope.length !== 5)
    return { kind: 'incomplete', message: 'Credential should be scoped to a valid region.' };
  const [keyId, date, region, service, terminator] = scope as [string, string, string, string, string];
  if (keyId !== creds.accessKeyId)
    return { kind: 'unknown-key', message: 'The security token included in the request is invalid.' };
  if (region !== creds.region)
    return {
      kind: 'bad-signature',
      message: `Credential should be scoped to a valid region, not '${region}'.`,
    };
  if (service !== check.service)
    return {
      kind: 'bad-signature',
      message: `Credential should be scoped to correct service: '${check.service}'.`,
    };
  if (terminator !== 'aws4_request')
    return {
      kind: 'bad-signature',
      message: `Credential should be scoped with a valid terminator: 'aws4_request'.`,
    };
  const amzDate = headers.get('x-amz-date')?.[0];
  if (amzDate === undefined)
    return { kind: 'incomplete', message: 'Authorization requires an X-Amz-Date header.' };
  const when = amzDateToMs(amzDate);
  if (when === undefined || amzDate.slice(0, 8) !== date)
    return {
      kind: 'bad-signature',
      message: `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${date}' != '${amzDate.slice(0, 8)}'`,
    };
  if (Math.abs(now - when) > check.maxSkewMs)
    return {
      kind: 'expired',
      message: `Signature expired: ${amzDate} is now earlier or later than the allowed window.`,
    };
  const signed = parsed.signedHeaders.split(';');
  if (!signed.includes('host')) return { kind: 'bad-signature', message: "'Host' must be a signed header." };
  for (const h of signed)
    if (!headers.has(h)) return { kind: 'bad-signature', message: `Signed header '${h}' is missing.` };

  const sentHash = headers.get('x-amz-content-sha256')?.[0];
  const bodyHash = sha256Hex(body);
  let payloadHash = bodyHash;
  if (sentHash !== undefined) {
    if (sentHash === UNSIGNED_PAYLOAD) {
      if (!check.unsignedPayloadAllowed)
        return { kind: 'bad-signature', message: 'This operation does not accept an unsigned payload.' };
    } else if (sentHash !== bodyHash) {
      return {
        kind: 'bad-signature',
        message: 'The provided x-amz-content-sha256 header does not match what was computed.',
      };
    }
    payloadHash = sentHash;
  }

  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const canonicalHeaders = signed.map((h) => `${h}:${(headers.get(h) ?? []).join(',')}\n`).join('');
  const canonicalRequest = [
    (req.method ?? '').toUpperCase(),
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    parsed.signedHeaders,
    payloadHash,
  ].join('\n');
  const toSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    `${date}/${region}/${service}/aws4_request`,
    sha256Hex(canonicalRequest),
  ].join('\n');
  const expected = signature(creds.secretAccessKey, date, region, service, toSign);
  const got = Buffer.from(parsed.signature, 'utf8');
  const want = Buffer.from(expected, 'utf8');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want))
    return {
      kind: 'bad-signature',
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    };
  return undefined;
}
