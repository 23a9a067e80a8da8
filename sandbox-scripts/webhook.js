// webhook.js — another service calls a URL; a verified call becomes a mail.
//
// Set up (owner): put webhook.json in the thwonk's files:
//   {"secret": "a long random string shared with the service", "notify": "you@example.org"}
// The service POSTs JSON to /pub/{address}/hook with the header
//   X-Signature: sha256=<hex HMAC-SHA-256 of the raw body under the secret>
// (the GitHub style). A good signature mails the payload to `notify` and answers 200; a bad
// or missing one answers 401 and changes nothing.

export const publicRoutes = ["POST /hook"];

export function onMessage(msg, thwonk) {
  // Mail to the thwonk is not this example's business.
}

export function onRequest(req, thwonk) {
  const config = thwonk.files.readJSON("webhook.json");
  if (!config || !config.secret || !config.notify) {
    return { status: 503, body: "this webhook is not set up yet" };
  }
  const given = String(req.headers["x-signature"] ?? "");
  const expected = "sha256=" + thwonk.crypto.hmacSha256(config.secret, req.text());
  if (!thwonk.crypto.timingSafeEqual(given, expected)) {
    thwonk.log("refused a call with a bad signature from", req.caller.ip);
    return { status: 401, body: "bad signature" };
  }
  let payload;
  try {
    payload = req.json();
  } catch (e) {
    return { status: 400, body: "the body is not JSON" };
  }
  const event = String(payload.event ?? "event").slice(0, 100);
  thwonk.send({
    to: config.notify,
    subject: `webhook: ${event}`,
    text: JSON.stringify(payload, null, 2),
  });
  return { ok: true, event };
}
