/** The cookies of the browser flow: names every service that sets or reads one imports from here. */

/**
 * The signed-in browser: a `STATEMENT.session` JWS. Set by the authorization service at sign-in
 * (cleared at sign-out); read by the authorization and consent services.
 */
export const SESSION_COOKIE = 'grantline_session';

/** A random pre-session value the login form's CSRF token is bound to (authorization service only). */
export const LOGIN_CSRF_COOKIE = 'grantline_login_csrf';
