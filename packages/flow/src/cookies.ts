/** The cookies of the browser flow: names every service that sets or reads one imports from here. */

/**
 * The signed-in browser: a `STATEMENT.session` JWS. Set by the authorization service at sign-in
 * (cleared at sign-out); read by the authorization and consent services.
 */
export const SESSION_COOKIE = 'grantline_session';

/** A random pre-session value the login form's CSRF token is bound to (authorization service only). */
export const LOGIN_CSRF_COOKIE = 'grantline_login_csrf';

/**
 * The signed-in user's own page (consent service), and the way to it through sign-in: the consent
 * service sends a browser without a session to `ACCOUNT_SIGN_IN_PATH`; after a sign-in there the
 * authorization service redirects to `ACCOUNT_PAGE_PATH` and nowhere else (no URL from the query,
 * so no open redirector, RFC 9700 §4.11.2).
 */
export const ACCOUNT_PAGE_PATH = '/account/connections';
export const ACCOUNT_SIGN_IN_PATH = '/login?return=account';
