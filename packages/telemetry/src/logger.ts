import { isSpanContextValid, trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, pino } from 'pino';
import { LOG_FIELDS } from './names.ts';

export type { DestinationStream, Logger } from 'pino';

/**
 * Structured JSON logs. Anything that could carry a credential is redacted at the source, so a careless
 * `log.info({ req })` cannot leak a token, a secret or a password.
 */
export const REDACTED_PATHS = [
  'password',
  'client_secret',
  'secret',
  'token',
  'access_token',
  'refresh_token',
  'code',
  'code_verifier',
  'assertion',
  'client_assertion',
  'privateKey',
  '*.password',
  '*.client_secret',
  '*.secret',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  // an authorization code under any name a request carries it by; not `*.code`, which would hide
  // every error's code (ECONNREFUSED, Kafka protocol errors) from the logs
  'form.code',
  'body.code',
  'query.code',
  '*.code_verifier',
  '*.client_assertion',
  '*.privateKey',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** where the JSON lines go (default: standard output); tests pass a stream to read a service's logs */
  destination?: DestinationStream | undefined;
}

/**
 * The active span's trace and span ids on every log line written within it, so a log line leads to
 * its trace and back. Called only for lines that are written (pino checks the level first).
 */
export const traceFields = (): Record<string, string> => {
  // a new object each time: pino merges the line's own fields into what the mixin returns
  const span = trace.getActiveSpan();
  if (!span) return {};
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return {};
  return {
    [LOG_FIELDS.traceId]: context.traceId,
    [LOG_FIELDS.spanId]: context.spanId,
    [LOG_FIELDS.traceFlags]: `0${context.traceFlags.toString(16)}`,
  };
};

export const createLogger = (options: LoggerOptions): Logger => {
  const settings = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    mixin: traceFields,
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
};
