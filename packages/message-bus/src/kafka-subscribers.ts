import type { Admin } from 'kafkajs';

/** How long a group found not to read a topic (no offset committed there) is taken at its word. */
const NOT_A_READER_TTL_MS = 1_000;
/** The polls of committed offsets: at once, then after 5, 10, 20, 40 and every 50 ms. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

/**
 * Whether every live consumer group of a deployment (group ids starting with `groupPrefix`) that
 * reads `topic` (it has offsets committed there), with a member whose client id starts with
 * `clientIdPrefix`, has committed past what the topic holds now; polls until `deadline` (epoch ms).
 * Groups without members are not waited for; groups in a rebalance are.
 *
 * Which groups are live is asked afresh on every call (a list and one description: two requests).
 * Which of them read the topic is remembered: a group with offsets there reads it for good, and one
 * without is asked again after a second (a group reading the topic for the first time is waited
 * for once it has committed, and at most a second after). Each poll costs an offset fetch per group
 * still behind, with growing gaps, not every 10 ms: a wait of a few hundred milliseconds does not
 * send the broker a thousand requests a second.
 */
export const subscribersCaughtUp = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
  deadline: number,
  readers: ReaderCache = new ReaderCache(),
): Promise<boolean> => {
  const ends = await admin.fetchTopicOffsets(topic);
  const live = await liveGroups(admin, groupPrefix, clientIdPrefix);
  let pending = await readers.readersOf(admin, topic, live);
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const behind = await Promise.all(
      pending.map(async (groupId) => {
        const committed = await committedOf(admin, groupId, topic);
        return ends.some((e) => Number(e.high) > (committed.get(e.partition) ?? -1)) ? groupId : undefined;
      }),
    );
    pending = behind.filter((g): g is string => g !== undefined);
    if (pending.length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
  }
};

const committedOf = async (admin: Admin, groupId: string, topic: string) => {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]));
};

/**
 * Grantline's live groups (a rebalance included: a new instance joining must not let a write answer
 * early): not empty nor dead, with a member of ours.
 */
const liveGroups = async (admin: Admin, groupPrefix: string, clientIdPrefix: string): Promise<string[]> => {
  const { groups } = await admin.listGroups();
  const ours = groups
    .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(groupPrefix))
    .map((g) => g.groupId);
  if (ours.length === 0) return [];
  const described = await admin.describeGroups(ours);
  return described.groups
    .filter(
      (g) =>
        g.state !== 'Empty' &&
        g.state !== 'Dead' &&
        g.members.some((m) => m.clientId.startsWith(clientIdPrefix)),
    )
    .map((g) => g.groupId);
};

/** Which groups read which topic: their committed offsets tell, asked once (or again after a second for a non-reader). */
export class ReaderCache {
  private readonly reads = new Set<string>();
  private readonly notYet = new Map<string, number>();

  async readersOf(admin: Admin, topic: string, groups: readonly string[]): Promise<string[]> {
    const key = (g: string) => `${topic}\0${g}`;
    const now = Date.now();
    const unknown = groups.filter((g) => !this.reads.has(key(g)) && !((this.notYet.get(key(g)) ?? 0) > now));
    await Promise.all(
      unknown.map(async (g) => {
        const committed = await committedOf(admin, g, topic);
        if ([...committed.values()].some((o) => o >= 0)) {
          this.reads.add(key(g));
          this.notYet.delete(key(g));
        } else this.notYet.set(key(g), now + NOT_A_READER_TTL_MS);
      }),
    );
    return groups.filter((g) => this.reads.has(key(g)));
  }
}
