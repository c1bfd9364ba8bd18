// The live page at / in a real browser: Debian's chromium, driven headless
// by playwright-core, against the real tinymon binary on a free loopback
// port with `tinymon load` traffic. `make test` runs it (make browser-test).
//
// Checks: security headers; every chart draws; the requests/s figure is
// within 20% of what `tinymon load` reports; the latency quantiles equal a
// histogram_quantile computed here, independently, from the same scrapes;
// no console errors and no CSP violations; a stopped server is reported;
// the bearer-token flow keeps the token out of storage and the URL; a
// phone-sized viewport has no sideways scrolling; text contrast is at least
// 4.5:1 in light and dark schemes. The screenshot goes to screens/.
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.TINYMON_BIN || join(REPO, "target/x86_64-unknown-linux-gnu/release/tinymon");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startTinymon(env = {}) {
  const child = spawn(BIN, ["--listen", "127.0.0.1:0", "--workers", "8"], {
    env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      // The whole line: stderr may arrive in pieces ("listening on 127").
      const m = err.match(/listening on (\S+) with /);
      if (m) resolve({ child, addr: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`tinymon exited ${code}: ${err}`)));
  });
}

function runLoad(addr, seconds, rps) {
  const child = spawn(BIN, ["load", "--target", `http://${addr}`, "--duration", String(seconds),
    "--rps", String(rps), "--concurrency", "8"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  return new Promise((resolve) => child.on("exit", () => {
    const m = out.match(/requests (\d+) in ([\d.]+)s: ([\d.]+) req\/s/);
    assert.ok(m, `no report from tinymon load: ${out}`);
    resolve({ rate: Number(m[3]), text: out });
  }));
}

// --- an independent reading of the text format and histogram_quantile ---
function samples(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `unparsable line ${line}`);
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k] = v.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
  }
  return out;
}
function histogramQuantile(q, fromText, toText, metric, path) {
  const keyOf = (s) => JSON.stringify(Object.entries(s.labels).sort());
  const before = new Map(samples(fromText).map((s) => [s.name + keyOf(s), s.value]));
  const perLe = new Map();
  for (const s of samples(toText)) {
    if (s.name !== metric + "_bucket" || s.labels.path !== path) continue;
    const prev = before.get(s.name + keyOf(s)) ?? 0;
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    perLe.set(le, (perLe.get(le) ?? 0) + (s.value >= prev ? s.value - prev : s.value));
  }
  const b = [...perLe].sort((x, y) => x[0] - y[0]);
  const total = b[b.length - 1][1];
  if (!total) return NaN;
  const rank = q * total;
  let i = 0;
  while (b[i][1] < rank) i++;
  if (b[i][0] === Infinity) return b[b.length - 2][0];
  const lower = i === 0 ? 0 : b[i - 1][0], below = i === 0 ? 0 : b[i - 1][1];
  return lower + (b[i][0] - lower) * (rank - below) / (b[i][1] - below);
}

// WCAG relative luminance contrast of two rgb() colours.
function contrast(c1, c2) {
  const lum = (c) => {
    const [r, g, b] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(c1), lum(c2)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}

async function openPage(browser, url, opts = {}) {
  const context = await browser.newContext(opts);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
  });
  const response = await page.goto(url);
  return { context, page, problems, response };
}

