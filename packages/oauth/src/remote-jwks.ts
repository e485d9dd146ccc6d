import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { createRemoteJWKSet, customFetch, type FetchImplementation, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';

export interface RemoteKeySetOptions {
  /** development only: let `jwks_uri` name loopback, private and link-local addresses */
  allowPrivateAddresses?: boolean;
  /** how long one fetch of a key set may take */
  timeoutMs?: number;
  /** the largest key set document accepted */
  maxBytes?: number;
  /** how many clients' key sets are kept (least recently used go first) */
  maxEntries?: number;
}

export class ForbiddenDestination extends Error {
  override readonly name = 'ForbiddenDestination';
}

/** Whether an address is one a client may point the server at: public unicast only. */
export const isPublicAddress = (address: string): boolean => {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    // the deprecated IPv4-compatible form ::a.b.c.d (::/96) embeds an IPv4 address too
    else if (v6.parts.slice(0, 6).every((p) => p === 0)) return false;
  }
  return parsed.range() === 'unicast';
};

/**
 * A DNS lookup that refuses every non-public address it resolves to. The socket connects to the
 * address checked here, so a name that resolves differently a second later (DNS rebinding) gains
 * nothing.
 */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '', 0);
    const list = addresses as unknown as LookupAddress[];
    const refused = list.find((a) => !isPublicAddress(a.address));
    if (refused || list.length === 0)
      return callback(
        new ForbiddenDestination(`${hostname} resolves to a non-public address`) as NodeJS.ErrnoException,
        '',
        0,
      );
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

/**
 * GET of a client's `jwks_uri` (RFC 7591 §2) as a `fetch` for jose: no redirects, a bounded body,
 * and, unless allowed for development, only public destinations (checked on the resolved address,
 * and for an address literal on the literal itself): a client must not make the server probe its
 * own network (blind SSRF).
 */
const guardedFetch =
  (options: Required<RemoteKeySetOptions>): FetchImplementation =>
  (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const host = target.hostname.replace(/^\[|\]$/g, '');
      if (!options.allowPrivateAddresses && ipaddr.isValid(host) && !isPublicAddress(host))
        return reject(new ForbiddenDestination(`${host} is not a public address`));
      const request = (target.protocol === 'https:' ? https : http).get(
        target,
        {
          headers: Object.fromEntries(init.headers.entries()),
          signal: init.signal,
          ...(!options.allowPrivateAddresses && { lookup: publicOnlyLookup }),
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > options.maxBytes) {
              response.destroy();
              reject(new Error(`key set larger than ${options.maxBytes} bytes`));
            } else chunks.push(chunk);
          });
          response.on('end', () =>
            resolve(
              new Response(Buffer.concat(chunks), {
                status: response.statusCode ?? 502,
                headers: { 'content-type': String(response.headers['content-type'] ?? '') },
              }),
            ),
          );
          response.on('error', reject);
        },
      );
      request.on('error', reject);
    });

/**
 * The key sets of `private_key_jwt` clients that publish them at a `jwks_uri`: one jose remote set
 * per URI (its cache and refetch cool-down), at most `maxEntries` of them.
 */
export const remoteKeySets = (options: RemoteKeySetOptions = {}) => {
  const settings: Required<RemoteKeySetOptions> = {
    allowPrivateAddresses: options.allowPrivateAddresses ?? false,
    timeoutMs: options.timeoutMs ?? 2_000,
    maxBytes: options.maxBytes ?? 64 * 1024,
    maxEntries: options.maxEntries ?? 1_000,
  };
  const sets = new LRUCache<string, JWTVerifyGetKey>({ max: settings.maxEntries });
  const fetcher = guardedFetch(settings);
  return (uri: string): JWTVerifyGetKey => {
    let set = sets.get(uri);
    if (!set) {
      set = createRemoteJWKSet(new URL(uri), {
        timeoutDuration: settings.timeoutMs,
        [customFetch]: fetcher,
      });
      sets.set(uri, set);
    }
    return set;
  };
};

export type RemoteKeySets = ReturnType<typeof remoteKeySets>;
