// warden's console in a real browser (Debian's Chromium, driven by playwright-core) against the
// real Better-Auth and warden that tests/e2e/console.rs starts. It checks what a person sees
// and what the database holds afterwards.
//
// Environment (set by the Rust test):
//   WARDEN_URL, AUTH_URL   the two servers (http://localhost:<port>)
//   DATABASE_URL           their database
//   MODE                   "two-origins" (the console on warden's origin, Better-Auth on its own:
//                          the whole walk-through), "proxy" (AUTH_PROXY=true: one origin), or
//                          "untrusted" / "untrusted-proxy" (the same shapes with a Better-Auth
//                          that does not trust warden's origin: the page must say so)
//   SCREENSHOT_DIR         where the screenshots go (default: a temp dir)
//   CHROMIUM               the browser (default /usr/bin/chromium)
//
// Any browser console error that the step did not expect (an HTTP error the step provokes on
// purpose is announced with `expecting`), any uncaught page error and any Content-Security-
// Policy violation fails the run.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";

import pg from "pg";
import { chromium } from "playwright-core";

const WARDEN = required("WARDEN_URL");
const AUTH = required("AUTH_URL");
const MODE = process.env.MODE ?? "two-origins";
const PASSWORD = "correct-horse-battery-staple";
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "warden-console-"));
fs.mkdirSync(SHOTS, { recursive: true });

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console.test.mjs: ${name} is required`);
    process.exit(2);
  }
  return value.replace(/\/+$/, "");
}

const db = new pg.Client({ connectionString: required("DATABASE_URL") });
await db.connect();

const started = Date.now();
let passed = 0;
let failed = 0;
const problems = []; // console errors, page errors, CSP violations
const requested = []; // every URL any page asked for
const allowed = []; // { pattern, left } console errors a step provokes on purpose

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok ${passed + failed} - ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`not ok ${passed + failed} - ${name}`);
    console.log(`  ${String(err?.stack ?? err).split("\n").join("\n  ")}`);
    throw err;
  }
}

/** Runs `fn` while `count` console errors matching `pattern` are expected (an HTTP error it provokes). */
async function expecting(pattern, count, fn) {
  const entry = { pattern, left: count };
  allowed.push(entry);
  try {
    await fn();
  } finally {
    allowed.splice(allowed.indexOf(entry), 1);
  }
}

async function eventually(what, check, timeout = 5_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeout} ms${last ? ` (${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function row(sql, params) {
  const { rows } = await db.query(sql, params);
  return rows[0];
}

/** Better-Auth, from outside the browser (other people, other devices). */
async function authPost(pathname, body, headers = {}) {
  const response = await fetch(`${AUTH}/api/auth${pathname}`, {
    method: "POST",
    headers: { origin: AUTH, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  assert.equal(response.status, 200, `${pathname}: ${response.status} ${JSON.stringify(data)}`);
  return { data, token: response.headers.get("set-auth-token") };
}

async function signUpElsewhere(name, email) {
  await authPost("/sign-up/email", { name, email, password: PASSWORD });
}

// ---------------------------------------------------------------- the browser

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // playwright gives every launch a fresh, temporary --user-data-dir.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

/** A person's own browser profile (cookies, storage), watched for errors. */
async function person(label, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: "en-GB", timezoneId: "UTC" });
  context.setDefaultTimeout(10_000);
  await context.exposeBinding("__cspViolation", (_source, v) => problems.push(`${label}: CSP violation: ${v}`));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`),
    );
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = `${message.text()} (${message.location()?.url ?? "?"})`;
    const allowance = allowed.find((a) => a.left > 0 && a.pattern.test(text));
    if (allowance) {
      allowance.left -= 1;
      console.log(`  expected console error: ${text}`);
      return;
    }
    problems.push(`${label}: console error: ${text}`);
  });
  page.on("pageerror", (err) => problems.push(`${label}: page error: ${err.message}`));
  page.on("request", (request) => requested.push(request.url()));
  return { context, page };
}

const h1 = (page, name) => page.getByRole("heading", { level: 1, name });

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot: ${file}`);
}

/** Every input and select on the page has a label (or an aria-label). */
async function everyFieldLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")]
      .filter((el) => el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], "fields without a label");
}

