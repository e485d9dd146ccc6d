import type { ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPacedLoad } from './paced-load.ts';
import { invoicesProbe, userSession } from './revocation-grants.ts';
import { hopProbe } from './revocation-hops.ts';
import { basicAuth, type RevocationStack } from './revocation-stack.ts';
import { fmt, latencyRecorder } from './stats.ts';

/**
 * Part 1 of bench:revocation: from the moment the user's disconnect request is sent to the moment
 * the example invoices API (its own process, on the SDK, subscribed to the revocations topic on
 * Kafka) answers 401 for the token and organisation concerned, under a paced background load of
 * client_credentials token requests. Each grant is connected to every organisation of the user; its
 * organisations are disconnected one at a time, and the last by disconnecting the grant, so each
 * grant gives `organisations` samples (both kinds of disconnection measured). Samples run one after
 * another; the API is asked with the token back to back over one keep-alive connection from the
 * moment the DELETE is sent, and a sample ends with the receipt of the first 401: an upper bound,
 * whose resolution is one request to the API (its mean is printed).
 */
export const measurePropagation = async (
  s: RevocationStack,
  children: ChildProcess[],
  options: { samples: number; rate: number; timeoutMs: number; maxSeconds: number },
) => {
  const perGrant = s.tenant.organisations.length;
  const session = userSession(s);
  const probe = invoicesProbe(s.resourceServerUrl);
  const grants = Math.ceil(options.samples / perGrant);
  const preparing = performance.now();
  const connections = await session.connect(grants);
  console.error(
    `  prepared ${grants} grants x ${perGrant} organisations in ${fmt((performance.now() - preparing) / 1_000)} s`,
  );

  const load = await startPacedLoad(children, {
    url: s.tokenUrl,
    rate: options.rate,
    authorization: basicAuth(s.background.clientId, s.background.clientSecret),
  });
  const latency = { organisation: latencyRecorder(), grant: latencyRecorder(), all: latencyRecorder() };
  // each sample split at the grants topic and the revocations topic (samples where both arrived)
  const hops = {
    consent: latencyRecorder(),
    relay: latencyRecorder(),
    delivered: latencyRecorder(),
    projector: latencyRecorder(),
    published: latencyRecorder(),
    sdk: latencyRecorder(),
  };
  const probeHops = await hopProbe(s.kafka);
  // for reading the figures: how long the disconnect request itself took to be answered
  const answered = latencyRecorder();
  let probes = 0;
  let probing = 0;
  const failures: string[] = [];
  try {
    await sleep(3_000); // the load settles first
    const before = await load.count();
    const deadline = performance.now() + options.maxSeconds * 1_000;
    let taken = 0;
    for (let i = 0; i < options.samples && performance.now() < deadline; i++, taken++) {
      const connection = connections[Math.floor(i / perGrant)]!;
      const index = i % perGrant;
      const organisation = connection.organisations[index]!;
      // the last organisation of a grant goes with the grant (and the last sample, whatever its index)
      const kind = index === perGrant - 1 || i === options.samples - 1 ? 'grant' : 'organisation';
      // a slow run (a busy machine) must not measure expired tokens: renewed between samples
      if (index === 0 && performance.now() - connection.issuedAt > 420_000)
        // best effort: a renewal the busy token service does not answer leaves the old token (its
        // samples then fail as such, counted below) rather than ending the run
        await session.renew(connection).catch((error: Error) => failures.push(`renewal: ${error.message}`));
      const before = await probe(connection.accessToken, organisation);
      if (before !== 200) {
        failures.push(`sample ${i}: ${before} before the disconnection`);
        continue;
      }
      const sent = performance.now();
      const disconnected = session
        .disconnect(connection.grantId, kind === 'grant' ? undefined : organisation)
        .then((response) => ({ response, at: performance.now() }));
      let status = 200;
      let rejectedAt = sent;
      while (status === 200 && performance.now() - sent < options.timeoutMs) {
        const asked = performance.now();
        status = await probe(connection.accessToken, organisation);
        rejectedAt = performance.now();
        probes++;
        probing += rejectedAt - asked;
      }
      const { response, at } = await disconnected;
      answered.recordMs(at - sent);
      if (response.status !== 204)
        failures.push(`sample ${i}: the disconnection answered ${response.status}`);
      if (status !== 401) {
        failures.push(`sample ${i}: ${status === 200 ? `still 200 after ${options.timeoutMs} ms` : status}`);
        continue;
      }
      latency[kind].recordMs(rejectedAt - sent);
      const arrived = probeHops.arrivals(
        sent,
        connection.grantId,
        kind === 'grant' ? undefined : organisation,
      );
      if (arrived.grants !== undefined && arrived.revocations !== undefined) {
        // each moment clamped between its neighbours (clocks read in different processes)
        const recorded = Math.min(Math.max(arrived.recorded ?? sent, sent), arrived.grants);
        const relayed = Math.min(Math.max(arrived.relayed ?? recorded, recorded), arrived.grants);
        const published = Math.min(
          Math.max(arrived.published ?? arrived.grants, arrived.grants),
          arrived.revocations,
        );
        hops.consent.recordMs(recorded - sent);
        hops.relay.recordMs(relayed - recorded);
        hops.delivered.recordMs(arrived.grants - relayed);
        hops.projector.recordMs(published - arrived.grants);
        hops.published.recordMs(arrived.revocations - published);
        hops.sdk.recordMs(Math.max(0, rejectedAt - arrived.revocations));
      }
      probeHops.trim(sent);
      latency.all.recordMs(rejectedAt - sent);
      if ((i + 1) % 100 === 0) {
        const so = latency.all.summary();
        console.error(
          `  ${i + 1}/${options.samples} samples, so far p50 ${fmt(so.p50)} ms p99 ${fmt(so.p99)} ms max ${fmt(so.max)} ms`,
        );
      }
    }
    const after = await load.count();
    const window = (after.at - before.at) / 1_000;
    return {
      ...(Object.fromEntries(
        Object.entries(latency).map(([k, r]) => [k, { count: r.count(), ...r.summary() }]),
      ) as Record<keyof typeof latency, { count: number; p50: number; p99: number; max: number }>),
      failures,
      taken,
      answered: answered.summary(),
      hops: Object.fromEntries(
        Object.entries(hops).map(([k, r]) => [k, { count: r.count(), ...r.summary() }]),
      ) as Record<keyof typeof hops, { count: number; p50: number; p99: number; max: number }>,
      probeMs: probes ? probing / probes : 0,
      background: {
        rate: (after.ok - before.ok) / window,
        other: after.other - before.other,
        errors: after.errors - before.errors,
        skipped: after.skipped - before.skipped,
        seconds: window,
      },
    };
  } finally {
    load.stop();
    await probeHops.stop();
  }
};

