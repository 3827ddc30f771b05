// A stock client (connect-node + protoc-gen-es output) calling every shop
// function. Usage:
//   node client.mjs BASE_URL binary|json|gzip [1.1|2] [connect|grpc|grpc-web]
// (gzip: binary, with requests gzip-compressed and gzip answers accepted;
// 2: over HTTP/2 without TLS, prior knowledge, as connect-node does for an
// http:// URL; the protocol is connect-node's own transport of that name,
// Connect by default; gRPC needs HTTP/2). Connect calls functions marked
// idempotency = "no_side_effects" (getOrder) with GET. Prints one line per
// check; exits 1 if any check failed.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import {
  createConnectTransport, createGrpcTransport, createGrpcWebTransport, compressionGzip,
} from "@connectrpc/connect-node";
import diagnostics_channel from "node:diagnostics_channel";
import { ApiService } from "./gen/shop/api_pb.js";

const [baseUrl, format, httpVersion = "1.1", protocol = "connect"] = process.argv.slice(2);
const makers = { connect: createConnectTransport, grpc: createGrpcTransport, "grpc-web": createGrpcWebTransport };
if (!makers[protocol]) {
  console.log(`FAIL unknown protocol ${protocol}`);
  process.exit(1);
}
// The HTTP method of each HTTP/1.1 request, by path, as node's http client
// sends it: Connect sends getOrder (idempotency_level = NO_SIDE_EFFECTS in
// the .proto) with GET. (Node 20 has no such channel for HTTP/2.)
const methods = {};
diagnostics_channel.subscribe("http.client.request.start", ({ request }) => {
  methods[request.path.split("?")[0].split("/").pop()] = request.method;
});
const transport = makers[protocol]({
  baseUrl,
  httpVersion,
  ...(protocol === "connect" ? { useHttpGet: true } : {}),
  useBinaryFormat: format !== "json",
  ...(format === "gzip" ? { sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 0 }
                        : { acceptCompression: [] }),
});
const client = createClient(ApiService, transport);
// protoc-gen-es names methods after the .proto (place_order) in some
// versions and lowerCamelCase (placeOrder) in others; accept either.
const camel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const shop = new Proxy({}, { get: (_, name) => client[name] ?? client[camel(name)] });
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} [${protocol}, ${format}, HTTP/${httpVersion}] ${what}`);
  if (!ok) failed++;
};
const fails = async (what, code, call) => {
  try {
    await call();
    check(false, `${what}: expected ${Code[code]}, got success`);
  } catch (e) {
    const err = ConnectError.from(e);
    check(err.code === code, `${what} -> ${Code[err.code]}: ${err.rawMessage}`);
  }
};

try {
  const sum = await shop.add({ a: 40n, b: 2n });
  check(sum.result === 42n, `add(40, 2) = ${sum.result}`);

  const placed = await shop.place_order({
    items: [{ sku: "apple", qty: 3, price: 0.5 }, { sku: "pear", qty: 1, price: 0.75 }],
    customer: "1001",
  });
  const order = placed.result;
  check(order.customer === 1001n && order.items.length === 2 && order.items[1].price === 0.75,
        `placeOrder -> ${order.id}, customer ${order.customer}, ${order.items.length} items`);

  // An order big enough (over 1 KiB) for the server to gzip its answer
  // when the client accepts gzip.
  const many = Array.from({ length: 80 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, price: 0.25 }));
  const big = await shop.place_order({ items: many, customer: "1002" });
  check(big.result.items.length === 80 && big.result.items[79].sku === "sku-79",
        `placeOrder with 80 items -> ${big.result.items.length} items back`);

  await shop.charge_v2({ order });
  const got = await shop.get_order({ id: order.id });
  check(got.result.id === order.id && got.result.status !== order.status,
        `chargeV2(${order.id}) then getOrder -> status ${got.result.status} (was ${order.status})`);
  if (httpVersion === "1.1") {
    const wanted = protocol === "connect" ? "GET" : "POST";
    check(methods["get_order"] === wanted && methods["charge_v2"] === "POST",
          `getOrder went as ${methods["get_order"]} (want ${wanted}), chargeV2 as ${methods["charge_v2"]}`);
  }

  const slept = await shop.slow({ ms: 5 });
  check(slept.result === "slept 5 ms", `slow(5) -> "${slept.result}"`);

  await fails("getOrder(o-none)", Code.NotFound, () => shop.get_order({ id: "o-none" }));
  await fails("placeOrder(customer 'x')", Code.InvalidArgument,
              () => shop.place_order({ items: [{ sku: "a", qty: 1, price: 1 }], customer: "x" }));
  await fails("chargeV2 again", Code.FailedPrecondition, () => shop.charge_v2({ order }));
  await fails("slow(2000) with timeoutMs 100", Code.DeadlineExceeded,
              () => shop.slow({ ms: 2000 }, { timeoutMs: 100 }));
} catch (e) {
  check(false, `unexpected error: ${e}`);
}
process.exit(failed ? 1 : 0);
