import { isConnectionError, isRetriable } from '@grantline/event-store';
import { parseCookie } from 'cookie';
import express, { type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';

/**
 * The browser-facing pages (authorize errors, login, consent): security headers on every response,
 * escaping, one plain layout. RFC 9700 §4.16 clickjacking (X-Frame-Options DENY and CSP
 * frame-ancestors 'none'), §4.2.4 Referrer-Policy no-referrer, no caching of pages with CSRF tokens.
 */
export const pageHeaders: RequestHandler[] = [
  helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'none'"],
        'style-src': ["'unsafe-inline'"],
        'img-src': ['https:', 'data:'],
        'frame-ancestors': ["'none'"],
        'base-uri': ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  }),
  (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  },
];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const STYLE = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b1b1f}
h1{font-size:1.4rem}label{display:block;margin:.6rem 0}input[type=text],input[type=password]{display:block;width:100%;padding:.4rem;margin-top:.2rem}
button{padding:.5rem 1.2rem;margin:.8rem .5rem 0 0}.error{color:#a4161a}.scope{margin:.3rem 0}.scope small{display:block;color:#555}`;

/** A whole HTML page; `body` must already be escaped. */
export const renderPage = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;

/** An error page that goes nowhere: for requests whose redirect target cannot be trusted. */
export const sendErrorPage = (res: Response, status: number, error: string, description: string): void => {
  res
    .status(status)
    .type('html')
    .send(
      renderPage(
        'Request refused',
        `<h1>This request cannot be completed</h1><p class="error"><strong>${escapeHtml(error)}</strong>: ${escapeHtml(description)}</p>`,
      ),
    );
};

export const cookiesOf = (req: Request): Record<string, string | undefined> =>
  req.headers.cookie ? parseCookie(req.headers.cookie) : {};

/** A cookie's attributes: HttpOnly, SameSite=Lax, Secure when the public origin is https. */
export const cookieOptions = (secure: boolean, maxAgeMs?: number) => ({
  httpOnly: true,
  sameSite: 'lax' as const,
  secure,
  path: '/',
  ...(maxAgeMs !== undefined && { maxAge: maxAgeMs }),
});

/** Appends parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2). */
export const withParameters = (uri: string, params: Record<string, string | undefined>): string => {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.href;
};

/**
 * The error boundary of the HTML pages: an unreadable request (bad encoding, too large) is a 4xx
 * page, anything else a 500 page; never a stack trace or JSON.
 */
export const pageErrorBoundary = (
  error: Error & { status?: number },
  req: Request,
  res: Response,
  next: (error?: unknown) => void,
): void => {
  if (res.headersSent) next(error);
  else if (error.status && error.status < 500)
    sendErrorPage(res, error.status, 'invalid_request', 'the request could not be read');
  else if (isConnectionError(error) || isRetriable(error)) {
    // the database restarting or failing over: a moment later the same page works
    req.log?.warn({ err: error }, 'page temporarily unavailable');
    res.set('Retry-After', '1');
    sendErrorPage(res, 503, 'temporarily_unavailable', 'the service is busy for a moment; try again');
  } else {
    req.log?.error({ err: error }, 'unexpected error on a page');
    sendErrorPage(res, 500, 'server_error', 'something went wrong; try again');
  }
};

/** The form body of a page POST: urlencoded, 16 KiB, a repeated field becomes an array. */
export const pageForm = (parameterLimit = 200) =>
  express.urlencoded({ extended: false, limit: '16kb', parameterLimit });
