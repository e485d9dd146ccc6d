import { z } from 'zod';
import { Id, Timestamp } from './common.ts';

/**
 * `grantline.revocations.v1`, the resource-server contract (published by the introspection
 * service's revocation projector; the topic is compacted). One message per revocation fact, its
 * Kafka key (and CloudEvents `subject`) the fact's deny-list key, so compaction keeps every fact;
 * a heartbeat under the key `heartbeat` every second, so a subscriber can measure its freshness.
 * Keys: `jti:<jti>`, `family:<refresh family id>`, `grant:<grant_id>`,
 * `grant-org:<grant_id>:<organisation id>`, `sub:<subject>`, `client:<client_id>`.
 */
export const revocationMessageSchemas = {
  RevocationFact: z.strictObject({
    /** the deny-list key, also the message key */
    key: z.string().min(1).max(500),
    kind: z.enum(['token', 'family', 'grant', 'grant_organisation', 'subject', 'client']),
    jti: Id.optional(),
    familyId: Id.optional(),
    grantId: Id.optional(),
    organisationId: Id.optional(),
    subject: Id.optional(),
    clientId: Id.optional(),
    /** when the revocation was recorded (the time of the event that revoked) */
    revokedAt: Timestamp,
    /**
     * after this a subscriber may forget the fact: every access token it denies has expired (the
     * longest access-token lifetime plus clock skew after `revokedAt`)
     */
    expiresAt: Timestamp,
    /** the fact's position in the projector's log (the id of the HTTP stream's event) */
    sequence: z.number().int().min(1),
  }),
  RevocationHeartbeat: z.strictObject({
    /** when the projector sent it: a subscriber's freshness is its age */
    time: Timestamp,
    /** the highest `sequence` published so far */
    lastSequence: z.number().int().min(0),
  }),
} as const;

export const REVOCATION_HEARTBEAT_KEY = 'heartbeat';
