import { type EventStore, handleCommand, type ReadStreamResult } from '@grantline/event-store';
import type { GrantEvent } from '@grantline/events';
import { type FlowKeys, SESSION_COOKIE, STATEMENT } from '@grantline/flow';
import { cookiesOf, type SessionRevocations } from '@grantline/oauth';
import type { ClientDirectory, People } from '@grantline/registry-directory';
import type { Request } from 'express';
import { type GrantCommand, type GrantState, grantDecider } from './domain/grant.ts';
import type { ConnectionQueries } from './projections/connections.ts';

/** What the account page and its JSON API need (the consent service's own `ConsentDeps` plus reads). */
export interface AccountDeps {
  /** verifies the session cookie (public keys only); the account page's CSRF tokens */
  keys: FlowKeys;
  people: People;
  clients: ClientDirectory;
  store: EventStore;
  sessions: SessionRevocations;
  connections: ConnectionQueries;
  /** resolves once every service projecting the grants topic has seen the event at `position` */
  awaitProjected: (position: string) => Promise<unknown>;
  /** the authorization service's sign-in page for the account (`/login?return=account`) */
  signInUrl: string;
  /** the public origin: what `Origin` a state-changing API request must carry */
  origin: string;
  secureCookies: boolean;
}

export interface AccountSession {
  sid: string;
  sub: string;
}

/**
 * The signed-in user of this browser: a session the authorization service signed, not signed out,
 * of a user still active whose password has not changed since (as the authorization service reads it).
 * `alongside`, given the session as signed (not yet confirmed), starts the read the request needs
 * next, beside the session's own reads: one round trip instead of two. Nothing is read for a request
 * without a validly signed session cookie; what `alongside` read is dropped if the session fails.
 */
export const accountSession = async <T = undefined>(
  deps: AccountDeps,
  req: Request,
  alongside?: (signed: AccountSession) => Promise<T> | undefined,
): Promise<(AccountSession & { alongside?: T }) | undefined> => {
  const session = await deps.keys.verify(STATEMENT.session, cookiesOf(req)[SESSION_COOKIE]);
  if (!session) return undefined;
  const signed = { sid: session.sid, sub: session.sub };
  const [revoked, user, read] = await Promise.all([
    deps.sessions.isRevoked(session.sid),
    deps.people.user(session.sub),
    // a read that fails is read again by whoever needs it: the session's own answer comes first
    alongside?.(signed)?.catch(() => undefined),
  ]);
  if (revoked || user?.status !== 'active') return undefined;
  if (user.credentialsChangedAt && user.credentialsChangedAt.getTime() > session.auth_time * 1000)
    return undefined;
  return { ...signed, alongside: read };
};

/** The account page's CSRF token: bound to the session, so it is worth nothing in another browser. */
export const accountCsrfBinding = (session: AccountSession) => `account:${session.sid}`;

export interface GrantView {
  grantId: string;
  organisations: { id: string; name: string }[];
  scopes: { scope: string; description: string }[];
  connectedAt: Date;
  lastUsedAt: Date | undefined;
}

export interface AppView {
  clientId: string;
  name: string;
  grants: GrantView[];
}

/** The user's connected apps, each with its grants, in words: names and scope descriptions. */
export const connectedApps = async (deps: AccountDeps, subject: string): Promise<AppView[]> => {
  const rows = await deps.connections.activeOf(subject);
  const [organisations, descriptions] = await Promise.all([
    deps.people.organisations([...new Set(rows.flatMap((r) => r.organisations))]),
    deps.people.scopeDescriptions([...new Set(rows.flatMap((r) => r.scopes))]),
  ]);
  const orgName = new Map(organisations.map((o) => [o.id, o.name]));
  const apps = new Map<string, AppView>();
  for (const row of rows) {
    let app = apps.get(row.clientId);
    if (!app) {
      const client = await deps.clients.get(row.clientId);
      app = { clientId: row.clientId, name: client?.clientName ?? row.clientId, grants: [] };
      apps.set(row.clientId, app);
    }
    app.grants.push({
      grantId: row.grantId,
      organisations: row.organisations.map((id) => ({ id, name: orgName.get(id) ?? id })),
      scopes: row.scopes.map((scope) => ({ scope, description: descriptions.get(scope) ?? scope })),
      connectedAt: row.connectedAt,
      lastUsedAt: row.lastUsedAt,
    });
  }
  return [...apps.values()];
};

