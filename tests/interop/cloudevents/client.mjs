// Sends events made by the CloudEvents JavaScript SDK to a server of
// [[dispatch::event]] functions (tests/server_without_main/orders), in binary
// and structured mode, and reads each reply back with the SDK, which checks
// it against the spec.
//   node client.mjs URL
import { CloudEvent, HTTP } from "cloudevents";

const url = process.argv[2];
let failures = 0;
function check(what, ok, detail) {
  if (!ok) {
    failures++;
    console.error(`FAIL ${what}: ${detail}`);
  }
}

async function deliver(mode, event) {
  const message = mode === "binary" ? HTTP.binary(event) : HTTP.structured(event);
  const response = await fetch(url, { method: "POST", headers: message.headers, body: message.body });
  const headers = {};
  response.headers.forEach((value, name) => { headers[name] = value; });
  return { status: response.status, headers, body: await response.text() };
}

for (const mode of ["binary", "structured"]) {
  const placed = new CloudEvent({
    type: "com.example.order.placed",
    source: "/sdk/test",
    subject: `order-${mode}`,
    datacontenttype: "application/json",
    data: { id: `o-${mode}`, amount: 9 },
  });
  const r = await deliver(mode, placed);
  check(`${mode} status`, r.status === 200, `${r.status} ${r.body}`);
  if (r.status === 200) {
    let reply;
    try {
      reply = HTTP.toEvent({ headers: r.headers, body: r.body });
    } catch (e) {
      check(`${mode} reply is a valid event`, false, `${e} ${JSON.stringify(r.headers)} ${r.body}`);
      continue;
    }
    const data = typeof reply.data === "string" ? JSON.parse(reply.data) : reply.data;
    check(`${mode} reply type`, reply.type === "com.example.receipt.issued", reply.type);
    check(`${mode} reply specversion`, reply.specversion === "1.0", reply.specversion);
    check(`${mode} reply id`, typeof reply.id === "string" && reply.id !== placed.id, reply.id);
    check(`${mode} reply data`, data.orderId === `o-${mode}` && data.total === "18", JSON.stringify(data));
    const structured = (r.headers["content-type"] || "").startsWith("application/cloudevents+json");
    check(`${mode} reply mode`, structured === (mode === "structured"), r.headers["content-type"]);
  }
  const cancelled = new CloudEvent({
    type: "com.example.order.cancelled",
    source: "/sdk/test",
    datacontenttype: "application/json",
    data: { id: "o-1" },
  });
  const c = await deliver(mode, cancelled);
  check(`${mode} no reply`, c.status === 202 && c.body === "", `${c.status} ${c.body}`);
}

if (failures) process.exit(1);
console.log("ok: the CloudEvents JavaScript SDK's events and replies, binary and structured");
