// The image's HEALTHCHECK, in node (the image has no curl): GET http://127.0.0.1:$PORT<path> and exit 0
// on the expected status. Defaults: /readyz (ready to serve: database, Kafka, Redis answer) and 200.
//   node /app/healthcheck.mjs [path] [status]
const [path = process.env.HEALTHCHECK_PATH ?? '/readyz', expected = '200'] = process.argv.slice(2);
const url = `http://127.0.0.1:${process.env.PORT ?? '8080'}${path}`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  process.exit(String(response.status) === expected ? 0 : 1);
} catch {
  process.exit(1);
}