/** What the user asks to disconnect (ids as the page or the API sent them: untrusted). */
export type Disconnect =
  | { what: 'organisation'; clientId: string; grantId: string; organisationId: string }
  | { what: 'grant'; clientId: string; grantId: string }
  | { what: 'app'; clientId: string };

type ActiveGrant = Extract<GrantState, { status: 'active' | 'revoked' }> & {
  /** the stream as read for the check: the command decides on the same read */
  read: ReadStreamResult<GrantEvent>;
};

const ID = /^[\x21-\x7e]{1,200}$/;

/** A disconnect's grant as stored, read ahead (beside the session's reads); none for an app's. */
export type GrantRead = { grantId: string; read: ReadStreamResult<GrantEvent> };

/** Reads the grant a disconnect names, whoever asks: `ownGrant` decides whether it is theirs. */
export const readGrantOf = async (
  deps: AccountDeps,
  d: Disconnect | undefined,
): Promise<GrantRead | undefined> => {
  if (!d || d.what === 'app' || !ID.test(d.grantId) || !ID.test(d.clientId)) return undefined;
  return { grantId: d.grantId, read: await deps.store.readStream<GrantEvent>(`grant-${d.grantId}`) };
};

/** The grant if it is active, this user's and this app's; undefined for every other case alike. */
const ownGrant = async (
  deps: AccountDeps,
  subject: string,
  clientId: string,
  grantId: string,
  ahead?: GrantRead,
): Promise<ActiveGrant | undefined> => {
  if (!ID.test(grantId) || !ID.test(clientId)) return undefined;
  const read =
    ahead?.grantId === grantId ? ahead.read : await deps.store.readStream<GrantEvent>(`grant-${grantId}`);
  const state = read.events.reduce(
    (s, e) => grantDecider.evolve(s, { type: e.type, data: e.data } as GrantEvent),
    grantDecider.initialState(),
  );
  if (state.status !== 'active' || state.subject !== subject || state.clientId !== clientId) return undefined;
  return { ...state, read };
};

/** The command on the grant as `ownGrant` read it (a concurrent change: read again and decided anew). */
const run = async (deps: AccountDeps, grant: ActiveGrant, command: GrantCommand) => {
  const { append } = await handleCommand(deps.store, `grant-${grant.grantId}`, command, grantDecider, {
    read: grant.read,
  });
  return append?.lastPosition;
};

const appName = async (deps: AccountDeps, clientId: string) =>
  (await deps.clients.get(clientId))?.clientName ?? clientId;

/**
 * Disconnects an organisation from a grant (the last one ends the grant), a grant, or every grant
 * of an app, for this user only: anything not theirs, not active or unknown is `undefined` (one
 * "not found" for all, so the answer tells nothing about other users' grants). Resolves with a
 * confirmation once every projection of the grants topic (the token service's included) has seen
 * it, so the page shows the change and a refresh under the grant already fails.
 */
export const disconnect = async (
  deps: AccountDeps,
  subject: string,
  d: Disconnect,
  ahead?: GrantRead,
): Promise<{ notice: string } | undefined> => {
  let last: string | undefined;
  let notice: string;
  if (d.what === 'app') {
    if (!ID.test(d.clientId)) return undefined;
    const grants = (await deps.connections.activeOf(subject)).filter((r) => r.clientId === d.clientId);
    const owned: ActiveGrant[] = [];
    for (const g of grants) {
      const grant = await ownGrant(deps, subject, d.clientId, g.grantId);
      if (grant) owned.push(grant);
    }
    if (owned.length === 0) return undefined;
    for (const grant of owned) last = (await run(deps, grant, { type: 'Revoke', reason: 'user' })) ?? last;
    notice = `${await appName(deps, d.clientId)} was disconnected.`;
  } else {
    const grant = await ownGrant(deps, subject, d.clientId, d.grantId, ahead);
    if (!grant) return undefined;
    if (d.what === 'organisation') {
      if (!grant.organisations.includes(d.organisationId)) return undefined;
      last = await run(deps, grant, { type: 'DisconnectOrganisation', organisationId: d.organisationId });
      const [org] = await deps.people.organisations([d.organisationId]);
      notice = `${org?.name ?? d.organisationId} was disconnected from ${await appName(deps, d.clientId)}.`;
    } else {
      last = await run(deps, grant, { type: 'Revoke', reason: 'user' });
      notice = `The connection to ${await appName(deps, d.clientId)} was disconnected.`;
    }
  }
  if (last) await deps.awaitProjected(last);
  return { notice };
};
