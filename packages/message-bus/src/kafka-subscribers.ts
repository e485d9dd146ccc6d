import { type Admin, AssignerProtocol, type GroupDescription } from 'kafkajs';

/** The polls of committed offsets: at once, then after 5, 10, 20, 40 and every 50 ms. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

/**
 * Whether every live consumer group of a deployment (group ids starting with `groupPrefix`) that
 * reads `topic`, with a member whose client id starts with `clientIdPrefix`, has committed past what
 * the topic holds now; polls until `deadline` (epoch ms). Groups without members are not waited for;
 * groups in a rebalance are.
 *
 * Which groups read the topic, their live members' subscriptions tell (the metadata each member
 * joined with), not their committed offsets, which outlive a subscription (a group that stopped
 * reading a topic would be waited for until every deadline). A group in a rebalance shows none: it
 * counts if it has committed on the topic. The first poll lists and describes the deployment's
 * groups; each later one describes again only the groups not settled yet (readers behind, and groups
 * in a rebalance, which may turn out to read the topic or not) and fetches their offsets. A group
 * found caught up, or not reading the topic, is not asked about again in this wait: offsets only
 * move forward, and a group that starts reading the topic during the wait was not a reader of this
 * write. Polls come with growing gaps, not every 10 ms: each costs a request per group it asks
 * about (the admin client looks each group's coordinator up once: the kafkajs patch).
 */
export const subscribersCaughtUp = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
  deadline: number,
): Promise<boolean> => {
  // every admin call is bounded by the deadline: a broker that stopped answering (a host gone
  // silent) would otherwise hold the wait for kafkajs's request timeout (30 s)
  const answered = await beforeDeadline(polls(admin, topic, groupPrefix, clientIdPrefix, deadline), deadline);
  return answered ?? false;
};

const polls = async (
  admin: Admin,
  topic: string,
  groupPrefix: string,
  clientIdPrefix: string,
  deadline: number,
): Promise<boolean> => {
  const ends = await admin.fetchTopicOffsets(topic);
  let pollMs = FIRST_POLL_MS;
  // the groups asked about: the deployment's at the first poll, then those not settled yet
  let asked: string[] | undefined;
  for (;;) {
    const groups = await readers(
      admin,
      topic,
      clientIdPrefix,
      asked ?? (await deploymentGroups(admin, groupPrefix)),
    );
    const open = await Promise.all(
      groups.map(async ({ groupId, subscribed }) => {
        const committed = await committedOf(admin, groupId, topic);
        // a group in a rebalance (subscriptions unknown) that has never committed on the topic is
        // not waited for, but asked about again while the wait lasts: it may turn out to read it
        if (subscribed === undefined && ![...committed.values()].some((o) => o >= 0))
          return { groupId, waitedFor: false };
        // an offset is the next to read; none committed (-1) has read nothing: a partition never
        // written (high 0) holds nothing to wait for
        return ends.some((e) => Number(e.high) > Math.max(0, committed.get(e.partition) ?? 0))
          ? { groupId, waitedFor: true }
          : undefined;
      }),
    );
    const unsettled = open.filter((g) => g !== undefined);
    if (!unsettled.some((g) => g.waitedFor)) return true;
    if (Date.now() >= deadline) return false;
    asked = unsettled.map((g) => g.groupId);
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
  }
};

/** The promise's value, or undefined once `deadline` (epoch ms) passes first (the promise runs on). */
const beforeDeadline = <T>(promise: Promise<T>, deadline: number): Promise<T | undefined> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
};

const committedOf = async (admin: Admin, groupId: string, topic: string) => {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]));
};

type Reader = { groupId: string; subscribed: true | undefined };

/**
 * Grantline's live groups that may read `topic` (a rebalance included: a new instance joining must
 * not let a write answer early): not empty nor dead, with a member of ours subscribed to it, or whose
 * subscriptions are unknown (`subscribed` undefined: Kafka describes a member's subscription only
 * while its group is stable).
 */
const readers = async (
  admin: Admin,
  topic: string,
  clientIdPrefix: string,
  ours: readonly string[],
): Promise<Reader[]> => {
  if (ours.length === 0) return [];
  const described = await admin.describeGroups([...ours]);
  return described.groups.flatMap((g): Reader[] => {
    if (g.state === 'Empty' || g.state === 'Dead') return [];
    const members = g.members.filter((m) => m.clientId.startsWith(clientIdPrefix));
    const subscriptions = members.map((m) => subscription(m));
    if (subscriptions.some((topics) => topics?.includes(topic)))
      return [{ groupId: g.groupId, subscribed: true }];
    if (subscriptions.some((topics) => topics === undefined))
      return [{ groupId: g.groupId, subscribed: undefined }];
    return [];
  });
};

/** The deployment's consumer groups (their ids start with `groupPrefix`). */
const deploymentGroups = async (admin: Admin, groupPrefix: string): Promise<string[]> => {
  const { groups } = await admin.listGroups();
  return groups
    .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(groupPrefix))
    .map((g) => g.groupId);
};

/** The topics a member subscribed to; undefined when its metadata is not there to read. */
const subscription = (member: GroupDescription['members'][number]): string[] | undefined => {
  try {
    return AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics;
  } catch {
    return undefined;
  }
};
