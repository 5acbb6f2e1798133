/// `GET /docs`: one self-contained page that reads `openapi.json` (relative, so it works behind a path prefix) and
/// renders it: operations by tag, parameters, bodies and answers as field tables, and a form to send a request with a
/// token. No external scripts or fonts, so it works on clusters without internet access (the original loads Swagger UI
/// from a CDN).
enum DocsPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>remas API</title>
        <style>
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
        header { background: #1d2330; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
        header h1 { font-size: 18px; margin: 0; flex: 1; }
        header input { width: 340px; padding: 5px; border-radius: 4px; border: 0; font-family: monospace; }
        main { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
        h2 { text-transform: capitalize; border-bottom: 1px solid #ccd; padding-bottom: 4px; margin-top: 28px; }
        details.op { background: #fff; border: 1px solid #d6d9e0; border-radius: 6px; margin: 8px 0; }
        details.op > summary { cursor: pointer; padding: 8px 12px; display: flex; gap: 12px; align-items: baseline; }
        .m { display: inline-block; min-width: 62px; text-align: center; font-weight: 700; color: #fff; border-radius: 4px; padding: 1px 6px; font-size: 12px; }
        .get { background: #2f7bd8; } .post { background: #2e9b57; } .put { background: #c48a12; } .delete { background: #c43d3d; }
        .path { font-family: monospace; font-size: 14px; }
        .lock { color: #8a6d00; font-size: 12px; }
        .body { padding: 4px 16px 14px; border-top: 1px solid #eceef2; }
        table { border-collapse: collapse; margin: 6px 0; }
        td, th { text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }
        td.f { font-family: monospace; white-space: nowrap; }
        .t { color: #5a6275; font-family: monospace; }
        .req { color: #c43d3d; }
        textarea { width: 100%; min-height: 110px; font-family: monospace; }
        pre { background: #f0f2f5; padding: 8px; overflow: auto; max-height: 360px; }
        button { padding: 4px 14px; }
        </style>
        </head>
        <body>
        <header><h1 id="title">remas API</h1>
        <label>Bearer token <input id="token" placeholder="access token from POST /authentication/token"></label>
        <a href="openapi.json" style="color:#9cf">openapi.json</a></header>
        <main id="main">Loading openapi.json …</main>
        <script>
        "use strict";
        const el = (tag, attrs = {}, ...kids) => {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
          for (const k of kids) e.append(k);
          return e;
        };
        let doc;
        const resolve = s => {
          while (s && s.$ref) s = doc.components.schemas[s.$ref.split("/").pop()];
          return s || {};
        };
        const refName = s => (s && s.$ref) ? s.$ref.split("/").pop() : null;
        function typeText(s) {
          if (!s) return "any";
          if (s.$ref) return refName(s);
          if (s.anyOf) return s.anyOf.map(typeText).join(" | ");
          if (s.enum) return s.enum.map(v => JSON.stringify(v)).join(" | ");
          if (Array.isArray(s.type)) return s.type.join(" | ");
          if (s.type === "array") return "[" + typeText(s.items) + "]";
          return s.type || "object";
        }
        function fields(schema, depth = 0) {
          const s = resolve(schema);
          if (s.type === "array") return fields(s.items, depth);
          if (!s.properties || depth > 3) return el("div", { class: "t" }, typeText(schema));
          const table = el("table");
          const required = new Set(s.required || []);
          for (const [name, prop] of Object.entries(s.properties)) {
            const nested = [prop, ...(prop.anyOf || []), prop.items || null].find(p => p && refName(p) && resolve(p).properties);
            const cell = el("td", {}, el("span", { class: "t" }, typeText(prop)));
            if (prop.description) cell.append(" — " + prop.description);
            if (nested && depth < 2) {
              const d = el("details", {}, el("summary", {}, refName(nested)), fields(nested, depth + 1));
              cell.append(d);
            }
            table.append(el("tr", {}, el("td", { class: "f" }, name, required.has(name) ? el("span", { class: "req" }, " *") : ""), cell));
          }
          const wrap = el("div");
          if (s.description) wrap.append(el("div", {}, s.description));
          wrap.append(table);
          return wrap;
        }
        function example(schema, depth = 0) {
          const s = resolve(schema);
          if (s.examples) return s.examples[0];
          if (s.anyOf) return example(s.anyOf[0], depth);
          if (s.enum) return s.enum[0];
          const type = Array.isArray(s.type) ? s.type[0] : s.type;
          if (type === "object" && depth < 3) {
            const o = {};
            for (const [k, v] of Object.entries(s.properties || {})) o[k] = example(v, depth + 1);
            return o;
          }
          if (type === "array") return depth < 3 ? [example(s.items, depth + 1)] : [];
          return { integer: 1, string: "", boolean: true, null: null }[type] ?? null;
        }
        async function send(method, path, op, form, out) {
          let url = path;
          for (const input of form.querySelectorAll("input[data-param]")) url = url.replace("{" + input.dataset.param + "}", encodeURIComponent(input.value));
          const headers = {};
          const token = document.getElementById("token").value.trim();
          if (token) headers["Authorization"] = "Bearer " + token;
          let body;
          const area = form.querySelector("textarea");
          if (area) {
            if (op.requestBody.content["application/json"]) { headers["Content-Type"] = "application/json"; body = area.value; }
            else { headers["Content-Type"] = "application/x-www-form-urlencoded"; body = new URLSearchParams(JSON.parse(area.value)).toString(); }
          }
          const base = location.pathname.replace(/\/docs\/?$/, "");
          out.textContent = "…";
          try {
            const r = await fetch(base + url, { method: method.toUpperCase(), headers, body });
            const text = await r.text();
            let shown = text;
            try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) {}
            out.textContent = r.status + " " + r.statusText + "\n\n" + shown;
            if (path === "/authentication/token" && r.ok) document.getElementById("token").value = JSON.parse(text).access_token;
          } catch (e) { out.textContent = String(e); }
        }
        function operation(path, method, op) {
          const locked = (op.security || []).length > 0;
          const summary = el("summary", {}, el("span", { class: "m " + method }, method.toUpperCase()), el("span", { class: "path" }, path),
            el("span", {}, op.summary || ""), locked ? el("span", { class: "lock" }, "bearer") : "");
          const body = el("div", { class: "body" });
          if (op.description) body.append(el("p", {}, op.description));
          const form = el("div");
          for (const p of op.parameters || []) form.append(el("div", {}, el("label", {}, p.name + " ", el("input", { "data-param": p.name, value: "1", size: "8" }))));
          if (op.requestBody) {
            const [type, media] = Object.entries(op.requestBody.content)[0];
            body.append(el("h4", {}, "Body (" + type + ")"), fields(media.schema));
            const area = el("textarea");
            area.value = JSON.stringify(example(media.schema), null, 2);
            form.append(area);
          }
          body.append(el("h4", {}, "Answers"));
          const answers = el("table");
          for (const [code, r] of Object.entries(op.responses)) {
            const media = r.content && Object.values(r.content)[0];
            const cell = el("td", {}, r.description || "");
            if (media && code.startsWith("2")) cell.append(fields(media.schema));
            answers.append(el("tr", {}, el("td", { class: "f" }, code), cell));
          }
          body.append(answers);
          const out = el("pre");
          const button = el("button", {}, "Send");
          button.onclick = () => send(method, path, op, form, out);
          body.append(el("h4", {}, "Try it"), form, button, out);
          return el("details", { class: "op" }, summary, body);
        }
        fetch("openapi.json").then(r => r.json()).then(d => {
          doc = d;
          document.getElementById("title").textContent = d.info.title + " API " + d.info.version;
          const main = document.getElementById("main");
          main.textContent = "";
          main.append(el("p", {}, d.info.description || ""));
          const byTag = new Map((d.tags || []).map(t => [t.name, []]));
          for (const [path, ops] of Object.entries(d.paths))
            for (const [method, op] of Object.entries(ops)) {
              const tag = (op.tags || ["other"])[0];
              if (!byTag.has(tag)) byTag.set(tag, []);
              byTag.get(tag).push(operation(path, method, op));
            }
          for (const [tag, ops] of byTag) if (ops.length) main.append(el("h2", {}, tag), ...ops);
        }).catch(e => { document.getElementById("main").textContent = "Could not load openapi.json: " + e; });
        </script>
        </body>
        </html>
        """#
}
