#!/usr/bin/env node
// validate.mjs OPENAPI.yaml DIR: checks every response dumped in DIR (by
// `ARBOR_API_DUMP=DIR test_api --run api_dump_responses`) against the OpenAPI
// document, with ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses).
//
// A dump file is {"method","path","status","content_type","body"} for an HTTP
// response, or {"schema": NAME, "what", "body"} for a piece of a stream (an
// SSE event's data) checked against components.schemas[NAME]. For a response
// the operation is found by matching the path against the document's path
// templates; its status must be documented (an undocumented status fails), the
// content type must be the documented one, and the body must match its schema.
// Prints one line per file and "schema check: N ok, N failed"; exits 1 on any failure.
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const [docPath, dir] = process.argv.slice(2);
if (!docPath || !dir) {
  console.error('usage: validate.mjs OPENAPI.yaml DIR');
  process.exit(64);
}
const doc = YAML.parse(fs.readFileSync(docPath, 'utf8'));

// The components as one schema resource, so "#/components/..." refs resolve.
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
ajv.addSchema({ $id: 'api', components: doc.components });

// "#/components/x" inside a schema taken out of the document -> "api#/components/x".
function rebase(node) {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node))
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? 'api' + v : rebase(v);
    return out;
  }
  return node;
}

function deref(obj) {
  while (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, '').split('/');
    obj = parts.reduce((o, p) => o[p.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return obj;
}

const templates = Object.keys(doc.paths).map((t) => ({
  t,
  re: new RegExp('^' + t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));

const cache = new Map();
function validator(key, schema) {
  if (!cache.has(key)) cache.set(key, ajv.compile(rebase(schema)));
  return cache.get(key);
}

function check(d) {
  if (d.schema) {
    const s = doc.components.schemas[d.schema];
    if (!s) return [`no schema ${d.schema} in the document`];
    const v = validator('schema:' + d.schema, { $ref: '#/components/schemas/' + d.schema });
    return v(d.body) ? [] : v.errors.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
  const p = d.path.split('?')[0];
  const m = templates.find((x) => x.re.test(p));
  if (!m) return [`path ${p} is not in the document`];
  const op = doc.paths[m.t][d.method.toLowerCase()];
  if (!op) {
    // Another method on a documented path: 405 with the error body.
    if (d.status !== 405) return [`${d.method} ${m.t} is not in the document (status ${d.status}, want 405)`];
    const v = validator('schema:ErrorResponse', { $ref: '#/components/schemas/ErrorResponse' });
    return v(d.body) ? [] : v.errors.map((e) => `${e.instancePath || '/'} ${e.message}`);
  }
  const resp = deref(op.responses[String(d.status)] || op.responses.default);
  if (!resp) return [`status ${d.status} is not documented for ${d.method} ${m.t}`];
  const ct = (d.content_type || '').split(';')[0].trim();
  const media = resp.content && resp.content[ct];
  if (!media) return [`content type ${ct} is not documented for ${d.method} ${m.t} ${d.status}`];
  if (!media.schema || ct !== 'application/json') return [];
  const key = `${d.method} ${m.t} ${d.status} ${ct}`;
  const v = validator(key, media.schema);
  return v(d.body) ? [] : v.errors.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
let passed = 0, failed = 0;
for (const f of files) {
  let d, errs;
  try {
    d = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    errs = check(d);
  } catch (e) {
    errs = [String(e)];
  }
  const what = d ? (d.schema ? `${d.schema} (${d.what || ''})` : `${d.method} ${d.path} ${d.status}`) : f;
  if (errs.length === 0) {
    passed++;
    console.log(`ok    ${what}`);
  } else {
    failed++;
    console.log(`FAIL  ${what}`);
    for (const e of errs.slice(0, 10)) console.log(`        ${e}`);
  }
}
if (files.length === 0) {
  console.log('no responses to check');
  failed++;
}
console.log(`schema check: ${passed} ok, ${failed} failed`);
process.exit(failed ? 1 : 0);