async function main() {
  // playwright-core gives every launch a fresh, empty user data dir.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const servers = [];
  try {
    // 1. Under load: headers, charts, figures, quantiles, screenshot.
    const t = await startTinymon();
    servers.push(t.child);
    const load = runLoad(t.addr, 25, 40);
    const { page, problems, response } = await openPage(browser, `http://${t.addr}/`,
      { viewport: { width: 1280, height: 1500 } });
    const h = response.headers();
    assert.equal(response.status(), 200);
    assert.match(h["content-security-policy"], /default-src 'none'/);
    assert.doesNotMatch(h["content-security-policy"], /unsafe-inline|unsafe-eval/);
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.equal(h["cache-control"], "no-store");
    await page.waitForFunction(() => window.tinymon && window.tinymon?.polls >= 12, null, { timeout: 30000 });
    const lines = await page.$$eval("main section svg", (svgs) => svgs.map((s) => [s.closest("section").id, Number(s.dataset.lines || 0)]));
    assert.ok(lines.length >= 10, `${lines.length} charts`);
    for (const [id, n] of lines) assert.ok(n >= 1, `chart ${id} drew nothing`);
    const seen = await page.evaluate(() => ({ rps: window.tinymon.rps, q: window.tinymon.quantiles, w: window.tinymon.window }));
    for (const [path, qs] of Object.entries(seen.q)) {
      [0.5, 0.9, 0.99].forEach((q, i) => {
        const want = histogramQuantile(q, seen.w.from, seen.w.to, "server_handle_request_seconds", path);
        if (Number.isNaN(want)) assert.ok(qs[i] === null || Number.isNaN(qs[i]), `${path} p${q * 100}: ${qs[i]}`);
        else assert.ok(Math.abs(qs[i] - want) <= 1e-9 * Math.max(1, want), `${path} p${q * 100}: page ${qs[i]}, histogram_quantile ${want}`);
      });
    }
    assert.ok(Object.keys(seen.q).includes("/hello"), JSON.stringify(Object.keys(seen.q)));
    const header = await page.evaluate(() => [version.textContent, uptime.textContent, instance.textContent]);
    assert.match(header[0], /^\d+\.\d+\.\d+/);
    assert.equal(header[2], t.addr);
    await page.screenshot({ path: join(REPO, "screens", "live-page.png"), fullPage: true });
    const report = await load;
    const pageRps = seen.rps.value;
    console.log(`tinymon load: ${report.rate} req/s; the page: ${pageRps.toFixed(1)} req/s over ${seen.rps.seconds.toFixed(1)} s`);
    assert.ok(Math.abs(pageRps - report.rate) <= 0.2 * report.rate, `page ${pageRps} vs load ${report.rate}`);
    // Contrast in both schemes.
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      const pairs = await page.evaluate(() => {
        const bg = getComputedStyle(document.body).backgroundColor;
        const card = getComputedStyle(document.querySelector("section")).backgroundColor;
        const txt = (sel) => getComputedStyle(document.querySelector(sel)).color;
        return [[txt("body"), bg], [txt("header span"), bg], [txt("section h2"), card], [txt(".figure span"), card], [txt("svg text"), card]].map(([f, b]) => [f.startsWith("rgb") ? f : "rgb(0,0,0)", b]);
      });
      for (const [fg, bg] of pairs) assert.ok(contrast(fg, bg) >= 4.5, `${scheme}: ${fg} on ${bg} is ${contrast(fg, bg).toFixed(2)}:1`);
    }
    const csp = await page.evaluate(() => window.__csp);
    assert.deepEqual(csp, [], "CSP violations");
    assert.deepEqual(problems, [], "console errors");

    // 2. The server stops: the page says so.
    t.child.kill("SIGKILL");
    await page.waitForFunction(() => document.getElementById("problem").classList.contains("show"), null, { timeout: 10000 });
    assert.match(await page.textContent("#problem-text"), /Cannot reach/);

    // 3. A phone-sized viewport: no sideways scrolling, charts fit.
    const t2 = await startTinymon();
    servers.push(t2.child);
    const phone = await openPage(browser, `http://${t2.addr}/`, { viewport: { width: 375, height: 740 }, isMobile: true });
    await phone.page.waitForFunction(() => window.tinymon?.polls >= 3, null, { timeout: 15000 }).catch(async (e) => {
      const state = await phone.page.evaluate(() => JSON.stringify({ debug: window.tinymon, url: location.href }));
      throw new Error(`phone page never polled: ${state}; problems ${JSON.stringify(phone.problems)}; ${e.message}`);
    });
    const fit = await phone.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth,
      Math.max(...[...document.querySelectorAll("main section")].map((s) => s.getBoundingClientRect().right))]);
    assert.ok(fit[0] <= fit[1] && fit[2] <= fit[1], `phone layout overflows: ${fit}`);
    assert.deepEqual(phone.problems, []);

    // 4. With a bearer token on /metrics.
    const t3 = await startTinymon({ TINYMON_METRICS_TOKEN: "s3cret-token" });
    servers.push(t3.child);
    const tok = await openPage(browser, `http://${t3.addr}/`);
    await tok.page.waitForSelector("#token-form.show", { timeout: 10000 });
    assert.match(await tok.page.textContent("#problem-text"), /needs a bearer token/);
    await tok.page.fill("#token", "wrong");
    await tok.page.click("#token-form button");
    await tok.page.waitForFunction(() => /refused the token/.test(document.getElementById("problem-text").textContent), null, { timeout: 10000 });
    await tok.page.fill("#token", "s3cret-token");
    await tok.page.click("#token-form button");
    await tok.page.waitForFunction(() => !document.getElementById("problem").classList.contains("show") && window.tinymon?.polls >= 2, null, { timeout: 10000 });
    const kept = await tok.page.evaluate(() => [location.href, JSON.stringify(localStorage), JSON.stringify(sessionStorage), document.cookie, document.getElementById("token").value]);
    for (const k of kept) assert.ok(!k.includes("s3cret"), `token leaked into ${k}`);
    // 401s are expected console noise of the token flow; nothing else is.
    assert.deepEqual(tok.problems.filter((p) => !/401/.test(p)), []);
    console.log("live page: all checks passed");
  } finally {
    for (const s of servers) s.kill("SIGKILL");
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