export const printPropagation = (
  result: Awaited<ReturnType<typeof measurePropagation>>,
  options: { samples: number; rate: number },
) => {
  const line = (name: string, r: { count: number; p50: number; p99: number; max: number }) =>
    `  ${name.padEnd(28)} ${String(r.count).padStart(5)} samples  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  max ${fmt(r.max)} ms`;
  const { background: b } = result;
  console.log(
    [
      `1. propagation: disconnect request sent -> the invoices API answers 401 (${result.taken} samples, one at a time` +
        (result.taken < options.samples
          ? `; STOPPED at BENCH_REVOCATION_MAX_SECONDS, ${options.samples} asked)`
          : ')'),
      '   measured at the API: asked back to back over one keep-alive connection from the moment the DELETE',
      `   is sent; a sample ends on receiving the first 401 (upper bound; one request to the API took ${fmt(result.probeMs, 2)} ms on average)`,
      line('all', result.all),
      line('one organisation of a grant', result.organisation),
      line('a grant', result.grant),
      '  where the time went (a consumer of its own on the grants and revocations topics):',
      line('request -> event recorded', result.hops.consent),
      line('-> sent to the grants topic', result.hops.relay),
      line('-> delivered from it', result.hops.delivered),
      line('-> sent to revocations topic', result.hops.projector),
      line('-> delivered from it', result.hops.published),
      line('-> the API answers 401', result.hops.sdk),
      `  the disconnect request's own answer (204) took p50 ${fmt(result.answered.p50)} ms, p99 ${fmt(result.answered.p99)} ms`,
      `  target p99 < 100 ms: ${result.all.p99 < 100 && result.failures.length === 0 ? 'met' : 'NOT met'}`,
      `  background: ${fmt(b.rate, 0)} tokens/s answered 2xx over ${fmt(b.seconds, 0)} s (asked ${options.rate}/s, open loop;` +
        ` other statuses ${b.other}, errors ${b.errors}, not sent with 1,000 in flight ${b.skipped})`,
      ...(result.failures.length
        ? [`  failed samples ${result.failures.length}: ${result.failures.slice(0, 5).join('; ')}`]
        : []),
    ].join('\n'),
  );
};
