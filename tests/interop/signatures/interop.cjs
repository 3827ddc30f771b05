// Interop with npm's http-message-signatures (RFC 9421), both directions:
//  (a) node signs a request with the Dispatch component list and an Ed25519
//      key; dispatch-sigtool (our Verifier) must accept it, and must refuse
//      it once the body, the method or the authority is changed;
//  (b) dispatch-sigtool (our Signer) signs; node must verify it, and must
//      refuse it once the method is changed; node recomputes Content-Digest.
// Usage: node interop.cjs <node_modules> <dispatch-sigtool> <scratch dir>
'use strict';
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const { execFileSync, spawnSync } = require('child_process');

const [modules, sigtool, scratch] = process.argv.slice(2);
const { httpbis, createSigner, createVerifier } = require(path.join(modules, 'http-message-signatures'));

const components = ['@method', '@path', '@authority', 'content-type', 'content-digest'];
const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
const file = (name, data) => {
  const p = path.join(scratch, name);
  fs.writeFileSync(p, data);
  return p;
};
const privPem = file('key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }));
const pubPem = file('pub.pem', publicKey.export({ type: 'spki', format: 'pem' }));
const body = Buffer.from([0x0a, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x12, 0x02, 0x08, 0x2a, 0xff, 0x00]);
const bodyFile = file('body.bin', body);
const otherBodyFile = file('other.bin', Buffer.concat([body, Buffer.from([0x01])]));
const target = '/dispatch.sdk.v1.FunctionService/Run';
const authority = '127.0.0.1:8123';
const url = `http://${authority}${target}`;
const sha512 = (b) => `sha-512=:${crypto.createHash('sha512').update(b).digest('base64')}:`;

let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

function ourVerify(headersFile, { method = 'POST', auth = authority, bodyPath = bodyFile } = {}) {
  const r = spawnSync(sigtool, ['verify', '--pub', pubPem, '--method', method, '--target', target,
    '--authority', auth, '--headers', headersFile, '--body', bodyPath], { encoding: 'utf8' });
  return { status: r.status, out: (r.stdout + r.stderr).trim() };
}

async function nodeSignsWeVerify() {
  const request = {
    method: 'POST',
    url,
    headers: { 'content-type': 'application/proto', 'content-digest': sha512(body) },
  };
  const signed = await httpbis.signMessage({
    key: createSigner(privateKey, 'ed25519', 'default'),
    name: 'dispatch',
    fields: components,
    params: ['created', 'keyid', 'alg'],
  }, request);
  const lines = Object.entries(signed.headers).map(([k, v]) => `${k}: ${[].concat(v).join(', ')}`);
  console.log(`node signed:\n  ${lines.join('\n  ')}`);
  const headersFile = file('node-signed.txt', lines.join('\n') + '\n');

  let r = ourVerify(headersFile);
  check(r.status === 0, `(a) our Verifier accepts node's signature [${r.out}]`);
  r = ourVerify(headersFile, { bodyPath: otherBodyFile });
  check(r.status === 1 && r.out.includes('does not match the request body'),
        `(a) our Verifier refuses a changed body [${r.out}]`);
  r = ourVerify(headersFile, { method: 'PUT' });
  check(r.status === 1 && r.out.startsWith('permission_denied'), `(a) ... a changed method [${r.out}]`);
  r = ourVerify(headersFile, { auth: 'attacker.example' });
  check(r.status === 1 && r.out.startsWith('permission_denied'), `(a) ... a changed authority [${r.out}]`);
}

async function weSignNodeVerifies() {
  const out = execFileSync(sigtool, ['sign', '--key', privPem, '--method', 'POST', '--target', target,
    '--authority', authority, '--content-type', 'application/proto', '--body', bodyFile],
  { encoding: 'utf8' });
  console.log(`we signed:\n  ${out.trim().split('\n').join('\n  ')}`);
  const headers = { 'content-type': 'application/proto' };
  for (const line of out.trim().split('\n')) {
    const i = line.indexOf(': ');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 2);
  }
  check(headers['content-digest'] === sha512(body), '(b) our Content-Digest equals node\'s sha-512');
  const config = {
    keyLookup: async (params) => (params.keyid === 'default'
      ? { id: 'default', algs: ['ed25519'], verify: createVerifier(publicKey, 'ed25519') }
      : null),
    requiredFields: components,
    requiredParams: ['created', 'keyid', 'alg'],
    maxAge: 300,
    tolerance: 5,
  };
  const verify = async (method) => {
    try {
      return await httpbis.verifyMessage(config, { method, url, headers });
    } catch (e) {
      return `threw ${e.message}`;
    }
  };
  let result = await verify('POST');
  check(result === true, `(b) node verifies our signature [${result}]`);
  result = await verify('PUT');
  check(result === false, `(b) node refuses it with a changed method [${result}]`);
}

(async () => {
  await nodeSignsWeVerify();
  await weSignNodeVerifies();
  if (failures) {
    console.log(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('signature interop ok');
})().catch((e) => {
  console.log(`FAIL: ${e.stack}`);
  process.exit(1);
});
