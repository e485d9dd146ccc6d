import { handleCommand } from '@grantline/event-store';
import type { GrantEvent } from '@grantline/events';
import type { ClientRecord } from '@grantline/oauth';
import { escapeHtml, randomToken, renderPage, sendErrorPage } from '@grantline/oauth';
import { continueTrace, SPANS } from '@grantline/telemetry';
import type { Request, RequestHandler, Response } from 'express';
import { type GrantCommand, type GrantState, GrantUnavailable, grantDecider } from '../domain/grant.ts';
import {
  type ConsentChallenge,
  type ConsentDeps,
  challengeFor,
  csrfBinding,
  verdictLocation,
} from '../flow.ts';

const grantStream = (grantId: string) => `grant-${grantId}`;

const loadGrant = async (deps: ConsentDeps, grantId: string): Promise<GrantState> => {
  const { events } = await deps.store.readStream<GrantEvent>(grantStream(grantId));
  return events.reduce(
    (s, e) => grantDecider.evolve(s, { type: e.type, data: e.data } as GrantEvent),
    grantDecider.initialState(),
  );
};

interface Screen {
  challenge: ConsentChallenge;
  client: ClientRecord;
  organisations: { id: string; name: string }[];
  /** the grant this request merges into or replaces, if any */
  existing?: { grantId: string; scopes: string[]; organisations: string[] } | undefined;
}

/** Everything the page needs, or the reason the flow must end (sent back to the client). */
const prepare = async (
  deps: ConsentDeps,
  challenge: ConsentChallenge,
): Promise<Screen | { error: string; description: string }> => {
  const { req } = challenge;
  const client = await deps.clients.get(req.clientId);
  if (client?.status !== 'active') return { error: 'access_denied', description: 'the client is disabled' };
  const user = await deps.people.user(challenge.sub);
  if (user?.status !== 'active') return { error: 'access_denied', description: 'the user is disabled' };
  const organisations = await deps.people.organisations(user.organisations);
  if (organisations.length === 0)
    return { error: 'access_denied', description: 'the user belongs to no organisation' };
  let existing: Screen['existing'];
  if (req.grantId) {
    const grant = await loadGrant(deps, req.grantId);
    if (grant.status !== 'active' || grant.subject !== challenge.sub || grant.clientId !== req.clientId)
      return { error: 'invalid_grant_id', description: 'the grant is unknown, revoked or not this client’s' };
    existing = { grantId: grant.grantId, scopes: grant.scopes, organisations: grant.organisations };
  } else if (req.grantManagementAction === undefined) {
    existing = await deps.grants.latestActive(challenge.sub, req.clientId);
  }
  return { challenge, client, organisations, existing };
};