/** No sideways scrolling: the page fits the viewport's width. */
async function fitsWidth(page) {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `page is ${scroll}px wide in a ${inner}px viewport`);
}

async function noTokenStored(page) {
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.ok(!/eyJ/.test(stored), `a JWT in web storage: ${stored}`);
}

async function signUpInConsole(page, name, email) {
  await page.goto(`${WARDEN}/console`);
  await h1(page, "Sign in").waitFor();
  await page.getByRole("link", { name: "Create one" }).click();
  await h1(page, "Create an account").waitFor();
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await h1(page, "Profile").waitFor();
}

async function signInInConsole(page, email, password = PASSWORD) {
  await h1(page, "Sign in").waitFor();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

async function nav(page, name) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
}

// ---------------------------------------------------------------- the walk-through

// Each run has its own database: the same people every time.
const ada = { name: "Ada Lovelace", email: "ada@example.com" };
const bob = { name: "Bob Stone", email: "bob@example.com" };

try {
  const { page } = await person("ada");
  if (MODE.startsWith("untrusted")) await refusedOrigin(page);
  else await signUpAndAround(page);

  assert.deepEqual(problems, [], "browser errors");
  assert.deepEqual(
    requested.filter((url) => new URL(url).pathname.endsWith("/social-providers")),
    [],
    "a page asked the auth server for its social providers",
  );
} catch (err) {
  if (failed === 0) {
    failed += 1;
    console.log(`not ok - ${err?.stack ?? err}`);
  }
} finally {
  await browser.close().catch(() => {});
  await db.end().catch(() => {});
}

