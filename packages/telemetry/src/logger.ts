import { type DestinationStream, type Logger, pino } from 'pino';

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

export const createLogger = (options: LoggerOptions): Logger => {
  const settings = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
};
