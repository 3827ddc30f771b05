// A stateful function written with Apache Flink StateFun's own JavaScript
// SDK (npm apache-flink-statefun), served on node's http server: dispatchd
// must run it unchanged. jsdemo/counter keeps "count" (an int, StateFun's
// io.statefun.types/int) and "last" (a string that expires 1 s after it is
// written); each message adds one and emits the count to the egress
// jsdemo/out. "arm" sends itself "fired" after 300 ms with the cancellation
// token "tok" ("arm:<ms>" after that many ms), "disarm" cancels it; "forward:<id>" sends "hello" to
// jsdemo/counter <id>, which replies to its caller with "ack".
// Usage: node counter_fn.cjs PORT_FILE
"use strict";
const http = require("http");
const fs = require("fs");
const {StateFun, messageBuilder, egressMessageBuilder} = require("apache-flink-statefun");

const statefun = new StateFun();
statefun.bind({
  typename: "jsdemo/counter",
  specs: [
    {name: "count", type: StateFun.intType()},
    {name: "last", type: StateFun.stringType(), expireAfterWrite: 1000},
  ],
  fn(context, message) {
    const text = message.asString();
    const count = (context.storage.count || 0) + 1;
    context.storage.count = count;
    context.storage.last = text;
    context.send(egressMessageBuilder({typename: "jsdemo/out", value: count, valueType: StateFun.intType()}));
    if (text === "arm" || text.startsWith("arm:")) {
      const delayMs = text === "arm" ? 300 : Number(text.substring(4));
      context.sendAfter(delayMs, messageBuilder({typename: "jsdemo/counter", id: context.self.id, value: "fired"}), "tok");
    } else if (text === "disarm") {
      context.cancelDelayedMessage("tok");
    } else if (text.startsWith("forward:")) {
      context.send(messageBuilder({typename: "jsdemo/counter", id: text.substring(8), value: "hello"}));
    } else if (text === "hello" && context.caller) {
      context.send(messageBuilder({typename: context.caller.typename, id: context.caller.id, value: "ack"}));
    }
  },
});

const server = http.createServer(statefun.handler());
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(process.argv[2] + ".tmp", String(server.address().port));
  fs.renameSync(process.argv[2] + ".tmp", process.argv[2]);
});
