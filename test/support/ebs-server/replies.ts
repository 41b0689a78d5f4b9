// How the test server answers, in the two wire formats it speaks: EBS direct (REST + JSON, the
// error type in the x-amzn-ErrorType header and {Message, Reason} in the body) and EC2 Query (XML
// in the 2016-11-15 namespace; errors as <Response><Errors><Error><Code>…).
import crypto from 'node:crypto';
import type http from 'node:http';

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** A failure a handler reports; the server turns it into the protocol's error answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

export function requestId(): string {
  return crypto.randomUUID();
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId(),
    ...headers,
  });
  res.end(text);
}

export function sendEbsError(res: http.ServerResponse, e: ApiError): void {
  const body: Record<string, string> = { Message: e.message };
  if (e.reason !== undefined) body.Reason = e.reason;
  sendJson(res, e.status, body, { 'x-amzn-errortype': e.code });
}

export function xmlEscape(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

export function sendXml(res: http.ServerResponse, status: number, xml: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendEc2Error(res: http.ServerResponse, e: ApiError): void {
  sendXml(
    res,
    e.status,
    `<Response><Errors><Error><Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message></Error></Errors><RequestID>${requestId()}</RequestID></Response>`,
  );
}

/** An action's successful EC2 answer: `<ActionResponse xmlns=…><requestId/>inner</ActionResponse>`. */
export function sendEc2(res: http.ServerResponse, action: string, inner: string): void {
  sendXml(
    res,
    200,
    `<${action}Response xmlns="${EC2_NAMESPACE}"><requestId>${requestId()}</requestId>${inner}</${action}Response>`,
  );
}