if (problems.length) {
  console.log("browser errors:");
  for (const p of problems) console.log(`  ${p}`);
}
console.log(`console (${MODE}): ${passed} passed, ${failed + (problems.length && !failed ? 1 : 0)} failed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
process.exit(failed || problems.length ? 1 : 0);

// ---------------------------------------------------------------- both shapes: the first steps

async function signUpAndAround(page) {
  await step("the console's answer carries its security headers", async () => {
    const response = await page.goto(`${WARDEN}/console`);
    const headers = response.headers();
    assert.equal(response.status(), 200);
    const csp = headers["content-security-policy"];
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    if (MODE === "proxy") assert.match(csp, /connect-src 'self';/);
    else assert.ok(csp.includes(`connect-src 'self' ${AUTH};`), csp);
    assert.equal(headers["x-content-type-options"], "nosniff");
    assert.ok(headers["referrer-policy"]);
    await h1(page, "Sign in").waitFor();
    await everyFieldLabelled(page);
  });

  await step(
    MODE === "proxy"
      ? "no social buttons: warden's CONSOLE_SOCIAL_PROVIDERS is empty"
      : "the social buttons are warden's CONSOLE_SOCIAL_PROVIDERS (github), whatever the auth server has (Google too)",
    async () => {
      const google = page.getByRole("button", { name: "Continue with Google" });
      const github = page.getByRole("button", { name: "Continue with GitHub" });
      if (MODE === "proxy") {
        assert.equal(await github.count(), 0);
      } else {
        await github.waitFor();
        await shot(page, "sign-in");
      }
      assert.equal(await google.count(), 0);
      // The page never asks the auth server which providers it has: another Better-Auth
      // answers that path with a 404, in every visitor's browser console.
      const asked = requested.filter((url) => new URL(url).pathname.endsWith("/social-providers"));
      assert.deepEqual(asked, [], "the page asked the auth server for its social providers");
    },
  );

  if (MODE !== "proxy") {
    await step("the GitHub button starts Better-Auth's GitHub sign-in", async () => {
      // GitHub itself is never contacted: its pages (the authorize page, and the favicon the
      // browser asks for after it, maybe later) are answered here for the rest of the run.
      await page.context().route("https://github.com/**", (route) => route.fulfill({ status: 200, contentType: "text/plain", body: "GitHub" }));
      await page.getByRole("button", { name: "Continue with GitHub" }).click();
      await page.waitForURL((url) => url.origin === "https://github.com");
      const url = new URL(page.url());
      assert.equal(url.pathname, "/login/oauth/authorize");
      assert.equal(url.searchParams.get("client_id"), "console-test-github-id");
      await page.goto(`${WARDEN}/console`);
      await h1(page, "Sign in").waitFor();
    });
  }

  await step("sign up through the console's form: the profile comes from warden", async () => {
    await signUpInConsole(page, ada.name, ada.email);
    await page.locator("#profile-email", { hasText: ada.email }).waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), ada.name);
    const user = await row(`SELECT name FROM "user" WHERE email = $1`, [ada.email]);
    assert.equal(user?.name, ada.name);
    await noTokenStored(page);
    await everyFieldLabelled(page);
  });

  if (MODE === "proxy") {
    await step("one origin: every call went to warden's origin", async () => {
      const origins = new Set();
      page.on("request", (r) => origins.add(new URL(r.url()).origin));
      await page.reload();
      await h1(page, "Profile").waitFor();
      await page.locator("#profile-email", { hasText: ada.email }).waitFor();
      assert.deepEqual([...origins], [new URL(WARDEN).origin]);
    });
  }

  await step("a page reload stays signed in, with the JWT only in memory", async () => {
    await page.reload();
    await h1(page, "Profile").waitFor();
    await page.locator("#profile-email", { hasText: ada.email }).waitFor();
    await noTokenStored(page);
  });

  await step("edit the name: the database has it", async () => {
    await page.getByLabel("Name").fill("Ada King");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("status").filter({ hasText: "Profile saved." }).waitFor();
    assert.equal(await page.locator("#profile-name").textContent(), "Ada King");
    const user = await row(`SELECT name FROM "user" WHERE email = $1`, [ada.email]);
    assert.equal(user.name, "Ada King");
    ada.name = "Ada King";
  });

  await step("warden's refusal shows its detail in words", async () => {
    await expecting(/status of 422/, 1, async () => {
      await page.getByLabel("Picture URL").fill("ftp://example.com/ada.png");
      await page.getByRole("button", { name: "Save changes" }).click();
      await page.getByRole("alert").filter({ hasText: "`image` must be an http(s) URL" }).waitFor();
    });
    const user = await row(`SELECT image FROM "user" WHERE email = $1`, [ada.email]);
    assert.equal(user.image, null);
  });

  await step("a picture is shown only when it is https; an http one is never fetched", async () => {
    // Pictures served by the test itself (no network): whoever asks for them is recorded.
    const asked = [];
    const picture = (route) => {
      asked.push(route.request().url());
      return route.fulfill({ status: 200, contentType: "image/svg+xml", body: '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>' });
    };
    await page.route("https://pictures.test/**", picture);
    await page.route("http://pictures.test/**", picture);
    const secure = "https://pictures.test/ada.svg";
    await page.getByLabel("Picture URL").fill(secure);
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("status").filter({ hasText: "Profile saved." }).waitFor();
    await eventually("the https picture shown", async () => (await page.locator(".profile .avatar img").getAttribute("src")) === secure);
    // http (an internal address, say): warden stores it, the page shows initials and never asks.
    const plain = "http://pictures.test/ada.svg";
    await page.getByLabel("Picture URL").fill(plain);
    await page.getByRole("button", { name: "Save changes" }).click();
    await eventually("the http picture saved", async () => (await row(`SELECT image FROM "user" WHERE email = $1`, [ada.email])).image === plain);
    await eventually("the picture gone", async () => (await page.locator(".profile .avatar img").count()) === 0);
    await page.locator(".profile .hint", { hasText: "not an https address" }).waitFor();
    assert.ok(!asked.includes(plain), `the http picture was fetched: ${asked}`);
    await page.unroute("https://pictures.test/**");
    await page.unroute("http://pictures.test/**");
    // Written behind warden's back: never turned into an image, nor run.
    await db.query(`UPDATE "user" SET image = 'javascript:alert(1)' WHERE email = $1`, [ada.email]);
    await page.reload();
    await h1(page, "Profile").waitFor();
    await page.locator("#profile-email", { hasText: ada.email }).waitFor();
    await eventually("the picture gone", async () => (await page.locator(".profile .avatar img").count()) === 0);
    await page.getByLabel("Picture URL").fill("");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("status").filter({ hasText: "Profile saved." }).waitFor();
    assert.equal((await row(`SELECT image FROM "user" WHERE email = $1`, [ada.email])).image, null);
  });

  if (MODE === "proxy") {
    await step("the JWT is fetched again before it expires (JWT_EXPIRATION=65s: a minute early)", async () => {
      const fetched = [];
      const watch = (r) => {
        if (new URL(r.url()).pathname === "/api/auth/token") fetched.push(Date.now());
      };
      page.on("request", watch);
      await page.reload();
      await page.locator("#profile-email", { hasText: ada.email }).waitFor();
      const loaded = Date.now();
      await eventually("a token refresh", async () => fetched.some((t) => t > loaded), 12_000);
      page.off("request", watch);
      await nav(page, "Sessions");
      await h1(page, "Sessions").waitFor();
      await page.locator("#session-list > li.current").waitFor();
    });

    await step("sign out, then sign in again through the form", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await h1(page, "Sign in").waitFor();
      await page.reload();
      await h1(page, "Sign in").waitFor();
      const sessions = await row(`SELECT count(*)::int AS n FROM session s JOIN "user" u ON u.id = s.user_id WHERE u.email = $1`, [ada.email]);
      assert.equal(sessions.n, 0);
      await signInInConsole(page, ada.email);
      await h1(page, "Profile").waitFor();
      await page.locator("#profile-name", { hasText: "Ada King" }).waitFor();
    });
  } else {
    await walkThrough(page);
  }
}

// ---------------------------------------------------------------- a Better-Auth that refuses the page

/** The sentence the page shows when Better-Auth refuses its origin. */
function refusal() {
  const origin = new URL(WARDEN).origin;
  return `refused this page's origin ${origin}; add ${origin} to Better-Auth's TRUSTED_ORIGINS`;
}

async function refusedOrigin(page) {
  if (MODE === "untrusted") {
    // The browser hides why a cross-origin request failed; the page finds out, and says it.
    await step("on load, a Better-Auth that refuses this origin is named, not called unreachable", async () => {
      await expecting(/CORS policy|net::ERR_FAILED/, 4, async () => {
        await page.goto(`${WARDEN}/console`);
        await h1(page, "Sign in").waitFor();
        await page.getByRole("alert").filter({ hasText: refusal() }).waitFor();
      });
      assert.equal(await page.getByText("Cannot reach").count(), 0);
    });
  } else {
    await step("one origin: the page loads (Better-Auth answers GETs from any origin)", async () => {
      await page.goto(`${WARDEN}/console`);
      await h1(page, "Sign in").waitFor();
    });
  }

  await step("signing in says that Better-Auth refused this page's origin, and what to do", async () => {
    // Two origins: the preflight is refused (no CORS headers). One origin: a 403 INVALID_ORIGIN.
    const errors = MODE === "untrusted" ? /CORS policy|net::ERR_FAILED/ : /status of 403/;
    await expecting(errors, 4, async () => {
      await signInInConsole(page, "ada@example.com");
      await page.locator("form").getByRole("alert").filter({ hasText: refusal() }).waitFor();
    });
    assert.equal(await page.getByText("Cannot reach").count(), 0);
    assert.equal(await page.getByText("Invalid origin").count(), 0);
    await shot(page, "origin-refused");
  });
}

// ---------------------------------------------------------------- two origins: everything else

async function walkThrough(page) {
  await step("sessions: this one marked; revoking another removes its row", async () => {
    // Ada also signed in on another device.
    const { data } = await authPost("/sign-in/email", { email: ada.email, password: PASSWORD }, { "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1" });
    const other = await row(`SELECT s.id FROM session s WHERE s.token = $1`, [data.token]);
    assert.ok(other, "the other session exists");
    await nav(page, "Sessions");
    await h1(page, "Sessions").waitFor();
    const items = page.locator("#session-list > li");
    await eventually("two sessions listed", async () => (await items.count()) === 2);
    const current = page.locator("#session-list > li.current");
    assert.equal(await current.count(), 1);
    await current.getByText("this session").waitFor();
    assert.equal(await current.getByRole("button", { name: /Revoke/ }).count(), 0, "the current session has no revoke button");
    await page.getByText("Safari on iOS").waitFor();
    await shot(page, "sessions");
    await page.locator(`li[data-session-id="${other.id}"]`).getByRole("button", { name: /Revoke/ }).click();
    await page.getByRole("status").filter({ hasText: "is signed out" }).waitFor();
    await eventually("one session listed", async () => (await items.count()) === 1);
    assert.equal(await row(`SELECT id FROM session WHERE id = $1`, [other.id]), undefined, "the revoked session's row is gone");
  });

  await step("linked accounts and organizations", async () => {
    await nav(page, "Linked accounts");
    await h1(page, "Linked accounts").waitFor();
    await page.getByRole("cell", { name: "Email and password" }).waitFor();
    const { token } = await authPost("/sign-in/email", { email: ada.email, password: PASSWORD });
    await authPost("/organization/create", { name: "Analytical Engines", slug: "analytical-engines" }, { authorization: `Bearer ${token}` });
    await nav(page, "Organizations");
    await h1(page, "Organizations").waitFor();
    await page.getByRole("cell", { name: "Analytical Engines" }).waitFor();
    await page.getByRole("cell", { name: "owner" }).waitFor();
  });

  // Bob has the console open in his own browser.
  const { page: bobPage } = await person("bob");
  await step("another person signs up in their own browser", async () => {
    await signUpInConsole(bobPage, bob.name, bob.email);
    await bobPage.locator("#profile-email", { hasText: bob.email }).waitFor();
    // Not an admin: no admin pages offered.
    assert.equal(await bobPage.getByRole("link", { name: "Users" }).count(), 0);
  });

  for (const [name, email] of [
    ["Grace Hopper", "grace@example.com"],
    ["Alan Turing", "alan@example.com"],
    ["Katherine Johnson", "katherine@example.com"],
    ["Margaret Hamilton", "margaret@example.com"],
    ["Edsger Dijkstra", "edsger@example.net"],
  ]) {
    await signUpElsewhere(name, email);
  }

  await step("made an admin with SQL, Ada sees the admin pages", async () => {
    await db.query(`UPDATE "user" SET role = 'admin' WHERE email = $1`, [ada.email]);
    await page.reload();
    await h1(page, "Organizations").waitFor();
    await nav(page, "Users");
    await h1(page, "Users").waitFor();
    await page.getByRole("cell", { name: bob.email }).waitFor();
    await everyFieldLabelled(page);
    await page.getByText("Showing 1–7 of 7 users").waitFor();
    await shot(page, "users");
  });

  await step("search, filters, sorting and pages", async () => {
    const rows = page.locator("tbody tr");
    await page.getByLabel("Search").fill("example.net");
    await page.getByLabel("Match").selectOption("ends_with");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await eventually("one user ends with example.net", async () => (await rows.count()) === 1 && (await page.getByRole("cell", { name: "edsger@example.net" }).count()) === 1);

    await page.getByLabel("Search").fill("Bo");
    await page.getByLabel("In", { exact: true }).selectOption("name");
    await page.getByLabel("Match").selectOption("starts_with");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await eventually("Bob found by name", async () => (await rows.count()) === 1 && (await page.getByRole("cell", { name: bob.email }).count()) === 1);
    assert.match(page.url(), /search=Bo/, "the search is in the address (reload and back keep it)");

    await page.getByRole("button", { name: "Clear" }).click();
    // The cleared page replaces the form: fill the new one, not the one on its way out.
    await page.getByText("Showing 1–7 of 7 users").waitFor();
    await page.getByLabel("Role").fill("admin");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await eventually("only the admin", async () => (await rows.count()) === 1 && (await page.getByRole("cell", { name: ada.email }).count()) === 1);

    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByText("Showing 1–7 of 7 users").waitFor();
    await page.getByLabel("Sort").selectOption("email-asc");
    await page.getByLabel("Per page").selectOption("20");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await eventually("sorted by email", async () => {
      const emails = await page.locator('td[data-label="Email"]').allTextContents();
      return emails.length === 7 && emails.join() === [...emails].sort().join();
    });
    // Pages: made small through the address, as a bookmark would.
    await page.goto(`${WARDEN}/console#/admin/users?sort=email-asc&limit=20&offset=5`);
    await page.getByText("Showing 6–7 of 7 users").waitFor();
    await page.getByRole("button", { name: "Previous" }).click();
    await page.getByText("Showing 1–7 of 7 users").waitFor();
  });

  await step("a user's page: change a role (and a refused one says why)", async () => {
    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByRole("link", { name: bob.name }).click();
    await h1(page, bob.name).waitFor();
    await everyFieldLabelled(page);
    await page.getByRole("checkbox", { name: "admin" }).check();
    await page.getByRole("button", { name: "Save roles" }).click();
    await page.getByRole("status").filter({ hasText: "Roles set to user, admin." }).waitFor();
    assert.equal((await row(`SELECT role FROM "user" WHERE email = $1`, [bob.email])).role, "user,admin");
    await expecting(/status of 422/, 1, async () => {
      await page.getByLabel("Other roles").fill("support");
      await page.getByRole("button", { name: "Save roles" }).click();
      await page.getByRole("alert").filter({ hasText: 'unknown role "support"; assignable roles are admin, user' }).waitFor();
    });
    await page.getByLabel("Other roles").fill("");
    await page.getByRole("checkbox", { name: "admin" }).uncheck();
    await page.getByRole("button", { name: "Save roles" }).click();
    await page.getByRole("status").filter({ hasText: "Roles set to user." }).waitFor();
    assert.equal((await row(`SELECT role FROM "user" WHERE email = $1`, [bob.email])).role, "user");
  });

  await step("ban with a reason and an expiry: the database has it", async () => {
    await page.getByLabel("Reason").fill("Spamming the forum");
    await page.getByLabel("Duration").selectOption({ label: "7 days" });
    await page.getByRole("button", { name: "Ban user" }).click();
    await page.getByRole("status").filter({ hasText: "banned and signed out everywhere" }).waitFor();
    const banned = await row(`SELECT banned, ban_reason, ban_expires FROM "user" WHERE email = $1`, [bob.email]);
    assert.equal(banned.banned, true);
    assert.equal(banned.ban_reason, "Spamming the forum");
    const days = (banned.ban_expires.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 6.9 && days <= 7, `ban ends in ${days} days`);
    assert.equal((await row(`SELECT count(*)::int AS n FROM session s JOIN "user" u ON u.id = s.user_id WHERE u.email = $1`, [bob.email])).n, 0);
    await page.locator("#ban-reason", { hasText: "Spamming the forum" }).waitFor();
    await page.getByRole("heading", { name: "Audit entries" }).waitFor();
    await page.getByRole("cell", { name: "Banned" }).waitFor();
    await shot(page, "user");
  });

  await step("the banned person's console says so, with the reason, on their next action", async () => {
    await expecting(/status of 403/, 1, async () => {
      await nav(bobPage, "Sessions");
      await h1(bobPage, "Account banned").waitFor();
    });
    const text = await bobPage.getByRole("alert").first().textContent();
    assert.match(text, /banned/);
    assert.match(text, /Spamming the forum/);
    await bobPage.getByRole("button", { name: "Back to sign-in" }).click();
    await h1(bobPage, "Sign in").waitFor();
    // Better-Auth refuses the banned person too, in its own words.
    await expecting(/status of 403/, 1, async () => {
      await signInInConsole(bobPage, bob.email);
      await bobPage.getByRole("alert").filter({ hasText: /banned/i }).waitFor();
    });
  });

  await step("the audit log", async () => {
    await nav(page, "Audit log");
    await h1(page, "Audit log").waitFor();
    for (const action of ["Banned", "Roles changed"]) await page.getByRole("cell", { name: action, exact: true }).first().waitFor();
    await page.getByRole("cell", { name: /reason: Spamming the forum/ }).waitFor();
    await page.getByRole("cell", { name: /from: user · to: user,admin/ }).waitFor();
    await everyFieldLabelled(page);
    await shot(page, "audit");
  });

  await step("unban, and delete with a confirmation", async () => {
    await page.goto(`${WARDEN}/console#/admin/users?search=katherine`);
    await page.getByRole("link", { name: "Katherine Johnson" }).click();
    await h1(page, "Katherine Johnson").waitFor();
    await page.getByRole("button", { name: "Delete user…" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete this user?" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    assert.ok(await row(`SELECT id FROM "user" WHERE email = 'katherine@example.com'`), "cancel keeps the user");
    await page.getByRole("button", { name: "Delete user…" }).click();
    await dialog.getByRole("button", { name: "Delete user" }).click();
    await h1(page, "Users").waitFor();
    await page.getByRole("status").filter({ hasText: "katherine@example.com is deleted." }).waitFor();
    assert.equal(await row(`SELECT id FROM "user" WHERE email = 'katherine@example.com'`), undefined);

    await page.goto(`${WARDEN}/console#/admin/users?banned=true`);
    await page.getByRole("link", { name: bob.name }).click();
    await h1(page, bob.name).waitFor();
    await page.getByRole("button", { name: "Lift the ban" }).click();
    await page.getByRole("status").filter({ hasText: "The ban is lifted." }).waitFor();
    assert.equal((await row(`SELECT banned FROM "user" WHERE email = $1`, [bob.email])).banned, false);
  });

  await step("at phone width: nothing wider than the screen, tables become cards", async () => {
    const { page: phone } = await person("ada-phone", { width: 390, height: 844 });
    await phone.goto(`${WARDEN}/console`);
    await signInInConsole(phone, ada.email);
    await h1(phone, "Profile").waitFor();
    await fitsWidth(phone);
    await phone.goto(`${WARDEN}/console#/admin/users`);
    await h1(phone, "Users").waitFor();
    await phone.getByRole("cell", { name: bob.email }).waitFor();
    await fitsWidth(phone);
    await shot(phone, "users-phone");
    await phone.context().close();
  });

  await step("signing out ends it; the form signs in again, by keyboard alone", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await h1(page, "Sign in").waitFor();
    await page.getByRole("status").filter({ hasText: "You are signed out." }).waitFor();
    await page.reload();
    await h1(page, "Sign in").waitFor();
    // Ada's other sessions (the organization one, the phone) are hers; this one is gone.
    await expecting(/status of 401/, 1, async () => {
      await signInInConsole(page, ada.email, "not-the-password");
      await page.getByRole("alert").filter({ hasText: /invalid email or password/i }).waitFor();
    });
    await page.getByLabel("Email").fill("");
    await page.getByLabel("Password").fill("");
    await page.locator("body").focus();
    for (let i = 0; i < 12; i += 1) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(() => document.activeElement?.getAttribute("name") === "email")) break;
    }
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "email", "Tab reaches the email field");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, "none", "the focused field shows it");
    await page.keyboard.type(ada.email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await h1(page, "Profile").waitFor();
    await page.locator("#profile-name", { hasText: "Ada King" }).waitFor();
    await shot(page, "profile");
  });
}
