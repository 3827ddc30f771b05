// A request signed by npm's http-message-signatures (RFC 9421, Ed25519) and
// sent by node's own http client over the network to a verifying shop-server
// (DISPATCH_VERIFICATION_KEY set to the public half of a key node made):
// accepted in binary and JSON; refused (403) once the body is changed after
// signing, refused (403) with another key, refused (401) unsigned.
// And the other way: shop-client (dispatch::HttpClient with
// DISPATCH_SIGNING_KEY) calls a node http server, which verifies the request
// exactly as it arrived on the socket with the same library.
// Usage: node node_signed_call.cjs <node_modules> <shop-server> <shop-client>
'use strict';
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const { spawn } = require('child_process');

const [modules, shopServer, shopClient] = process.argv.slice(2);
const { httpbis, createSigner, createVerifier } = require(path.join(modules, 'http-message-signatures'));

const components = ['@method', '@path', '@authority', 'content-type', 'content-digest'];
const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
const other = crypto.generateKeyPairSync('ed25519').privateKey;
const sha512 = (b) => `sha-512=:${crypto.createHash('sha512').update(b).digest('base64')}:`;

let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

function startServer() {
  // The PEM with literal \n, as environment variables usually carry it.
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).trim().split('\n').join('\\n');
  const env = { ...process.env, DISPATCH_ENDPOINT_ADDR: '127.0.0.1:0', DISPATCH_VERIFICATION_KEY: pem };
  delete env.PORT;
  const child = spawn(shopServer, [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) resolve({ child, port: Number(m[1]), log: () => log });
    });
    child.on('exit', (code) => reject(new Error(`shop-server exited (${code}) before listening:\n${log}`)));
  });
}

async function sign(key, request) {
  return httpbis.signMessage({
    key: createSigner(key, 'ed25519', 'default'),
    name: 'dispatch',
    fields: components,
    params: ['created', 'keyid', 'alg'],
  }, request);
}

// Sends with node's http client; resolves {status, body}.
function send(port, { path: target, headers, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: target, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function call(port, { key, fn, contentType, body, tamper }) {
  const target = `/shop.ApiService/${fn}`;
  const request = {
    method: 'POST',
    url: `http://127.0.0.1:${port}${target}`,
    headers: { host: `127.0.0.1:${port}`, 'content-type': contentType, 'content-digest': sha512(body) },
  };
  const signed = key ? await sign(key, request) : request;
  const sent = { path: target, headers: { ...signed.headers }, body };
  if (tamper) tamper(sent);
  return send(port, sent);
}

// shop-client signs; node receives and verifies. Every request is answered
// with a Connect error, so shop-client stops after its first call.
async function ourClientSignsNodeVerifies() {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ method: req.method, target: req.url, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"code":"unimplemented","message":"node test server"}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const env = { ...process.env, DISPATCH_SIGNING_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
  const child = spawn(shopClient, [`http://127.0.0.1:${port}`], { env, stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  server.close();
  check(received.length >= 1, `shop-client sent ${received.length} request(s) to node`);
  if (!received.length) return;
  const r = received[0];
  console.log(`shop-client sent ${r.method} ${r.target}\n  signature-input: ${r.headers['signature-input']}`);
  check(r.headers['content-digest'] === sha512(r.body), 'Content-Digest is the sha-512 of the body received');
  const config = {
    keyLookup: async (params) => (params.keyid === 'default'
      ? { id: 'default', algs: ['ed25519'], verify: createVerifier(publicKey, 'ed25519') }
      : null),
    requiredFields: components,
    requiredParams: ['created', 'keyid', 'alg'],
    maxAge: 300,
    tolerance: 5,
  };
  const verify = async (method, target) => {
    try {
      return await httpbis.verifyMessage(config, {
        method, url: `http://${r.headers.host}${target}`, headers: r.headers,
      });
    } catch (e) {
      return `threw ${e.message}`;
    }
  };
  let ok = await verify(r.method, r.target);
  check(ok === true, `node verifies dispatch::HttpClient's signature as received [${ok}]`);
  ok = await verify(r.method, '/shop.ApiService/slow');
  check(ok === false, `node refuses it with another path [${ok}]`);
}

(async () => {
  await ourClientSignsNodeVerifies();
  const server = await startServer();
  const { port } = server;
  try {
    // add(40, 2) in binary: field 1 = 40, field 2 = 2.
    const binary = Buffer.from([0x08, 0x28, 0x10, 0x02]);
    let r = await call(port, { key: privateKey, fn: 'add', contentType: 'application/proto', body: binary });
    check(r.status === 200 && r.body.equals(Buffer.from([0x08, 0x2a])),
          `binary add(40, 2) signed by node -> ${r.status} ${r.body.toString('hex')}`);

    const json = Buffer.from('{"items":[{"sku":"fig","qty":2,"price":1.5}],"customer":"77"}');
    r = await call(port, { key: privateKey, fn: 'place_order', contentType: 'application/json', body: json });
    check(r.status === 200 && r.body.toString().includes('"customer":"77"'),
          `JSON place_order signed by node -> ${r.status} ${r.body}`);

    r = await call(port, {
      key: privateKey, fn: 'add', contentType: 'application/proto', body: binary,
      tamper: (s) => { s.body = Buffer.from([0x08, 0x29, 0x10, 0x02]); },
    });
    check(r.status === 403 && r.body.toString().includes('does not match the request body'),
          `body changed after signing -> ${r.status} ${r.body}`);

    r = await call(port, {
      key: privateKey, fn: 'add', contentType: 'application/proto', body: binary,
      tamper: (s) => { s.path = '/shop.ApiService/slow'; },
    });
    check(r.status === 403 && r.body.toString().includes('permission_denied'),
          `path changed after signing -> ${r.status} ${r.body}`);

    r = await call(port, { key: other, fn: 'add', contentType: 'application/proto', body: binary });
    check(r.status === 403 && r.body.toString().includes('does not verify'),
          `signed with another key -> ${r.status} ${r.body}`);

    r = await call(port, { key: null, fn: 'add', contentType: 'application/proto', body: binary });
    check(r.status === 401 && r.body.toString().includes('unauthenticated'),
          `unsigned -> ${r.status} ${r.body}`);
  } finally {
    server.child.kill('SIGTERM');
  }
  if (failures) {
    console.log(`${failures} check(s) failed; server log:\n${server.log()}`);
    process.exit(1);
  }
  console.log('node-signed calls ok');
})().catch((e) => {
  console.log(`FAIL: ${e.stack}`);
  process.exit(1);
});