const consentForm = async (deps: ConsentDeps, raw: string, screen: Screen, error?: string) => {
  const { req } = screen.challenge;
  const descriptions = await deps.people.scopeDescriptions(req.scopes);
  const name = screen.client.clientName ?? screen.client.clientId;
  const checked = new Set(screen.existing?.organisations ?? []);
  const scopes = req.scopes
    .map(
      (s) =>
        `<li class="scope"><strong>${escapeHtml(descriptions.get(s) ?? s)}</strong><small>${escapeHtml(s)}</small></li>`,
    )
    .join('');
  const orgs = screen.organisations
    .map(
      (o, i) =>
        `<label for="org-${i}"><input type="checkbox" id="org-${i}" name="organisation" value="${escapeHtml(o.id)}"${checked.has(o.id) ? ' checked' : ''}>${escapeHtml(o.name)}</label>`,
    )
    .join('');
  return renderPage(
    `Connect ${name}`,
    `<h1>${escapeHtml(name)} wants access</h1>${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<p>It asks to:</p><ul>${scopes}</ul>
<form method="post" action="consent">
<input type="hidden" name="consent_challenge" value="${escapeHtml(raw)}">
<input type="hidden" name="csrf_token" value="${escapeHtml(deps.keys.csrfToken(csrfBinding(screen.challenge)))}">
<fieldset><legend>Organisations it may access</legend>${orgs}</fieldset>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
  );
};

/** whether Allow adds to an existing grant (merge, explicit or by default) rather than replacing or creating */
const mergesIntoGrant = (c: ConsentChallenge) =>
  c.req.grantManagementAction === 'merge' || c.req.grantManagementAction === undefined;

const covers = (have: readonly string[], want: readonly string[]) => want.every((w) => have.includes(w));

/**
 * GET /consent: the user chooses which organisations the client may reach, for the scopes it asked.
 * A request that an active grant already covers skips the page (unless `prompt=consent`);
 * `prompt=none` that would need the page ends with `consent_required`.
 */
export const consentPage =
  (deps: ConsentDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const raw = req.query.consent_challenge;
      const challenge = await challengeFor(deps, req, raw);
      if (!challenge)
        return sendErrorPage(
          res,
          400,
          'invalid_request',
          'the consent link is invalid, expired or from another sign-in',
        );
      const screen = await prepare(deps, challenge);
      if ('error' in screen) return res.redirect(303, await verdictLocation(deps, challenge, screen));
      const { req: request } = challenge;
      const action = request.grantManagementAction;
      if (
        !request.prompt.includes('consent') &&
        action !== 'create' &&
        action !== 'replace' &&
        screen.existing &&
        covers(screen.existing.scopes, request.scopes) &&
        screen.existing.organisations.length > 0
      ) {
        return res.redirect(
          303,
          await verdictLocation(deps, challenge, { ...screen.existing, scopes: request.scopes }),
        );
      }
      if (request.prompt.includes('none'))
        return res.redirect(
          303,
          await verdictLocation(deps, challenge, {
            error: 'consent_required',
            description: 'the user must consent',
          }),
        );
      res.type('html').send(await consentForm(deps, raw as string, screen));
    } catch (error) {
      next(error);
    }
  };

const alreadyDecided = (res: Response) =>
  sendErrorPage(
    res,
    403,
    'invalid_request',
    'this form was already sent; go back to the application and start again',
  );

const fields = (req: Request) => (req.body ?? {}) as Record<string, string | string[] | undefined>;
const text = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);

/**
 * POST /consent: CSRF-checked (a token bound to the session and the flow, good for one decision),
 * then Allow records the grant (create, merge into or replace one) and Deny sends `access_denied`
 * back to the client.
 */
export const consentSubmit =
  (deps: ConsentDeps): RequestHandler =>
  async (req: Request, res: Response, next) => {
    try {
      const body = fields(req);
      const raw = text(body.consent_challenge);
      const challenge = await challengeFor(deps, req, raw);
      if (!challenge || !deps.keys.csrfValid(csrfBinding(challenge), text(body.csrf_token)))
        return sendErrorPage(
          res,
          403,
          'invalid_request',
          'the form has expired or was not sent from this sign-in',
        );
      // the form is decided once: its first decision claims the challenge, a second POST is refused
      const firstDecision = () => deps.singleUse('consent-form', challenge.jti, challenge.exp);
      const decide = async (outcome: Parameters<typeof verdictLocation>[2]) =>
        (await firstDecision())
          ? res.redirect(303, await verdictLocation(deps, challenge, outcome))
          : alreadyDecided(res);
      if (text(body.decision) !== 'allow')
        return decide({ error: 'access_denied', description: 'the user denied the request' });
      const screen = await prepare(deps, challenge);
      if ('error' in screen) return decide(screen);
      const chosen = [...new Set([body.organisation ?? []].flat())];
      const allowed = new Set(screen.organisations.map((o) => o.id));
      const reach = new Set([
        ...(screen.existing && mergesIntoGrant(challenge) ? screen.existing.organisations : []),
        ...chosen,
      ]);
      if (reach.size > 100)
        return res
          .status(400)
          .type('html')
          .send(await consentForm(deps, raw!, screen, 'A connection can reach at most 100 organisations.'));
      if (chosen.length === 0 || chosen.some((o) => !allowed.has(o)))
        return res
          .status(400)
          .type('html')
          .send(await consentForm(deps, raw!, screen, 'Choose at least one of your organisations.'));

      // claimed before the grant changes, so two POSTs at once cannot both change it
      if (!(await firstDecision())) return alreadyDecided(res);
      const { req: request } = challenge;
      const base = {
        subject: challenge.sub,
        clientId: request.clientId,
        scopes: request.scopes,
        organisations: chosen,
      };
      const target =
        request.grantId ??
        (request.grantManagementAction === undefined ? screen.existing?.grantId : undefined);
      const grantId = target ?? randomToken(18);
      const command: GrantCommand = target
        ? { type: request.grantManagementAction === 'replace' ? 'Replace' : 'Merge', ...base }
        : { type: 'Create', grantId, resources: request.resources, ...base };
      let state: GrantState;
      try {
        // the grant's events carry the flow's trace (recorded at /oauth2/authorize) to their consumers
        const handled = await continueTrace(SPANS.flowStep('consent'), request.traceparent, () =>
          handleCommand(deps.store, grantStream(grantId), command, grantDecider),
        );
        state = handled.newState;
        // the grant the verdict names is in every service's read model before the browser moves on:
        // the code's redemption, the next request's consent screen, Grant Management all see it
        if (handled.append) await deps.awaitProjected(handled.append.lastPosition);
      } catch (error) {
        if (!(error instanceof GrantUnavailable)) throw error;
        return res.redirect(
          303,
          await verdictLocation(deps, challenge, {
            error: 'invalid_grant_id',
            description: 'the grant is no longer active',
          }),
        );
      }
      if (state.status !== 'active') throw new Error('grant not active after consent');
      res.redirect(
        303,
        // tokens get what was asked (the grant holds at least that), in the organisations the grant reaches
        await verdictLocation(deps, challenge, {
          grantId,
          scopes: request.scopes,
          organisations: state.organisations,
        }),
      );
    } catch (error) {
      next(error);
    }
  };
