// A stock server (connect-node + protoc-gen-es output) implementing the
// shop's emitted .proto as examples/shop/impl.cc does, for our clients to
// call: the other direction of the Connect interop. Usage:
//   node server.mjs
// Listens on 127.0.0.1, a free port each: HTTP/1.1 (Connect, gRPC-Web) and
// HTTP/2 without TLS (Connect, gRPC, gRPC-Web), all of connect-node's
// protocols on each, gzip accepted and answered. Prints
//   listening http1 PORT
//   listening http2 PORT
// then a line per request as it arrives:
//   request METHOD PATH CONTENT-TYPE ENCODING
// (ENCODING: the request's grpc-encoding or content-encoding, "-" if none) so the driver can check how each call went over the wire. getOrder's
// not_found carries a google.protobuf.StringValue detail (the id asked for).
import { createServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { ApiService } from "./gen/shop/api_pb.js";

const PENDING = 0, PAID = 1;
const orders = new Map();
let nextId = 1;

const impl = {
  add(req) {
    return { result: req.a + req.b };
  },
  placeOrder(req) {
    if (!/^[+-]?[0-9]+$/.test(req.customer)) {
      throw new ConnectError(`customer '${req.customer}' is not a customer number`, Code.InvalidArgument);
    }
    if (req.items.length === 0) throw new ConnectError("an order needs at least one item", Code.InvalidArgument);
    for (const item of req.items) {
      if (item.qty <= 0) {
        throw new ConnectError(`item '${item.sku}' has qty ${item.qty}; quantities must be positive`,
                               Code.InvalidArgument);
      }
    }
    const order = {
      id: `o-${nextId++}`,
      customer: BigInt(req.customer),
      items: req.items,
      status: PENDING,
      tags: req.items.map((item) => BigInt(item.qty)),
      ...(req.items.length > 3 ? { note: "bulk order" } : {}),
    };
    orders.set(order.id, order);
    return { result: order };
  },
  chargeV2(req) {
    const order = orders.get(req.order?.id ?? "");
    if (!order) throw new ConnectError(`no order '${req.order?.id}'`, Code.NotFound);
    if (order.status !== PENDING) throw new ConnectError(`order '${order.id}' is not pending`, Code.FailedPrecondition);
    order.status = PAID;
    return {};
  },
  getOrder(req) {
    const order = orders.get(req.id);
    if (!order) {
      throw new ConnectError(`no order '${req.id}'`, Code.NotFound, undefined,
                             [{ desc: StringValueSchema, value: { value: req.id } }]);
    }
    return { result: order };
  },
  async slow(req, ctx) {
    if (req.ms < 0 || req.ms > 60000) throw new ConnectError(`ms must be 0..60000, got ${req.ms}`, Code.InvalidArgument);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, req.ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ConnectError.from(ctx.signal.reason));
      });
    });
    return { result: `slept ${req.ms} ms` };
  },
};

// protoc-gen-es names methods after the .proto (place_order) in some
// versions and lowerCamelCase (placeOrder) in others: register both.
const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const service = {};
for (const [name, fn] of Object.entries(impl)) service[name] = service[snake(name)] = fn;

const adapter = connectNodeAdapter({ routes: (router) => router.service(ApiService, service) });
const logged = (req, res) => {
  const encoding = req.headers["grpc-encoding"] ?? req.headers["content-encoding"] ?? "-";
  console.log(`request ${req.method} ${req.url.split("?")[0]} ${req.headers["content-type"] ?? "-"} ${encoding}`);
  adapter(req, res);
};

const listen = (server, name) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    console.log(`listening ${name} ${server.address().port}`);
    resolve();
  }));
await listen(createServer(logged), "http1");
await listen(createHttp2Server(logged), "http2");
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
