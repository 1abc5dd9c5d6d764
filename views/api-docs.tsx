/** @jsxImportSource @kitajs/html */
// The API's documentation page (/docs): the OpenAPI document
// (lib/server/http/openapi.ts) rendered on the server, one section per area,
// each operation with who may call it, its parameters, its body schema, an
// example and the curl line. No script: it works offline and under the CSP.

import { Layout } from "./layout.tsx";
import { esc, type Shell } from "./parts.tsx";

/** A parameter of an operation. */
export interface ApiParameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: Record<string, unknown>;
  example?: string;
}

/** One operation of the document. */
export interface ApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  "x-access": string;
  parameters: ApiParameter[];
  requestBody?: { content: { "application/json": { schema: unknown; example?: unknown } } };
  responses: Record<string, { description: string }>;
}

/** The OpenAPI document, as far as the page reads it. */
export interface ApiDoc {
  openapi: string;
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, ApiOperation>>;
  [key: string]: unknown;
}

/** Who may call an access level (lib/server/http/auth/policy.ts), in words. */
const WHO: Record<string, string> = {
  public: "anyone",
  "sign-in": "anyone",
  kiosk: "any reader",
  read: "a read or write token, or a signed-in account",
  account: "a signed-in account",
  self: "a signed-in account",
  owner: "the owner (write token or session)",
  write: "a write token, or the owner's session with its CSRF token",
};

/** What a schema says about a value, in a few words. */
function describe(schema: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof schema.type === "string") parts.push(schema.type);
  if (typeof schema.description === "string") parts.push(schema.description);
  return parts.join(": ");
}

/** The curl line of an operation with its example. */
function curl(method: string, path: string, op: ApiOperation): string {
  let url = path;
  const query: string[] = [];
  for (const p of op.parameters) {
    if (p.example === undefined) continue;
    if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(p.example));
    else query.push(`${p.name}=${encodeURIComponent(p.example)}`);
  }
  const full = `http://techtemp.local:3000${url}${query.length ? `?${query.join("&")}` : ""}`;
  const auth = op["x-access"] === "public" ? "" : ' -H "Authorization: Bearer $TOKEN"';
  const body = op.requestBody?.content["application/json"].example;
  const data = body === undefined ? "" : ` -H 'content-type: application/json' -d '${JSON.stringify(body)}'`;
  return `curl -s${method === "get" ? "" : ` -X ${method.toUpperCase()}`}${auth}${data} '${full}'`;
}

function Operation({ method, path, op }: { method: string; path: string; op: ApiOperation }): JSX.Element {
  const body = op.requestBody?.content["application/json"];
  return (
    <section class="panel api-op" id={esc(op.operationId)}>
      <h3>
        <code>
          {esc(method.toUpperCase())} {esc(path)}
        </code>
      </h3>
      <p>
        {esc(op.summary)} <span class="muted">· {esc(WHO[op["x-access"]] ?? op["x-access"])}</span>
      </p>
      {op.description ? <p>{esc(op.description)}</p> : ""}
      {op.parameters.length ? (
        <table>
          <thead>
            <tr>
              <th>parameter</th>
              <th>in</th>
              <th>what</th>
              <th>example</th>
            </tr>
          </thead>
          <tbody>
            {op.parameters.map((p) => (
              <tr>
                <td>
                  <code>{esc(p.name)}</code>
                  {p.required ? " *" : ""}
                </td>
                <td>{esc(p.in)}</td>
                <td>{esc(describe(p.schema))}</td>
                <td>{p.example === undefined ? "" : <code>{esc(p.example)}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        ""
      )}
      {body ? (
        <details>
          <summary>JSON body schema</summary>
          <pre>{esc(JSON.stringify(body.schema, null, 2))}</pre>
        </details>
      ) : (
        ""
      )}
      <pre class="curl">{esc(curl(method, path, op))}</pre>
      <p class="muted">
        Answers:{" "}
        {esc(
          Object.entries(op.responses)
            .map(([code, r]) => `${code} ${r.description}`)
            .join(" · "),
        )}
      </p>
    </section>
  );
}

/** The whole documentation page. */
export function ApiDocsPage({ shell, doc }: { shell: Shell; doc: ApiDoc }): JSX.Element {
  const byTag = new Map<string, { method: string; path: string; op: ApiOperation }[]>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = op.tags[0] ?? "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push({ method, path, op });
    }
  }
  return (
    <Layout shell={shell} title="API" section="docs">
      <main id="content">
        <h1>
          {esc(doc.info.title)} <small class="muted">{esc(doc.info.version)}</small>
        </h1>
        <p>{esc(doc.info.description)}</p>
        <p>
          The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI {esc(doc.openapi)}). Make a token on{" "}
          <a href="/tokens">API tokens</a> and set <code>TOKEN</code> to it.
        </p>
        <nav class="api-tags">
          {[...byTag.keys()].map((tag) => (
            <a href={`#tag-${esc(tag)}`}>{esc(tag)}</a>
          ))}
        </nav>
        {[...byTag].map(([tag, ops]) => (
          <>
            <h2 id={`tag-${esc(tag)}`}>{esc(tag)}</h2>
            {ops.map((o) => (
              <Operation method={o.method} path={o.path} op={o.op} />
            ))}
          </>
        ))}
      </main>
    </Layout>
  );
}
