import type { Admin } from 'kafkajs';

/** How long a list of the live groups reading a topic is reused by the next waits (see below). */
const GROUPS_TTL_MS = 1_000;
/** The polls of committed offsets: soon after the write, then less often (each costs the broker two requests a group). */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

/**
 * Whether every live consumer group of a deployment (group ids starting with `groupPrefix`) that
 * reads `topic` (it has offsets committed there), with a member whose client id starts with
 * `clientIdPrefix`, has committed past what the topic holds now; polls until `deadline` (epoch ms).
 * Groups without members are not waited for; groups in a rebalance are.
 *
 * Which groups those are is asked of the broker at most once a second per topic (a list, a
 * description of every group of the deployment and an offset fetch each: dozens of requests), and
 * shared by the waits in that second: so a consumer group that starts reading the topic for the
 * first time is waited for from a second after it committed its first offset. Each poll then costs
 * an offset fetch per group still behind, at 5 ms, then 10, 20, 40 and every 50 ms, not every 10 ms:
 * a wait of a few hundred milliseconds no longer sends the broker a thousand requests a second.
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
  let pending = await readers.of(admin, topic, groupPrefix, clientIdPrefix);
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

/** The live groups reading each topic, asked of the broker at most once per `GROUPS_TTL_MS`. */
export class ReaderCache {
  private readonly lists = new Map<string, { at: number; groups: Promise<string[]> }>();

  of(admin: Admin, topic: string, groupPrefix: string, clientIdPrefix: string): Promise<string[]> {
    const key = `${topic}\0${groupPrefix}\0${clientIdPrefix}`;
    const cached = this.lists.get(key);
    if (cached && Date.now() - cached.at < GROUPS_TTL_MS) return cached.groups;
    const groups = readersOf(admin, topic, groupPrefix, clientIdPrefix);
    this.lists.set(key, { at: Date.now(), groups });
    // a failed list is not reused
    groups.catch(() => this.lists.delete(key));
    return groups;
  }
}

const readersOf = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
): Promise<string[]> => {
  const { groups } = await admin.listGroups();
  const ours = groups
    .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(groupPrefix))
    .map((g) => g.groupId);
  if (ours.length === 0) return [];
  const described = await admin.describeGroups(ours);
  // Grantline's live groups (a rebalance included: a new instance joining must not let a write
  // answer early); which of them read this topic, their committed offsets tell.
  const live = described.groups
    .filter(
      (g) =>
        g.state !== 'Empty' &&
        g.state !== 'Dead' &&
        g.members.some((m) => m.clientId.startsWith(clientIdPrefix)),
    )
    .map((g) => g.groupId);
  const committed = await Promise.all(
    live.map(async (g) => [g, await committedOf(admin, g, topic)] as const),
  );
  return committed.filter(([, c]) => [...c.values()].some((o) => o >= 0)).map(([g]) => g);
};
