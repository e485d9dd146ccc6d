import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@grantline/telemetry';
import type { RequestHandler } from 'express';
import { oauthErrorReply, readForm } from './http.ts';

/** What a form-posted protocol endpoint (token, revocation, introspection) sees of a request. */
export interface FormRequest {
  /** a request header, by lower-case name */
  get(name: string): string | undefined;
  /** the client's address, as the trusted proxies tell it */
  ip: string | undefined;
  form: Record<string, string>;
  /** the values of the repeatable parameters */
  lists: Record<string, string[]>;
}

/**
 * Its answer: a JSON body, a string body of the given media type, or none (`body: undefined`); 200
 * unless `status` says otherwise.
 */
export interface FormReply {
  status?: number;
  body: unknown;
  type?: string;
}

/**
 * A protocol endpoint that takes an `application/x-www-form-urlencoded` POST and answers without
 * caching, written once and served by either HTTP layer: `expressFormEndpoint` (pages' apps, the
 * embedded mode) or `nodeFormEndpoint` (the services' hot path on bare `node:http`, ADR 5). It
 * throws OAuth errors; both layers render them the same way (`oauthErrorReply`).
 */
export interface FormEndpoint {
  /** parameters that may repeat (RFC 8707 `resource`); any other repeated one is `invalid_request` */
  repeatable?: readonly string[];
  handle(req: FormRequest): Promise<FormReply>;
}

// as `noStore` (RFC 6749 §5.1): token responses and errors are never cached
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

/**
 * The endpoint as an express handler: the `node:http` adapter itself (an express request and response
 * are node's, with the client's address from express's `trust proxy`), so both layers answer alike.
 */
export const expressFormEndpoint = (
  endpoint: FormEndpoint,
  logger: Pick<Logger, 'error' | 'warn'>,
): RequestHandler => {
  const serve = nodeFormEndpoint(endpoint, logger);
  return (req, res) => serve(req, res, req.ip);
};

const send = (
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  type: string | undefined,
  body: string,
) => {
  res.writeHead(status, {
    ...NO_STORE,
    ...headers,
    ...(type && { 'Content-Type': type }),
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
};

/** A `FormRequest` over node's request (a class: nothing allocated per request but the object). */
class NodeFormRequest implements FormRequest {
  constructor(
    private readonly req: IncomingMessage,
    readonly ip: string | undefined,
    readonly form: Record<string, string>,
    readonly lists: Record<string, string[]>,
  ) {}

  get(name: string): string | undefined {
    const value = this.req.headers[name.toLowerCase()];
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

/**
 * The endpoint on bare `node:http`: the same form parsing, the same reply and error rendering and the
 * same headers as `expressFormEndpoint` behind express (`Content-Type` with `charset=utf-8`, no
 * `ETag`, no `X-Powered-By`), without express's request and response decoration. `address` is the
 * client's address by the service's trusted proxies.
 */
export const nodeFormEndpoint =
  (endpoint: FormEndpoint, logger: Pick<Logger, 'error' | 'warn'>) =>
  /** never rejects: every failure is answered, or ends the connection */
  async (req: IncomingMessage, res: ServerResponse, address: string | undefined): Promise<void> => {
    try {
      const { form, lists } = await readForm(req, endpoint.repeatable);
      const reply = await endpoint.handle(new NodeFormRequest(req, address, form, lists));
      const status = reply.status ?? 200;
      if (reply.body === undefined) send(res, status, {}, undefined, '');
      else if (reply.type) send(res, status, {}, `${reply.type}; charset=utf-8`, String(reply.body));
      else send(res, status, {}, 'application/json; charset=utf-8', JSON.stringify(reply.body));
    } catch (error) {
      try {
        if (res.headersSent) throw error;
        const reply = oauthErrorReply(error, logger);
        send(res, reply.status, reply.headers, 'application/json; charset=utf-8', JSON.stringify(reply.body));
      } catch (failure) {
        // never a rejection (the caller does not await it): log, and end the connection
        logger.error({ err: failure }, 'could not answer a protocol request');
        res.destroy();
      }
    }
  };
